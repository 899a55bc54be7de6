# vmha: `make demo` runs the local demo cluster, `make test` runs every test,
# `make install` / `make deb` install it or package it for Debian (`make
# package`: the .deb and a tarball of the same files).
GO      ?= go
BIN     := bin
export PATH := $(PATH):/usr/local/go/bin

# make install: PREFIX=/usr/local by default, DESTDIR for a staged tree.
# The config goes to /etc/vmha whatever the prefix (where vmhad looks);
# single directories can be set too (BINDIR, SBINDIR, MANDIR, UNITDIR,
# BASHCOMPDIR, ZSHCOMPDIR, FISHCOMPDIR: scripts/install.sh).
PREFIX  ?= /usr/local
DESTDIR ?=
# The version of the package and the man pages, from git (scripts/version.sh).
VERSION ?= $(shell scripts/version.sh)
# The binaries carry it too (vmha version, vmhad --version, vmha_build_info):
# the linker sets internal/buildinfo's version and revision. Go's own VCS
# stamp does not do (GOFLAGS=-buildvcs=false on build machines, no module
# version for a main module).
REVISION ?= $(shell git rev-parse HEAD 2>/dev/null)
BUILDINFO := github.com/vmha/vmha/internal/buildinfo
LDFLAGS := -X '$(BUILDINFO).version=$(VERSION)' -X '$(BUILDINFO).revision=$(REVISION)'

.PHONY: all deps build binaries demo demo-real demo-console test vet lint fuzz bench clean install uninstall deb package

all: build

deps:
	@scripts/deps.sh

GOBUILD = $(GO) build -ldflags "$(LDFLAGS)" -o $(BIN)/ ./cmd/vmhad ./cmd/vmha

build: deps
	$(GOBUILD)

# install and deb build without scripts/deps.sh, which would put the test
# labs' packages (QEMU, Ganeti, ...) on the machine: building needs only Go
# and libvirt-dev (deb: dpkg-dev too).
binaries:
	$(GOBUILD)

# A 3-host cluster on loopback; one host is killed, fenced over IPMI and its
# VMs restarted on the others. The last line gives the measured timeline.
demo: build
	$(GO) run ./cmd/vmha-demo -bin $(BIN)

# The same story with real QEMU (TCG) guests on shared storage, and a power
# cut of the whole host (vmhad, libvirtd, QEMU). Needs root.
demo-real: build
	$(GO) run ./cmd/vmha-demo -bin $(BIN) -real

# The demo, then the cluster kept running with the web console on every
# host: it prints the URLs and an operator token; Ctrl-C ends it.
demo-console: build
	$(GO) run ./cmd/vmha-demo -bin $(BIN) -console

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
# The browser tests leave their screenshots in artifacts/web/.
test: deps vet lint
	VMHA_ARTIFACTS=$(CURDIR)/artifacts $(GO) test -race -count=1 -timeout 25m $$($(GO) list ./... | grep -v '/cluster/decide$$')
	scripts/test-decide.sh

# Short fuzzing of every parser (the seed corpora also run in `make test`).
fuzz:
	$(GO) test -run '^$$' -fuzz FuzzParseDomainXML -fuzztime 30s ./model
	$(GO) test -run '^$$' -fuzz FuzzLoad -fuzztime 30s ./config
	$(GO) test -run '^$$' -fuzz FuzzApply -fuzztime 30s ./cluster
	$(GO) test -run '^$$' -fuzz FuzzHandlers -fuzztime 60s ./cluster
	$(GO) test -run '^$$' -fuzz FuzzDomainXMLMatchesLibvirtxml -fuzztime 30s ./model
	$(GO) test -run '^$$' -fuzz FuzzDeviceValidate -fuzztime 30s ./fencing/spec
	$(GO) test -run '^$$' -fuzz FuzzConsole -fuzztime 30s ./web
	$(GO) test -run '^$$' -fuzz FuzzTokenParse -fuzztime 30s ./cluster

# golangci-lint (installed into $(GOBIN) from the module proxy on first use).
GOLANGCI := $(shell go env GOPATH)/bin/golangci-lint
lint:
	@test -x $(GOLANGCI) || $(GO) install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@v2.15.0
	$(GOLANGCI) run ./...

# Installs the binaries, the systemd units (never enabled or started), the
# sample config to /etc/vmha/vmhad.yaml only if there is none, the man pages
# and the bash, zsh and fish completions. uninstall keeps the config and
# /var/lib/vmha.
install: binaries
	DESTDIR="$(DESTDIR)" PREFIX="$(PREFIX)" BIN="$(BIN)" VERSION="$(VERSION)" scripts/install.sh install

uninstall:
	DESTDIR="$(DESTDIR)" PREFIX="$(PREFIX)" scripts/install.sh uninstall

# bin/vmha_<version>_<arch>.deb, staged by the install script and built with
# dpkg-deb (scripts/deb.sh); dpkg -i it. The package test
# (internal/testlab/pkgtest) installs it into a private root with dpkg.
deb: binaries
	BIN="$(BIN)" VERSION="$(VERSION)" scripts/deb.sh

# make deb, plus bin/vmha-<version>-linux-<arch>.tar.gz: the same files as
# the package (for hosts without dpkg; tar -xzf it in /, then create the
# vmha group and /var/lib/vmha as the package's postinst does).
package: binaries
	BIN="$(BIN)" VERSION="$(VERSION)" TARBALL=yes scripts/deb.sh

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...

clean:
	rm -rf $(BIN)
