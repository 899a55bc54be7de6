package doctor

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vmha/vmha/api"
	"github.com/vmha/vmha/fencing"
)

// diff is a readable difference of two lists of lines ("" when equal).
func diff(want, got []string) string {
	if slices.Equal(want, got) {
		return ""
	}
	return "want:\n  " + strings.Join(want, "\n  ") + "\ngot:\n  " + strings.Join(got, "\n  ")
}

// statuses returns each line's "check host status" for a compact diff.
func statuses(cs []api.DoctorCheck) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = c.Check + " " + c.Host + " " + c.Status
	}
	return out
}

func TestFence(t *testing.T) {
	ok := fencing.DeviceCheck{Host: "h2", Level: 1, Device: "ipmi bmc@h2", OK: true, State: fencing.PowerOn, Duration: 20 * time.Millisecond}
	bad := fencing.DeviceCheck{Host: "h2", Level: 1, Device: "ipmi bmc@h2", State: fencing.PowerUnknown, Error: "status of bmc@h2: i/o timeout"}
	pdu := fencing.DeviceCheck{Host: "h2", Level: 2, Device: "pdu@h2", OK: true, State: fencing.PowerOn}
	h := Host{Name: "h2", Fencing: true}
	for _, tc := range []struct {
		name       string
		h          Host
		checks     []fencing.DeviceCheck
		skipped    string
		fencingOff string
		want       []string
		msg        string
	}{
		{"answers", h, []fencing.DeviceCheck{ok}, "", "", []string{"fence h2 ok"}, "level 1 ipmi bmc@h2: power on (20ms)"},
		{"silent device", h, []fencing.DeviceCheck{bad}, "", "", []string{"fence h2 fail"}, "no level can fence h2 now"},
		{"silent device, another level answers", h, []fencing.DeviceCheck{bad, pdu}, "", "", []string{"fence h2 fail", "fence h2 ok"}, "another level still answers"},
		{"no device", Host{Name: "h2"}, nil, "", "", []string{"fence h2 fail"}, "no fence device"},
		{"no device, fencing off", Host{Name: "h2"}, nil, "", "alice", []string{"fence h2 warn"}, "turned off by alice"},
		{"witness", Host{Name: "w", Witness: true}, nil, "", "", []string{}, ""},
		{"skipped", h, nil, "not the leader", "", []string{"fence h2 warn"}, "not the leader"},
		{"not queried", h, nil, "", "", []string{"fence h2 fail"}, "not queried"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Fence("h1", tc.h, tc.checks, tc.skipped, tc.fencingOff)
			if d := diff(tc.want, statuses(got)); d != "" {
				t.Fatalf("%s", d)
			}
			if tc.msg != "" && !strings.Contains(got[0].Message, tc.msg) {
				t.Fatalf("message %q, want %q in it", got[0].Message, tc.msg)
			}
			for _, c := range got {
				if c.From != "h1" || (c.Status != api.DoctorOK) == (c.Fix == "") {
					t.Fatalf("line %+v: from the asker, a fix exactly when not ok", c)
				}
			}
		})
	}
}

func TestReachAndMigrationOff(t *testing.T) {
	got := Reach("h1", []api.DoctorReach{
		{Host: "h2", What: "libvirt", Target: "qemu+tcp://h2/system", Dialed: "h2:16509", OK: true},
		{Host: "h3", What: "migration", Target: "tcp://10.0.0.3", Error: "dial 10.0.0.3:49152: i/o timeout"},
	})
	if d := diff([]string{"reach h2 ok", "reach h3 fail"}, statuses(got)); d != "" {
		t.Fatal(d)
	}
	if got[1].From != "h1" || !strings.Contains(got[1].Fix, "migration.address in h3's vmhad.yaml") {
		t.Fatalf("%+v", got[1])
	}
	if len(MigrationOff("h1", Host{Name: "h2", LibvirtURI: "qemu+tls://h2/system"})) != 0 || len(MigrationOff("h1", Host{Name: "w", Witness: true})) != 0 {
		t.Fatal("a host with live migration, or a witness, has no note")
	}
	if got := MigrationOff("h1", Host{Name: "h2"}); len(got) != 1 || got[0].Status != api.DoctorOK {
		t.Fatalf("%+v", got)
	}
	missing := ReachMissing([]Host{{Name: "h1"}, {Name: "h2", LibvirtURI: "qemu+tcp://h2/system"}, {Name: "w", Witness: true}},
		map[string]Answer{"h1": {Facts: &api.DoctorFacts{}}, "h2": {Facts: &api.DoctorFacts{}}, "w": {Facts: &api.DoctorFacts{}}})
	if d := diff([]string{"reach h2 warn"}, statuses(missing)); d != "" || missing[0].From != "h1" {
		t.Fatalf("%s %+v", d, missing)
	}
}

func TestStorage(t *testing.T) {
	for _, tc := range []struct {
		name string
		sc   *api.StorageCheck
		want []string
	}{
		{"none configured", nil, []string{}},
		{"ready", &api.StorageCheck{FileSystems: []api.StorageFS{{Name: "vmstore", Ready: true, FormatOK: true}}}, []string{"storage h1 ok"}},
		{"not ready", &api.StorageCheck{FileSystems: []api.StorageFS{{Name: "vmstore", Reasons: []string{"not mounted"}, FormatOK: true}}}, []string{"storage h1 fail"}},
		{"bad format", &api.StorageCheck{FileSystems: []api.StorageFS{{Name: "vmstore", Ready: true, FormatError: "2 journals for 3 hosts"}}}, []string{"storage h1 fail"}},
		{"volume groups only", &api.StorageCheck{}, []string{"storage h1 ok"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if d := diff(tc.want, statuses(Storage("h1", tc.sc))); d != "" {
				t.Fatal(d)
			}
		})
	}
}

func TestClock(t *testing.T) {
	const warn, fail = 500 * time.Millisecond, 5 * time.Second
	for _, tc := range []struct {
		name        string
		offset, rtt time.Duration
		want        string
	}{
		{"in step", 3 * time.Millisecond, 2 * time.Millisecond, api.DoctorOK},
		{"ahead 800ms", 800 * time.Millisecond, 2 * time.Millisecond, api.DoctorWarn},
		{"behind 800ms", -800 * time.Millisecond, 2 * time.Millisecond, api.DoctorWarn},
		{"800ms but a 1s round trip could explain it", 800 * time.Millisecond, time.Second, api.DoctorOK},
		{"an hour behind", -time.Hour, 10 * time.Millisecond, api.DoctorFail},
		{"just over the fail threshold", fail + 10*time.Millisecond, 0, api.DoctorFail},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := Clock("h1", "h2", tc.offset, tc.rtt, warn, fail)
			if c.Status != tc.want || c.Host != "h2" || c.From != "h1" {
				t.Fatalf("%+v, want %s", c, tc.want)
			}
		})
	}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	// Asked at t0, answered at t0+3s after 2 s of work: the network took
	// 1 s, so the stamp was made at about t0+2.5s by the asker's clock.
	off, rtt := ClockOffset(Answer{Sent: t0, Received: t0.Add(3 * time.Second)}, &api.DoctorFacts{Time: t0.Add(2500*time.Millisecond + time.Minute), Took: 2 * time.Second})
	if off != time.Minute || rtt != time.Second {
		t.Fatalf("offset %v rtt %v, want 1m and 1s", off, rtt)
	}
}

func TestKeyring(t *testing.T) {
	ref := &api.DoctorFacts{Host: "h1", GossipEncrypted: true, GossipKeys: []string{"aa", "bb"}}
	for _, tc := range []struct {
		name string
		ref  *api.DoctorFacts
		f    api.DoctorFacts
		want string
	}{
		{"same", ref, api.DoctorFacts{Host: "h2", GossipEncrypted: true, GossipKeys: []string{"aa", "bb"}}, api.DoctorOK},
		{"the asker itself", ref, *ref, api.DoctorOK},
		{"same keys, other order, other primary", ref, api.DoctorFacts{Host: "h2", GossipEncrypted: true, GossipKeys: []string{"bb", "aa"}}, api.DoctorWarn},
		{"an extra key", ref, api.DoctorFacts{Host: "h2", GossipEncrypted: true, GossipKeys: []string{"aa", "bb", "cc"}}, api.DoctorWarn},
		{"missing the primary", ref, api.DoctorFacts{Host: "h2", GossipEncrypted: true, GossipKeys: []string{"bb"}}, api.DoctorFail},
		{"a primary the asker lacks", ref, api.DoctorFacts{Host: "h2", GossipEncrypted: true, GossipKeys: []string{"cc", "aa"}}, api.DoctorFail},
		{"not encrypted here", ref, api.DoctorFacts{Host: "h2"}, api.DoctorFail},
		{"not encrypted anywhere", &api.DoctorFacts{Host: "h1"}, api.DoctorFacts{Host: "h2"}, api.DoctorWarn},
		{"unreadable", ref, api.DoctorFacts{Host: "h2", GossipEncrypted: true, GossipError: "bad json"}, api.DoctorWarn},
		{"no reference", nil, api.DoctorFacts{Host: "h2", GossipEncrypted: true, GossipKeys: []string{"aa"}}, api.DoctorOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if c := Keyring("h1", tc.ref, &tc.f); c.Status != tc.want || c.Host != tc.f.Host {
				t.Fatalf("%+v, want %s", c, tc.want)
			}
		})
	}
}

func TestLiveKeyring(t *testing.T) {
	key := func(fp string, members, primary int) api.GossipKey {
		return api.GossipKey{Fingerprint: fp, Members: members, Primary: primary}
	}
	for _, tc := range []struct {
		name string
		gk   *api.GossipKeys
		err  string
		want string
	}{
		{"agreed", &api.GossipKeys{Members: 3, Responses: 3, Keys: []api.GossipKey{key("aa", 3, 3), key("bb", 3, 0)}}, "", api.DoctorOK},
		{"a key on two of three", &api.GossipKeys{Members: 3, Responses: 3, Keys: []api.GossipKey{key("aa", 3, 3), key("bb", 2, 0)}}, "", api.DoctorWarn},
		{"two primaries, both everywhere", &api.GossipKeys{Members: 3, Responses: 3, Keys: []api.GossipKey{key("aa", 3, 2), key("bb", 3, 1)}}, "", api.DoctorWarn},
		{"a primary some lack", &api.GossipKeys{Members: 3, Responses: 3, Keys: []api.GossipKey{key("aa", 3, 2), key("bb", 1, 1)}}, "", api.DoctorFail},
		{"an alive member did not answer", &api.GossipKeys{Members: 3, Responses: 2, Keys: []api.GossipKey{key("aa", 2, 2)}}, "", api.DoctorFail},
		{"a member that answered lacks the primary", &api.GossipKeys{Members: 3, Responses: 2, Keys: []api.GossipKey{key("aa", 1, 1), key("bb", 2, 1)}}, "", api.DoctorFail},
		{"a member's error", &api.GossipKeys{Members: 3, Responses: 3, Keys: []api.GossipKey{key("aa", 3, 3)}, Errors: map[string]string{"h2": "boom"}}, "", api.DoctorWarn},
		{"query failed", nil, "timeout", api.DoctorWarn},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if c := LiveKeyring("h1", tc.gk, tc.err); c.Status != tc.want || c.Host != "h1" {
				t.Fatalf("%+v, want %s", c, tc.want)
			}
		})
	}
}

func TestCerts(t *testing.T) {
	now := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	cert := func(kind string, left time.Duration) api.DoctorCert {
		return api.DoctorCert{Kind: kind, File: "/etc/vmha/tls/x.crt", Subject: "h1", NotAfter: now.Add(left)}
	}
	for _, tc := range []struct {
		name  string
		tls   bool
		certs []api.DoctorCert
		want  []string
		fix   string
	}{
		{"no TLS", false, nil, []string{"cert h1 warn"}, "vmha cluster init"},
		{"a year", true, []api.DoctorCert{cert("cert", 365*24*time.Hour), cert("ca", 3650*24*time.Hour)}, []string{"cert h1 ok", "cert h1 ok"}, ""},
		{"20 days", true, []api.DoctorCert{cert("cert", 20*24*time.Hour)}, []string{"cert h1 warn"}, "vmha tls issue h1"},
		{"3 days", true, []api.DoctorCert{cert("cert", 3*24*time.Hour)}, []string{"cert h1 fail"}, "vmha tls issue h1"},
		{"CA expired", true, []api.DoctorCert{cert("ca", -time.Hour)}, []string{"cert h1 fail"}, "new cluster CA"},
		{"unreadable", true, []api.DoctorCert{{Kind: "cert", File: "/x", Error: "no such file"}}, []string{"cert h1 fail"}, "vmha tls issue h1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Certs("h1", tc.tls, tc.certs, now)
			if d := diff(tc.want, statuses(got)); d != "" {
				t.Fatal(d)
			}
			if tc.fix != "" && !strings.Contains(got[0].Fix, tc.fix) {
				t.Fatalf("fix %q, want %q in it", got[0].Fix, tc.fix)
			}
		})
	}
}

func TestConfigDriftAndVersion(t *testing.T) {
	s1 := map[string]string{"admission": "auto", "migration.max_per_target": "2", "alerts": "none"}
	s2 := map[string]string{"admission": "auto", "migration.max_per_target": "4", "alerts": "mail 0a1b"}
	ref := &api.DoctorFacts{Host: "h1", Settings: s1, SettingsHash: HashSettings(s1), Version: "v1.2.0"}
	same := &api.DoctorFacts{Host: "h2", Settings: s1, SettingsHash: HashSettings(s1), Version: "v1.2.0"}
	other := &api.DoctorFacts{Host: "h3", Settings: s2, SettingsHash: HashSettings(s2), Version: "v1.1.0"}
	if c := ConfigDrift("h1", ref, same); c.Status != api.DoctorOK {
		t.Fatalf("%+v", c)
	}
	c := ConfigDrift("h1", ref, other)
	want := "differs from h1: alerts mail 0a1b (h1: none); migration.max_per_target 4 (h1: 2)"
	if c.Status != api.DoctorWarn || c.Message != want {
		t.Fatalf("%+v\nwant message %q", c, want)
	}
	if c := Version("h1", ref, same); c.Status != api.DoctorOK {
		t.Fatalf("%+v", c)
	}
	if c := Version("h1", ref, other); c.Status != api.DoctorWarn || !strings.Contains(c.Message, "v1.1.0, h1 runs v1.2.0") {
		t.Fatalf("%+v", c)
	}
	if HashSettings(s1) == HashSettings(s2) || HashSettings(s1) != HashSettings(map[string]string{"alerts": "none", "admission": "auto", "migration.max_per_target": "2"}) {
		t.Fatal("the hash depends on the values, not on the map's order")
	}
}

// Evaluate puts it together: a host that does not answer is a fail for
// it (its fence devices are still judged, from the leader's queries), and
// lines come sorted by host and check.
func TestEvaluate(t *testing.T) {
	now := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	settings := map[string]string{"admission": "auto"}
	facts := func(host string, skew time.Duration) *api.DoctorFacts {
		return &api.DoctorFacts{Host: host, Time: now.Add(skew), Version: "v1", Settings: settings, SettingsHash: HashSettings(settings)}
	}
	in := Input{
		Asker: "h1", Now: now, ClockWarn: 500 * time.Millisecond, ClockFail: 5 * time.Second,
		Hosts: []Host{{Name: "h1", Fencing: true}, {Name: "h2", Fencing: true}, {Name: "h3", Fencing: true}},
		Answers: map[string]Answer{
			"h1": {Facts: facts("h1", 0), Sent: now, Received: now},
			"h2": {Facts: facts("h2", 2*time.Second), Sent: now, Received: now},
			"h3": {Err: "ask h3: context deadline exceeded", Sent: now, Received: now.Add(15 * time.Second)},
		},
		Fence: map[string][]fencing.DeviceCheck{
			"h1": {{Level: 1, Device: "bmc@h1", OK: true, State: fencing.PowerOn}},
			"h2": {{Level: 1, Device: "bmc@h2", OK: true, State: fencing.PowerOn}},
			"h3": {{Level: 1, Device: "bmc@h3", State: fencing.PowerUnknown, Error: "timeout"}},
		},
	}
	got := Evaluate(in)
	want := []string{
		"fence h1 ok", "reach h1 ok", "keyring h1 warn", "cert h1 warn",
		"fence h2 ok", "reach h2 ok", "clock h2 warn", "keyring h2 warn", "cert h2 warn", "config h2 ok", "version h2 ok",
		"answer h3 fail", "fence h3 fail", "reach h3 ok",
	}
	if d := diff(want, statuses(got)); d != "" {
		t.Fatalf("%s", d)
	}
	if ok, warn, fail := Count(got); ok != 7 || warn != 5 || fail != 2 {
		t.Fatalf("count %d %d %d", ok, warn, fail)
	}
	if ExitCode(got, false) != 1 || ExitCode(got[:4], false) != 0 || ExitCode(got[:4], true) != 1 || ExitCode(got[:1], true) != 0 {
		t.Fatal("exit: 1 on a fail; warnings alone 0, or 1 with strict")
	}
}
