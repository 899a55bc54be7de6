package clusterspec

import (
	"testing"

	"github.com/vmha/vmha/internal/testlab/plangen"
)

// BenchmarkRead1000x50000 reads plangen's cluster.yaml (20 MB) and
// status.yaml of 1,000 hosts × 50,000 VMs, and builds the engine's input:
// what vmha plan does before the engine runs.
func BenchmarkRead1000x50000(b *testing.B) {
	spec, status := plangen.Files(1000, 50000)
	b.Run("Decode", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := Decode(spec); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("DecodeOwned", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			b.StopTimer()
			data := append([]byte(nil), spec...) // handed over: a copy per run
			b.StartTimer()
			if _, err := DecodeOwned(data); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("ParseStatus", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := ParseStatus(status); err != nil {
				b.Fatal(err)
			}
		}
	})
	s, err := Decode(spec)
	if err != nil {
		b.Fatal(err)
	}
	st, err := ParseStatus(status)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("Input", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := s.Input(st); err != nil {
				b.Fatal(err)
			}
		}
	})
}
