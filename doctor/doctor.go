// Package doctor is vmha doctor's judgement: small pure checks over facts
// the cluster collected (each host's own answer, the leader's fence device
// status queries), each returning lines of ok, warn or fail with what to
// do. The I/O that collects the facts lives in facts.go (this host's
// side) and in cluster/doctor.go (asking every host); nothing here reads
// the clock, the network or a file.
package doctor

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/vmha/vmha/api"
	"github.com/vmha/vmha/fencing"
)

// Check names, in the order a host's lines are printed.
const (
	CheckAnswer  = "answer"
	CheckFence   = "fence"
	CheckReach   = "reach"
	CheckStorage = "storage"
	CheckClock   = "clock"
	CheckKeyring = "keyring"
	CheckCert    = "cert"
	CheckConfig  = "config"
	CheckVersion = "version"
)

var checkOrder = []string{CheckAnswer, CheckFence, CheckReach, CheckStorage, CheckClock, CheckKeyring, CheckCert, CheckConfig, CheckVersion}

// Certificate thresholds: a warn a month ahead, a fail a week ahead.
const (
	CertWarn = 30 * 24 * time.Hour
	CertFail = 7 * 24 * time.Hour
)

// Host is one host of the replicated config.
type Host struct {
	Name    string
	Witness bool
	// Fencing is set when the host has a fence topology.
	Fencing bool
	// LibvirtURI and MigrationURI are its live-migration endpoints
	// (empty: no live migration into it).
	LibvirtURI   string
	MigrationURI string
}

// Answer is a host's answer to the doctor's question, with the asking
// host's clock just before it asked and just after the answer came.
type Answer struct {
	Facts    *api.DoctorFacts
	Err      string
	Sent     time.Time
	Received time.Time
}

// Input is everything the doctor judges.
type Input struct {
	// Asker is the host that asks (the leader): clocks, settings, keys
	// and versions are compared with its own.
	Asker   string
	Now     time.Time
	Hosts   []Host
	Answers map[string]Answer
	// Fence holds the asker's status queries of each host's devices
	// (fencing.Topology.Check); FenceSkipped says why a host's were not
	// run.
	Fence        map[string][]fencing.DeviceCheck
	FenceSkipped map[string]string
	// LiveKeys is the asker's serf keyring query of every member (what
	// vmha gossip keys shows; nil: not made), LiveKeysErr why it failed.
	LiveKeys    *api.GossipKeys
	LiveKeysErr string
	// FencingOff is who turned fencing off (empty: on).
	FencingOff           string
	ClockWarn, ClockFail time.Duration
}

// Evaluate runs every check and returns the lines sorted by host, then
// check, in checkOrder.
func Evaluate(in Input) []api.DoctorCheck {
	var out []api.DoctorCheck
	ref := in.Answers[in.Asker].Facts
	for _, h := range in.Hosts {
		out = append(out, Fence(in.Asker, h, in.Fence[h.Name], in.FenceSkipped[h.Name], in.FencingOff)...)
		out = append(out, MigrationOff(in.Asker, h)...)
		a, ok := in.Answers[h.Name]
		if !ok || a.Facts == nil {
			why := a.Err
			if why == "" {
				why = "not asked (no API address yet)"
			}
			out = append(out, line(CheckAnswer, h.Name, in.Asker, api.DoctorFail, "no answer: "+why,
				fmt.Sprintf("is vmhad running on %s and its peer port reachable from %s? See vmha status and %s's log; its own checks could not run", h.Name, in.Asker, h.Name)))
			continue
		}
		f := a.Facts
		out = append(out, Reach(h.Name, f.Reach)...)
		out = append(out, Storage(h.Name, f.Storage)...)
		if h.Name != in.Asker {
			offset, rtt := ClockOffset(a, f)
			out = append(out, Clock(in.Asker, h.Name, offset, rtt, in.ClockWarn, in.ClockFail))
		}
		out = append(out, Keyring(in.Asker, ref, f))
		out = append(out, Certs(h.Name, f.TLS, f.Certs, in.Now)...)
		if h.Name != in.Asker && ref != nil {
			out = append(out, ConfigDrift(in.Asker, ref, f), Version(in.Asker, ref, f))
		}
	}
	out = append(out, ReachMissing(in.Hosts, in.Answers)...)
	if in.LiveKeys != nil || in.LiveKeysErr != "" {
		out = append(out, LiveKeyring(in.Asker, in.LiveKeys, in.LiveKeysErr))
	}
	Sort(out)
	return out
}

// Sort orders lines by host, then check (checkOrder), then the asking
// host, keeping the order within.
func Sort(cs []api.DoctorCheck) {
	slices.SortStableFunc(cs, func(a, b api.DoctorCheck) int {
		return cmp.Or(strings.Compare(a.Host, b.Host),
			cmp.Compare(slices.Index(checkOrder, a.Check), slices.Index(checkOrder, b.Check)),
			strings.Compare(a.From, b.From))
	})
}

func line(check, host, from, status, msg, fix string) api.DoctorCheck {
	if status == api.DoctorOK {
		fix = ""
	}
	return api.DoctorCheck{Check: check, Host: host, From: from, Status: status, Message: msg, Fix: fix}
}

// Fence judges the asker's status queries of host's fence devices: each
// device that did not answer with a definite power state fails (even
// when another level still answers: it is broken, and a level is only as
// good as its devices). A host without devices fails, unless fencing is
// off (a warn: the operator chose it). A witness has nothing to fence.
func Fence(from string, h Host, checks []fencing.DeviceCheck, skipped, fencingOff string) []api.DoctorCheck {
	if h.Witness {
		return nil
	}
	if !h.Fencing {
		st := api.DoctorFail
		msg := "no fence device: if this host fails, its VMs are never restarted elsewhere"
		if fencingOff != "" {
			st, msg = api.DoctorWarn, "no fence device; fencing is off (turned off by "+fencingOff+"): its VMs would be restarted without a power-off"
		}
		return []api.DoctorCheck{line(CheckFence, h.Name, from, st, msg,
			fmt.Sprintf("give %s a BMC (bmc: in its vmhad.yaml) or devices (vmha fence devices set %s FILE), then vmha fence devices accept %s (docs/fencing.md)", h.Name, h.Name, h.Name))}
	}
	if skipped != "" {
		return []api.DoctorCheck{line(CheckFence, h.Name, from, api.DoctorWarn, "devices not queried: "+skipped,
			fmt.Sprintf("run vmha doctor again on the leader, or vmha fence test %s", h.Name))}
	}
	if len(checks) == 0 {
		return []api.DoctorCheck{line(CheckFence, h.Name, from, api.DoctorFail, "devices not queried", "run vmha doctor again; see the leader's log")}
	}
	fenceable := fencing.Fenceable(checks)
	var out []api.DoctorCheck
	for _, c := range checks {
		msg := fmt.Sprintf("level %d %s: power %s (%s)", c.Level, c.Device, c.State, c.Duration.Round(time.Millisecond))
		if c.OK {
			out = append(out, line(CheckFence, h.Name, from, api.DoctorOK, msg, ""))
			continue
		}
		msg = fmt.Sprintf("level %d %s: %s", c.Level, c.Device, strings.TrimPrefix(c.Error, "status of "+c.Device+": "))
		if fenceable {
			msg += " (another level still answers)"
		} else {
			msg += "; no level can fence " + h.Name + " now: its VMs would not be recovered"
		}
		out = append(out, line(CheckFence, h.Name, from, api.DoctorFail, msg,
			fmt.Sprintf("check the device's address, port, user and password (vmha fence devices), that %s reaches it, and that it answers a status query by hand (ipmitool -I lanplus -H ADDR -U USER -C 3 chassis power status); then vmha fence test %s", from, h.Name)))
	}
	return out
}

// MigrationOff notes a host that takes no live migration (no
// migration.libvirt_uri): evacuations restart its VMs instead. A choice,
// so it is ok with a note.
func MigrationOff(from string, h Host) []api.DoctorCheck {
	if h.Witness || h.LibvirtURI != "" {
		return nil
	}
	return []api.DoctorCheck{line(CheckReach, h.Name, from, api.DoctorOK, "no migration.libvirt_uri: live migration into this host is off (moves to it restart the VM)", "")}
}

// Reach judges the dials one host made to the others' live-migration
// endpoints: a line per target, host being the host that dialed.
func Reach(from string, rs []api.DoctorReach) []api.DoctorCheck {
	var out []api.DoctorCheck
	for _, r := range rs {
		key := "migration.libvirt_uri"
		if r.What == "migration" {
			key = "migration.address"
		}
		if r.OK {
			out = append(out, line(CheckReach, r.Host, from, api.DoctorOK, fmt.Sprintf("%s %s: %s answers (%s)", r.What, r.Target, r.Dialed, r.Took.Round(time.Millisecond)), ""))
			continue
		}
		out = append(out, line(CheckReach, r.Host, from, api.DoctorFail, fmt.Sprintf("%s %s: %s", r.What, r.Target, r.Error),
			fmt.Sprintf("live migrations from %s to %s will fail: check %s in %s's vmhad.yaml, that its libvirtd listens there, and the firewall between them", from, r.Host, key, r.Host)))
	}
	return out
}

// ReachMissing reports a host with live migration that an answering host
// did not dial (it did not know the endpoint yet: a registration under
// way).
func ReachMissing(hosts []Host, answers map[string]Answer) []api.DoctorCheck {
	var out []api.DoctorCheck
	for _, from := range hosts {
		a := answers[from.Name]
		if from.Witness || a.Facts == nil {
			continue
		}
		for _, to := range hosts {
			if to.Name == from.Name || to.Witness || to.LibvirtURI == "" {
				continue
			}
			if !slices.ContainsFunc(a.Facts.Reach, func(r api.DoctorReach) bool { return r.Host == to.Name && r.What == "libvirt" }) {
				out = append(out, line(CheckReach, to.Name, from.Name, api.DoctorWarn, "not dialed: "+from.Name+" does not know "+to.Name+"'s libvirt URI yet",
					"run vmha doctor again in a minute: "+from.Name+" has not applied "+to.Name+"'s registration"))
			}
		}
	}
	return out
}

// Storage judges a host's own storage check (nil: none configured, no
// line).
func Storage(host string, sc *api.StorageCheck) []api.DoctorCheck {
	if sc == nil {
		return nil
	}
	var out []api.DoctorCheck
	for _, fs := range sc.FileSystems {
		switch {
		case !fs.Ready:
			out = append(out, line(CheckStorage, host, host, api.DoctorFail, fmt.Sprintf("%s not ready: %s", fs.Name, strings.Join(fs.Reasons, "; ")),
				fmt.Sprintf("VMs on %s cannot run on %s: see vmha storage check on %s (mount, lock manager, I/O) and docs/storage.md", fs.Name, host, host)))
		case !fs.FormatOK:
			out = append(out, line(CheckStorage, host, host, api.DoctorFail, fmt.Sprintf("%s: %s", fs.Name, fs.FormatError),
				fmt.Sprintf("see vmha storage check on %s; a file system needs a journal or slot per host (docs/storage.md)", host)))
		default:
			out = append(out, line(CheckStorage, host, host, api.DoctorOK, fs.Name+" ready", ""))
		}
	}
	if len(out) == 0 {
		out = append(out, line(CheckStorage, host, host, api.DoctorOK, "no cluster file system configured", ""))
	}
	return out
}

// ClockOffset estimates how far a host's clock is from the asker's: the
// host stamped its answer at f.Time after f.Took of work, so the network
// round trip is the asker's wait less Took, and the stamp was made about
// half of that before the answer arrived.
func ClockOffset(a Answer, f *api.DoctorFacts) (offset, rtt time.Duration) {
	rtt = a.Received.Sub(a.Sent) - f.Took
	if rtt < 0 {
		rtt = 0
	}
	return f.Time.Sub(a.Received.Add(-rtt / 2)), rtt
}

// Clock judges host's clock against the asker's: offset is the host's
// time minus the middle of the asker's round trip, rtt that round trip.
// The error of the estimate is at most rtt/2, which is taken off first so
// that a slow answer is not mistaken for skew.
func Clock(from, host string, offset, rtt time.Duration, warn, fail time.Duration) api.DoctorCheck {
	skew := offset.Abs() - rtt/2
	if skew < 0 {
		skew = 0
	}
	dir := "ahead of"
	if offset < 0 {
		dir = "behind"
	}
	msg := fmt.Sprintf("%s %s %s (±%s)", offset.Abs().Round(time.Millisecond), dir, from, (rtt / 2).Round(time.Millisecond))
	fix := "keep every host's clock synchronised (chrony or ntpd; chronyc tracking shows the offset): raft timers, the event log's order and certificate validity depend on it"
	switch {
	case skew > fail:
		return line(CheckClock, host, from, api.DoctorFail, msg+fmt.Sprintf(", more than %s", fail), fix)
	case skew > warn:
		return line(CheckClock, host, from, api.DoctorWarn, msg+fmt.Sprintf(", more than %s", warn), fix)
	}
	return line(CheckClock, host, from, api.DoctorOK, msg, "")
}

// Keyring judges a host's gossip keyring against the asker's (ref): the
// same keys and primary key is ok; a key set that differs while each
// still holds the other's primary key is a warn (a rotation half done);
// a host without the other's primary key cannot read its gossip: fail.
func Keyring(from string, ref, f *api.DoctorFacts) api.DoctorCheck {
	fixRotate := "see vmha gossip keys and finish the rotation (install, use, remove) so that every host has the same keys and primary key"
	switch {
	case f.GossipError != "":
		return line(CheckKeyring, f.Host, f.Host, api.DoctorWarn, "keyring unreadable: "+f.GossipError, "see vmha gossip keys on "+f.Host)
	case !f.GossipEncrypted && (ref == nil || !ref.GossipEncrypted):
		return line(CheckKeyring, f.Host, f.Host, api.DoctorWarn, "gossip is not encrypted: anyone who reaches the gossip port can join",
			"vmha cluster init makes a gossip key: set gossip.encrypt_key_file on every host (README, Security model)")
	case ref == nil:
		return line(CheckKeyring, f.Host, f.Host, api.DoctorOK, fmt.Sprintf("%d key(s), primary %s", len(f.GossipKeys), first(f.GossipKeys)), "")
	case f.GossipEncrypted != ref.GossipEncrypted:
		return line(CheckKeyring, f.Host, from, api.DoctorFail, fmt.Sprintf("gossip encryption differs: %s %s, %s %s", f.Host, onOff(f.GossipEncrypted), ref.Host, onOff(ref.GossipEncrypted)),
			"set the same gossip.encrypt_key_file on every host")
	case f.Host == ref.Host:
		return line(CheckKeyring, f.Host, from, api.DoctorOK, fmt.Sprintf("%d key(s), primary %s", len(f.GossipKeys), first(f.GossipKeys)), "")
	case !slices.Contains(f.GossipKeys, first(ref.GossipKeys)) || !slices.Contains(ref.GossipKeys, first(f.GossipKeys)):
		return line(CheckKeyring, f.Host, from, api.DoctorFail, fmt.Sprintf("keys %s (primary %s), %s has %s (primary %s): one cannot read the other's gossip",
			strings.Join(f.GossipKeys, ","), first(f.GossipKeys), ref.Host, strings.Join(ref.GossipKeys, ","), first(ref.GossipKeys)), fixRotate)
	case first(f.GossipKeys) != first(ref.GossipKeys) || !sameSet(f.GossipKeys, ref.GossipKeys):
		return line(CheckKeyring, f.Host, from, api.DoctorWarn, fmt.Sprintf("keys %s (primary %s), %s has %s (primary %s)",
			strings.Join(f.GossipKeys, ","), first(f.GossipKeys), ref.Host, strings.Join(ref.GossipKeys, ","), first(ref.GossipKeys)), fixRotate)
	}
	return line(CheckKeyring, f.Host, from, api.DoctorOK, fmt.Sprintf("%d key(s), primary %s, as on %s", len(f.GossipKeys), first(f.GossipKeys), ref.Host), "")
}

// LiveKeyring judges serf's keyring query of every member, made by the
// asker (the keys in memory, where Keyring reads each host's keyring
// file): every key installed on every member and one primary key
// everywhere is ok; a member's error, or keys or primaries that differ
// while every primary is on every member are a warn (a rotation half
// done); a primary key some member lacks, or an alive member that does
// not answer, is a fail: gossip does not get through between them.
func LiveKeyring(from string, gk *api.GossipKeys, queryErr string) api.DoctorCheck {
	fix := "see vmha gossip keys and finish the rotation (install, use, remove) so that every host has the same keys and primary key"
	if gk == nil {
		return line(CheckKeyring, from, from, api.DoctorWarn, "gossip keyring query: "+queryErr, "see vmha gossip keys and the log of the hosts that did not answer")
	}
	// Counts are of the members that answered: one that did not is a
	// warn of its own, not a key it lacks.
	var primaries, partial, missingPrimary []string
	for _, k := range gk.Keys {
		if k.Primary > 0 {
			primaries = append(primaries, k.Fingerprint)
			if k.Members < gk.Responses {
				missingPrimary = append(missingPrimary, fmt.Sprintf("%s (primary on %d, installed on %d of %d)", k.Fingerprint, k.Primary, k.Members, gk.Responses))
			}
		}
		if k.Members < gk.Responses {
			partial = append(partial, fmt.Sprintf("%s on %d of %d", k.Fingerprint, k.Members, gk.Responses))
		}
	}
	var errs []string
	for _, h := range sortedKeys(gk.Errors) {
		errs = append(errs, h+": "+gk.Errors[h])
	}
	switch {
	case len(missingPrimary) > 0:
		return line(CheckKeyring, from, from, api.DoctorFail, "serf keyring query: a primary key some members lack: "+strings.Join(missingPrimary, ", "), fix)
	case gk.Responses < gk.Members:
		// memberlist counts the members it sees alive: one of those that
		// does not answer within serf's query timeout does not read the
		// asker's gossip (another key) or does not reach it.
		msg := fmt.Sprintf("serf keyring query: %d of %d alive members answered: the others cannot read this host's gossip (another primary key?) or do not reach it", gk.Responses, gk.Members)
		if len(errs) > 0 {
			msg += "; " + strings.Join(errs, "; ")
		}
		return line(CheckKeyring, from, from, api.DoctorFail, msg, "see vmha gossip keys on each host and their logs; "+fix)
	case len(errs) > 0:
		return line(CheckKeyring, from, from, api.DoctorWarn, "serf keyring query: "+strings.Join(errs, "; "), "see vmha gossip keys and the log of those hosts")
	case len(primaries) != 1 || len(partial) > 0:
		return line(CheckKeyring, from, from, api.DoctorWarn, fmt.Sprintf("serf keyring query: primary keys %s; keys not on every member: %s",
			strings.Join(primaries, ", "), quote(strings.Join(partial, ", "))), fix)
	}
	return line(CheckKeyring, from, from, api.DoctorOK, fmt.Sprintf("serf keyring query: %d of %d members answered, %d key(s) on all, primary %s on all",
		gk.Responses, gk.Members, len(gk.Keys), primaries[0]), "")
}

func sortedKeys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func first(s []string) string {
	if len(s) == 0 {
		return "(none)"
	}
	return s[0]
}

func onOff(b bool) string {
	if b {
		return "encrypted"
	}
	return "not encrypted"
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

// Certs judges a host's TLS certificate and CA: a warn under CertWarn, a
// fail under CertFail, expired or unreadable. Without TLS, one warn.
func Certs(host string, tlsOn bool, certs []api.DoctorCert, now time.Time) []api.DoctorCheck {
	if !tlsOn {
		return []api.DoctorCheck{line(CheckCert, host, host, api.DoctorWarn, "mutual TLS is off: the peer API and raft run in plain TCP",
			"vmha cluster init makes the CA and certificates: set tls: on every host (README, Security model)")}
	}
	var out []api.DoctorCheck
	for _, c := range certs {
		fix := fmt.Sprintf("issue a new one (vmha tls issue %s), install it as %s and restart vmhad on %s", host, c.File, host)
		if c.Kind == "ca" {
			fix = "make a new cluster CA and a certificate for every host before it expires (vmha cluster init; README, Security model)"
		}
		if c.Error != "" {
			out = append(out, line(CheckCert, host, host, api.DoctorFail, fmt.Sprintf("%s %s: %s", c.Kind, c.File, c.Error), fix))
			continue
		}
		left := c.NotAfter.Sub(now)
		msg := fmt.Sprintf("%s %q expires %s", c.Kind, c.Subject, c.NotAfter.UTC().Format("2006-01-02"))
		switch {
		case left <= 0:
			out = append(out, line(CheckCert, host, host, api.DoctorFail, msg+": expired", fix))
		case left < CertFail:
			out = append(out, line(CheckCert, host, host, api.DoctorFail, fmt.Sprintf("%s, in %s", msg, days(left)), fix))
		case left < CertWarn:
			out = append(out, line(CheckCert, host, host, api.DoctorWarn, fmt.Sprintf("%s, in %s", msg, days(left)), fix))
		default:
			out = append(out, line(CheckCert, host, host, api.DoctorOK, fmt.Sprintf("%s, in %s", msg, days(left)), ""))
		}
	}
	return out
}

func days(d time.Duration) string {
	n := int(d / (24 * time.Hour))
	if n == 1 {
		return "1 day"
	}
	if n == 0 {
		return d.Round(time.Minute).String()
	}
	return fmt.Sprintf("%d days", n)
}

// ConfigDrift compares a host's cluster-wide settings with the asker's
// (the leader applies its own): a warn naming each setting that differs,
// since a new leader would apply the other values.
func ConfigDrift(from string, ref, f *api.DoctorFacts) api.DoctorCheck {
	if f.SettingsHash == ref.SettingsHash {
		return line(CheckConfig, f.Host, from, api.DoctorOK, "cluster-wide settings as on "+ref.Host+" ("+f.SettingsHash+")", "")
	}
	var diff []string
	keys := map[string]bool{}
	for k := range ref.Settings {
		keys[k] = true
	}
	for k := range f.Settings {
		keys[k] = true
	}
	sorted := make([]string, 0, len(keys))
	for k := range keys {
		sorted = append(sorted, k)
	}
	slices.Sort(sorted)
	for _, k := range sorted {
		if f.Settings[k] != ref.Settings[k] {
			diff = append(diff, fmt.Sprintf("%s %s (%s: %s)", k, quote(f.Settings[k]), ref.Host, quote(ref.Settings[k])))
		}
	}
	return line(CheckConfig, f.Host, from, api.DoctorWarn, "differs from "+ref.Host+": "+strings.Join(diff, "; "),
		"make these settings the same in every host's vmhad.yaml and restart vmhad there: the leader applies its own, so a new leader would change them")
}

func quote(s string) string {
	if s == "" {
		return `""`
	}
	return s
}

// Version compares a host's vmhad version with the asker's: a warn (an
// upgrade under way is fine for a while).
func Version(from string, ref, f *api.DoctorFacts) api.DoctorCheck {
	if f.Version == ref.Version {
		return line(CheckVersion, f.Host, from, api.DoctorOK, "vmhad "+f.Version, "")
	}
	return line(CheckVersion, f.Host, from, api.DoctorWarn, fmt.Sprintf("vmhad %s, %s runs %s", f.Version, ref.Host, ref.Version),
		"finish the upgrade: the same vmha package on every host (one host at a time)")
}

// Count returns the number of lines by status.
func Count(cs []api.DoctorCheck) (ok, warn, fail int) {
	for _, c := range cs {
		switch c.Status {
		case api.DoctorOK:
			ok++
		case api.DoctorWarn:
			warn++
		default:
			fail++
		}
	}
	return ok, warn, fail
}

// ExitCode is vmha doctor's exit status: 1 on any fail (or, strict, any
// warn), else 0.
func ExitCode(cs []api.DoctorCheck, strict bool) int {
	_, warn, fail := Count(cs)
	if fail > 0 || (strict && warn > 0) {
		return 1
	}
	return 0
}
