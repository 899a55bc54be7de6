package placement

import (
	"reflect"
	"testing"

	"pgregory.net/rapid"
)

// TestSolveValidatesByDefault: without Options.Validated, Solve refuses an
// input that does not validate, with Validate's error.
func TestSolveValidatesByDefault(t *testing.T) {
	in := Input{Hosts: []HostInfo{{Name: "h1"}}, VMs: []VMInfo{{Name: "a"}},
		Locations: []Location{{VM: "a", Host: "h9", Score: 1}}}
	_, err := Solve(in, Options{})
	want := Validate(&in)
	if err == nil || want == nil || err.Error() != want.Error() {
		t.Errorf("Solve: %v, want Validate's %v", err, want)
	}
}

// TestValidatedSameResult: on a valid input, skipping Solve's own
// Validate (Options.Validated) changes nothing in the Result.
func TestValidatedSameResult(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		in := genInput(t, 0)
		if Validate(&in) != nil {
			t.Skip("not a valid input")
		}
		for _, opt := range []Options{{}, {Scores: true, Explain: []string{"vm0"}}} {
			want, err := Solve(in, opt)
			if err != nil {
				t.Fatal(err)
			}
			opt.Validated = true
			got, err := Solve(in, opt)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("Validated: %+v\nwithout: %+v", got, want)
			}
		}
	})
}
