// Package clvm manages logical volumes of shared volume groups (lvmlockd
// with the dlm or sanlock lock type) so that activation follows the VM: an
// LV is active exclusively on the host that runs its VM, shared on both
// ends only during a live migration, and inactive everywhere else. It also
// detects the old clvmd setups (locking_type=3, clustered VGs,
// ocf:lvm2:clvmd resources) and says how to move off them.
//
// Everything goes through a Runner that runs a command on a named host, so
// the decisions are tested with a recording runner (this machine has no
// device-mapper, no lvmlockd, no DLM or sanlock: activation itself cannot
// run here) and the parsers against real lvs/vgs output.
package clvm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/vmha/vmha/sharedfs"
)

// Runner runs a command on host and returns its stdout. The agent's
// implementation runs locally for its own host and asks the peer's agent
// for other hosts.
type Runner interface {
	Run(ctx context.Context, host, name string, args ...string) ([]byte, error)
}

// LocalRunner runs commands on this host only; a command for any other
// host is an error, never silently run here.
type LocalRunner struct {
	Host string
	Exec sharedfs.Runner // nil means sharedfs.ExecRunner
}

// Run runs the command if host is r.Host.
func (r LocalRunner) Run(ctx context.Context, host, name string, args ...string) ([]byte, error) {
	if host != r.Host {
		return nil, fmt.Errorf("%s on host %s: this runner only runs on %s", sharedfs.CommandLine(name, args), host, r.Host)
	}
	ex := r.Exec
	if ex == nil {
		ex = sharedfs.ExecRunner{}
	}
	return ex.Run(ctx, name, args...)
}

// LV is one logical volume as lvs reports it on one host. With lvmlockd,
// each host only knows its own activation: ActiveExclusively means active
// here with an exclusive lock.
type LV struct {
	Name              string
	VG                string
	Attr              string
	ActiveLocally     bool
	ActiveRemotely    bool // only clvmd could tell; lvmlockd reports false
	ActiveExclusively bool
}

// Ref is "VG/LV".
func (l LV) Ref() string { return l.VG + "/" + l.Name }

// lvsFields are the columns LVStatus asks for; ParseLVs reads them.
var lvsFields = "lv_name,vg_name,lv_attr,lv_active_locally,lv_active_remotely,lv_active_exclusively"

type lvsReport struct {
	Report []struct {
		LV []map[string]string `json:"lv"`
		VG []map[string]string `json:"vg"`
	} `json:"report"`
}

// flag reads a binary column: "1"/"0" with --binary, or the column's
// name-like text ("active exclusively") / "" without.
func flag(v string) (bool, error) {
	switch v {
	case "1":
		return true, nil
	case "", "0":
		return false, nil
	}
	if strings.HasPrefix(v, "active") || v == "clustered" || v == "shared" {
		return true, nil
	}
	return false, fmt.Errorf("%q is not a binary column value", v)
}

// ParseLVs parses `lvs --reportformat json [--binary] -o lv_name,vg_name,
// lv_attr,lv_active_locally,lv_active_remotely,lv_active_exclusively`.
func ParseLVs(data []byte) ([]LV, error) {
	var rep lvsReport
	if err := json.Unmarshal(data, &rep); err != nil {
		return nil, fmt.Errorf("lvs JSON report: %w", err)
	}
	if len(rep.Report) == 0 {
		return nil, errors.New("lvs JSON report has no report section")
	}
	var out []LV
	for _, r := range rep.Report {
		for i, m := range r.LV {
			lv := LV{Name: m["lv_name"], VG: m["vg_name"], Attr: m["lv_attr"]}
			if lv.Name == "" || lv.VG == "" {
				return nil, fmt.Errorf("lvs JSON report: row %d has no lv_name or vg_name", i)
			}
			var errs []error
			var err error
			lv.ActiveLocally, err = flag(m["lv_active_locally"])
			errs = append(errs, err)
			lv.ActiveRemotely, err = flag(m["lv_active_remotely"])
			errs = append(errs, err)
			lv.ActiveExclusively, err = flag(m["lv_active_exclusively"])
			errs = append(errs, err)
			if err := errors.Join(errs...); err != nil {
				return nil, fmt.Errorf("lvs JSON report: %s: %w", lv.Ref(), err)
			}
			out = append(out, lv)
		}
	}
	return out, nil
}

// VG is one volume group as vgs reports it.
type VG struct {
	Name      string
	Attr      string // e.g. "wz--n-"; 6th character 'c' = clustered (clvmd), 's' = shared (lvmlockd)
	LockType  string // "dlm", "sanlock", "clvm", "" (local)
	Clustered bool
	Shared    bool
}

var vgsFields = "vg_name,vg_attr,vg_lock_type,vg_clustered,vg_shared"

// ParseVGs parses `vgs --reportformat json [--binary] -o vg_name,vg_attr,
// vg_lock_type,vg_clustered,vg_shared`. The clustered flag is also read
// from the 6th attribute character, which older LVM prints without the
// vg_clustered column.
func ParseVGs(data []byte) ([]VG, error) {
	var rep lvsReport
	if err := json.Unmarshal(data, &rep); err != nil {
		return nil, fmt.Errorf("vgs JSON report: %w", err)
	}
	if len(rep.Report) == 0 {
		return nil, errors.New("vgs JSON report has no report section")
	}
	var out []VG
	for _, r := range rep.Report {
		for i, m := range r.VG {
			vg := VG{Name: m["vg_name"], Attr: m["vg_attr"], LockType: m["vg_lock_type"]}
			if vg.Name == "" {
				return nil, fmt.Errorf("vgs JSON report: row %d has no vg_name", i)
			}
			c, err1 := flag(m["vg_clustered"])
			s, err2 := flag(m["vg_shared"])
			if err := errors.Join(err1, err2); err != nil {
				return nil, fmt.Errorf("vgs JSON report: %s: %w", vg.Name, err)
			}
			vg.Clustered, vg.Shared = c, s
			if len(vg.Attr) >= 6 {
				switch vg.Attr[5] {
				case 'c':
					vg.Clustered = true
				case 's':
					vg.Shared = true
				}
			}
			out = append(out, vg)
		}
	}
	return out, nil
}

// LockTypes lvmlockd supports.
const (
	LockDLM     = "dlm"
	LockSanlock = "sanlock"
)

// CreateVGArgs is the vgcreate command line for a shared VG. lvmlockd must
// run on the host (vgcreate refuses: "Using a shared lock type requires
// lvmlockd"), and with sanlock the VG's first PV holds the lock LV.
func CreateVGArgs(name, lockType string, pvs []string) ([]string, error) {
	if lockType != LockDLM && lockType != LockSanlock {
		return nil, fmt.Errorf("shared VG %s: lock type %q: want %q or %q", name, lockType, LockDLM, LockSanlock)
	}
	if name == "" || strings.ContainsAny(name, "/ \t\n") || strings.HasPrefix(name, "-") {
		return nil, fmt.Errorf("shared VG name %q is not valid for LVM", name)
	}
	if len(pvs) == 0 {
		return nil, fmt.Errorf("shared VG %s: no physical volumes", name)
	}
	args := []string{"--shared", "--lock-type", lockType, name}
	return append(args, pvs...), nil
}

// CreateSharedVG creates the VG on host and starts its lockspace there.
// Every other host must then run StartLocks before it can activate LVs.
func CreateSharedVG(ctx context.Context, r Runner, host, name, lockType string, pvs []string) error {
	args, err := CreateVGArgs(name, lockType, pvs)
	if err != nil {
		return err
	}
	if _, err := r.Run(ctx, host, "vgcreate", args...); err != nil {
		return fmt.Errorf("creating shared VG %s on %s: %w", name, host, err)
	}
	return StartLocks(ctx, r, host, name)
}

// StartLocks joins host to the VG's lockspace (vgchange --lockstart), which
// lvmlockd needs before any LV of the VG can be activated there.
func StartLocks(ctx context.Context, r Runner, host, vg string) error {
	if _, err := r.Run(ctx, host, "vgchange", "--lockstart", vg); err != nil {
		return fmt.Errorf("starting the lockspace of VG %s on %s: %w", vg, host, err)
	}
	return nil
}
