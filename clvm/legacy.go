package clvm

import (
	"bufio"
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
)

// Finding is one piece of an old clvmd setup, with what to do about it.
type Finding struct {
	Item    string `json:"item"`    // what was found, e.g. "lvm.conf global/locking_type = 3"
	Problem string `json:"problem"` // why vmha cannot use it
	Advice  string `json:"advice"`  // how to move to lvmlockd
}

func (f Finding) String() string { return f.Item + ": " + f.Problem + " " + f.Advice }

// toLvmlockd is the common advice: clvmd left LVM in 2.03 (Debian 11 and
// later); lvmlockd with the DLM replaces it.
const toLvmlockd = "Move to lvmlockd: install lvm2-lockd and dlm-controld, set use_lvmlockd = 1 in lvm.conf, run lvmlockd and dlm_controld on every host, then for each clustered VG (no LV active anywhere): vgchange --lock-type none --lockopt force VG; vgchange --lock-type dlm VG; vgchange --lockstart VG on every host."

var settingLine = regexp.MustCompile(`^\s*(locking_type|use_lvmlockd)\s*=\s*([0-9]+)\s*(#.*)?$`)

// lvmConf reads the settings that matter from lvm.conf text (comments and
// everything else ignored; the last assignment wins, as in LVM).
func lvmConf(data []byte) (lockingType, useLvmlockd int, sawLocking, sawUse bool) {
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		m := settingLine.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		n, err := strconv.Atoi(m[2])
		if err != nil {
			continue
		}
		if m[1] == "locking_type" {
			lockingType, sawLocking = n, true
		} else {
			useLvmlockd, sawUse = n, true
		}
	}
	return
}

// cibPrimitive is a <primitive> of a Pacemaker CIB.
type cibPrimitive struct {
	ID, Class, Provider, Type string
}

// cibPrimitives lists the primitives of a CIB (or any XML holding them).
func cibPrimitives(data []byte) ([]cibPrimitive, error) {
	dec := xml.NewDecoder(bytes.NewReader(data))
	var out []cibPrimitive
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, fmt.Errorf("CIB XML: %w", err)
		}
		se, ok := tok.(xml.StartElement)
		if !ok || se.Name.Local != "primitive" {
			continue
		}
		var p cibPrimitive
		for _, a := range se.Attr {
			switch a.Name.Local {
			case "id":
				p.ID = a.Value
			case "class":
				p.Class = a.Value
			case "provider":
				p.Provider = a.Value
			case "type":
				p.Type = a.Value
			}
		}
		out = append(out, p)
	}
}

// DetectLegacy reports an old clvmd setup from lvm.conf's text, the VGs as
// vgs reports them, and a Pacemaker CIB (any of them may be nil). It never
// changes anything.
func DetectLegacy(lvmConfText []byte, vgs []VG, cib []byte) ([]Finding, error) {
	var out []Finding
	if lvmConfText != nil {
		lt, use, sawLT, sawUse := lvmConf(lvmConfText)
		if sawLT && lt == 3 {
			out = append(out, Finding{
				Item:    "lvm.conf global/locking_type = 3",
				Problem: "clustered locking through clvmd, which LVM 2.03 no longer has: LVM commands refuse clustered VGs.",
				Advice:  toLvmlockd,
			})
		}
		// The caller passes lvm.conf only where vmha manages shared VGs,
		// which need lvmlockd; LVM's default is off.
		if !sawUse || use != 1 {
			out = append(out, Finding{
				Item:    fmt.Sprintf("lvm.conf global/use_lvmlockd = %d", use),
				Problem: "lvmlockd is off, so shared VGs cannot be used and LVs are not protected from activation on two hosts.",
				Advice:  "Set use_lvmlockd = 1 in the global section of lvm.conf on every host and run lvmlockd.",
			})
		}
	}
	for _, vg := range vgs {
		if vg.Clustered || vg.LockType == "clvm" {
			out = append(out, Finding{
				Item:    fmt.Sprintf("VG %s (attr %s) is clustered", vg.Name, vg.Attr),
				Problem: "a clvmd VG: LVM 2.03 cannot activate its LVs and lvmlockd does not lock them.",
				Advice:  strings.ReplaceAll("Convert it: vgchange --lock-type none --lockopt force VG; vgchange --lock-type dlm VG; vgchange --lockstart VG on every host (no LV of it may be active).", "VG", vg.Name),
			})
		}
	}
	if cib != nil {
		prims, err := cibPrimitives(cib)
		if err != nil {
			return out, err
		}
		for _, p := range prims {
			isClvmd := strings.EqualFold(p.Class, "ocf") && (p.Provider == "lvm2" && p.Type == "clvmd" || p.Provider == "heartbeat" && p.Type == "clvm")
			if !isClvmd {
				continue
			}
			out = append(out, Finding{
				Item:    fmt.Sprintf("Pacemaker resource %s (ocf:%s:%s)", p.ID, p.Provider, p.Type),
				Problem: "runs clvmd, which vmha does not use and LVM 2.03 does not have.",
				Advice:  "Do not import it: vmha activates each VM's LVs itself through lvmlockd (exclusive where the VM runs, shared only during a live migration). Run dlm_controld and lvmlockd as system services (or ocf:pacemaker:controld and ocf:heartbeat:lvmlockd while Pacemaker still runs), then convert the clustered VGs. " + toLvmlockd,
			})
		}
	}
	return out, nil
}
