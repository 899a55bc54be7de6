package spec_test

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/vmha/vmha/fencing/spec"
	"github.com/vmha/vmha/internal/testlab/testenv"
)

const secretPw = "Spec-Pw-58ad"

func pwFile(t *testing.T, mode os.FileMode) string {
	return testenv.SecretFile(t, secretPw, mode)
}

func TestValidateReportsEveryProblem(t *testing.T) {
	s := spec.Spec{
		Devices: []spec.Device{{Name: "x", Type: "snmp"}, {Type: "ipmi"}},
		Hosts:   []spec.Host{{Name: "h1"}, {Name: "h2", Levels: [][]string{{"nope"}}}},
	}
	err := s.Validate()
	if err == nil {
		t.Fatal("valid")
	}
	for _, want := range []string{`fence device x: unknown type "snmp"`, "fence device: name is empty", "fence host h1: no level", `fence host h2: level 1 names unknown device "nope"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
}

func TestResolveForReplication(t *testing.T) {
	d := spec.Device{Name: "bmc", Type: "ipmi", Params: map[string]string{"address": "10.0.0.1", "user": "admin"}, PasswordFile: pwFile(t, 0o600)}
	r, err := d.Resolve()
	if err != nil {
		t.Fatal(err)
	}
	if r.PasswordFile != "" || r.Secret.Reveal() != secretPw {
		t.Fatalf("resolved %+v", r)
	}
	// The resolved form prints no secret (fencing/devices' TestOpenResolved
	// opens it without the file).
	if out := fmt.Sprintf("%v %+v %#v", r, r, r); strings.Contains(out, secretPw) {
		t.Fatalf("prints the secret: %s", out)
	}
	if _, err := (spec.Device{Name: "bmc", Type: "ipmi", Params: d.Params, PasswordEnv: "VMHA_TEST_UNSET_Y"}).Resolve(); err == nil || !strings.Contains(err.Error(), "VMHA_TEST_UNSET_Y is not set") {
		t.Fatalf("Resolve: %v", err)
	}
}
