package web

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// BenchmarkPages renders each page at 1,000 hosts × 50,000 VMs from the
// shared status snapshot (made once; BenchmarkSnapshot measures making
// it). go test -run '^$' -bench Pages ./web/
func BenchmarkPages(b *testing.B) {
	c := newFakeCluster(1000, 50000)
	s, err := New(Options{Backend: fakeBackend{c}, Log: zerolog.Nop(), Refresh: time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	h := s.Handler()
	cookie, _ := s.sessions.create(Identity{Name: "alice", Role: RoleOperator, TokenID: "op0000000001"})
	get := func(b *testing.B, path string, hdr map[string]string) {
		r := httptest.NewRequest("GET", "https://console.example"+path, nil)
		r.AddCookie(&http.Cookie{Name: cookieSession, Value: cookie})
		for k, v := range hdr {
			r.Header.Set(k, v)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != http.StatusOK {
			b.Fatalf("%s: %d %s", path, w.Code, w.Body)
		}
	}
	get(b, "/", nil) // the snapshot
	for _, pg := range []struct{ name, path string }{
		{"overview", "/"},
		{"overview-page-300", "/?vp=300&hp=7"},
		{"overview-filtered", "/?q=" + url.QueryEscape("vm4999") + "&show="},
		{"overview-problems", "/?show=problems"},
		{"host", "/hosts/host500"},
		{"vm", "/vms/vm25000"},
		{"events", "/events"},
		{"action-confirm", "/act/stop?vm=vm25000"},
	} {
		b.Run(pg.name, func(b *testing.B) {
			for b.Loop() {
				get(b, pg.path, nil)
			}
		})
	}
	b.Run("overview-live-swap", func(b *testing.B) {
		for b.Loop() {
			get(b, "/", map[string]string{headerPartial: "1"})
		}
	})
}

// BenchmarkSnapshot is the shared status read the pages render from, at
// 1,000 × 50,000: the API's JSON decoded and fingerprinted (once per
// refresh interval per host, whatever the number of browsers).
func BenchmarkSnapshot(b *testing.B) {
	c := newFakeCluster(1000, 50000)
	s, err := New(Options{Backend: fakeBackend{c}, Log: zerolog.Nop(), Refresh: time.Nanosecond})
	if err != nil {
		b.Fatal(err)
	}
	b.Run("fetch+fingerprint", func(b *testing.B) {
		for b.Loop() {
			// load, not get: get would answer from the snapshot it has
			// for five times a read's cost.
			if sn := s.snap.load(b.Context()); sn.err != nil {
				b.Fatal(sn.err)
			}
		}
	})
	st, _ := fakeBackend{c}.API(s.reader).Status(b.Context())
	b.Run("fingerprint", func(b *testing.B) {
		for b.Loop() {
			fingerprint(st)
		}
	})
}
