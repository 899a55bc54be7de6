# vmha: `make demo` runs the local demo cluster, `make test` runs every test.
GO      ?= go
BIN     := bin
export PATH := $(PATH):/usr/local/go/bin

.PHONY: all deps build demo test vet lint fuzz bench clean

all: build

deps:
	@scripts/deps.sh

build: deps
	$(GO) build -o $(BIN)/ ./cmd/vmhad ./cmd/vmha

# A 3-host cluster on loopback; one host is killed, fenced over IPMI and its
# VMs restarted on the others. The last line gives the measured timeline.
demo: build
	$(GO) run ./cmd/vmha-demo -bin $(BIN)

# go.mod must be tidy: go mod tidy -diff prints what tidy would change.
vet:
	$(GO) vet ./...
	$(GO) mod tidy -diff

# Every test, including the ones against real libvirt, ipmi_sim and real
# vmhad processes. With CI=true a test whose part is missing fails instead of
# skipping.
#
# cluster/decide (the leader's pure decisions, with its scenario files and
# 10,000 random fault schedules) runs on its own without the race detector:
# it is single-threaded pure code, and the detector would make its
# exploration ten times slower for nothing.
test: deps vet lint
	$(GO) test -race -count=1 -timeout 25m $$($(GO) list ./... | grep -v '/cluster/decide$$')
	scripts/test-decide.sh

# Short fuzzing of every parser (the seed corpora also run in `make test`).
fuzz:
	$(GO) test -run '^$$' -fuzz FuzzParseDomainXML -fuzztime 30s ./model
	$(GO) test -run '^$$' -fuzz FuzzLoad -fuzztime 30s ./config
	$(GO) test -run '^$$' -fuzz FuzzApply -fuzztime 30s ./cluster
	$(GO) test -run '^$$' -fuzz FuzzHandlers -fuzztime 60s ./cluster
	$(GO) test -run '^$$' -fuzz FuzzDomainXMLMatchesLibvirtxml -fuzztime 30s ./model
	$(GO) test -run '^$$' -fuzz FuzzDeviceValidate -fuzztime 30s ./fencing/spec

# golangci-lint (installed into $(GOBIN) from the module proxy on first use).
GOLANGCI := $(shell go env GOPATH)/bin/golangci-lint
lint:
	@test -x $(GOLANGCI) || $(GO) install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@v2.15.0
	$(GOLANGCI) run ./...

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...

clean:
	rm -rf $(BIN)
