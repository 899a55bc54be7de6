package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/vmha/vmha/internal/testlab/plangen"
)

// benchPlan runs the whole vmha plan command (flags, reading and parsing
// the files, the engine, the output) on plangen's files, as the binary
// does, writing to io.Discard. The files are written once, outside the
// timing.
func benchPlan(b *testing.B, nh, nv int, extra ...string) {
	benchPlanWith(b, nh, nv, plangen.Options{}, extra...)
}

func benchPlanWith(b *testing.B, nh, nv int, o plangen.Options, extra ...string) {
	cfg, st, err := plangen.WriteWith(b.TempDir(), nh, nv, o)
	if err != nil {
		b.Fatal(err)
	}
	args := append([]string{"plan", "--config", cfg, "--status", st}, extra...)
	b.ReportAllocs()
	for b.Loop() {
		if code := run(args, io.Discard, io.Discard); code != 0 {
			b.Fatalf("vmha %v: exit %d", args, code)
		}
	}
}

func BenchmarkPlan(b *testing.B) {
	for _, sz := range []struct{ nh, nv int }{{32, 2000}, {100, 5000}, {1000, 50000}} {
		b.Run(fmt.Sprintf("%dx%d", sz.nh, sz.nv), func(b *testing.B) { benchPlan(b, sz.nh, sz.nv) })
	}
}

// BenchmarkPlanShort is BenchmarkPlan with capacity short (plangen's
// Options.Short): issue 17 wants it no slower than 10× the ample case.
func BenchmarkPlanShort(b *testing.B) {
	for _, sz := range []struct{ nh, nv int }{{32, 2000}, {100, 5000}, {1000, 50000}} {
		b.Run(fmt.Sprintf("%dx%d", sz.nh, sz.nv), func(b *testing.B) { benchPlanWith(b, sz.nh, sz.nv, plangen.Options{Short: true}) })
	}
}

func BenchmarkPlanJSON(b *testing.B) {
	for _, sz := range []struct{ nh, nv int }{{32, 2000}, {100, 5000}} {
		b.Run(fmt.Sprintf("%dx%d", sz.nh, sz.nv), func(b *testing.B) { benchPlan(b, sz.nh, sz.nv, "-o", "json") })
	}
}

// BenchmarkPlanCIB runs vmha plan --pacemaker-cib on plangen's CIB of 32
// hosts × 500 VMs with every node's probe history (9.4 MB).
func BenchmarkPlanCIB(b *testing.B) {
	p := filepath.Join(b.TempDir(), "cib.xml")
	if err := os.WriteFile(p, plangen.CIB(32, 500), 0o644); err != nil {
		b.Fatal(err)
	}
	args := []string{"plan", "--pacemaker-cib", p}
	b.ReportAllocs()
	for b.Loop() {
		if code := run(args, io.Discard, io.Discard); code != 0 {
			b.Fatalf("vmha %v: exit %d", args, code)
		}
	}
}
