package clvm

import (
	"strings"
	"testing"
)

// The testdata files are output of lvs and vgs (LVM 2.03.16, Debian 12)
// for a local VG on a loop device with one LV created under
// activation=0: without device-mapper its state shows as "X" (unknown).
func TestParseLVsCaptured(t *testing.T) {
	for _, f := range []string{"lvs-json-binary-inactive.txt", "lvs-json-inactive.txt"} {
		got, err := ParseLVs(readTestdata(t, f))
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if len(got) != 1 || got[0].Ref() != "vmhacap/vm1disk" || got[0].ActiveLocally || got[0].ActiveExclusively || got[0].Attr != "-wi-XX----" {
			t.Fatalf("%s: %+v", f, got)
		}
	}
	// Active rows in both spellings (written by hand: nothing can be
	// activated here).
	for _, row := range []string{
		`{"lv_name":"a", "vg_name":"v", "lv_attr":"-wi-a-----", "lv_active_locally":"1", "lv_active_remotely":"0", "lv_active_exclusively":"1"}`,
		`{"lv_name":"a", "vg_name":"v", "lv_attr":"-wi-a-----", "lv_active_locally":"active locally", "lv_active_remotely":"", "lv_active_exclusively":"active exclusively"}`,
	} {
		got, err := ParseLVs([]byte(`{"report":[{"lv":[` + row + `]}]}`))
		if err != nil || !got[0].ActiveExclusively || !got[0].ActiveLocally || got[0].ActiveRemotely {
			t.Fatalf("%s: %+v %v", row, got, err)
		}
	}
	for _, bad := range []string{"", "{}", `{"report":[{"lv":[{"vg_name":"v"}]}]}`, `{"report":[{"lv":[{"lv_name":"a","vg_name":"v","lv_active_locally":"maybe"}]}]}`} {
		if _, err := ParseLVs([]byte(bad)); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}

func TestParseVGsCaptured(t *testing.T) {
	for _, f := range []string{"vgs-json-binary-local.txt", "vgs-json-local.txt"} {
		got, err := ParseVGs(readTestdata(t, f))
		if err != nil || len(got) != 1 || got[0].Name != "vmhacap" || got[0].Clustered || got[0].Shared || got[0].LockType != "" {
			t.Fatalf("%s: %+v %v", f, got, err)
		}
	}
	got, err := ParseVGs([]byte(`{"report":[{"vg":[{"vg_name":"old","vg_attr":"wz--nc","vg_lock_type":""},{"vg_name":"new","vg_attr":"wz--ns","vg_lock_type":"dlm"}]}]}`))
	if err != nil || !got[0].Clustered || got[1].Clustered || !got[1].Shared || got[1].LockType != "dlm" {
		t.Fatalf("%+v %v", got, err)
	}
}

func TestCreateVGArgs(t *testing.T) {
	args, err := CreateVGArgs("vmvg", LockSanlock, []string{"/dev/sdb", "/dev/sdc"})
	if err != nil || strings.Join(args, " ") != "--shared --lock-type sanlock vmvg /dev/sdb /dev/sdc" {
		t.Fatalf("%v %v", args, err)
	}
	for _, c := range []struct {
		name, lt string
		pvs      []string
	}{{"vmvg", "clvm", []string{"/dev/sdb"}}, {"", "dlm", []string{"/dev/sdb"}}, {"a/b", "dlm", []string{"/dev/sdb"}}, {"vmvg", "dlm", nil}} {
		if _, err := CreateVGArgs(c.name, c.lt, c.pvs); err == nil {
			t.Errorf("%+v accepted", c)
		}
	}
}

func TestDetectLegacy(t *testing.T) {
	conf := []byte("global {\n\t# locking_type = 1\n\tlocking_type = 3\n\tuse_lvmlockd = 0\n}\n")
	vgs := []VG{{Name: "oldvg", Attr: "wz--nc", Clustered: true}, {Name: "newvg", Attr: "wz--ns", Shared: true, LockType: "dlm"}}
	cib := []byte(`<cib><configuration><resources>
	  <clone id="clvmd-clone"><primitive id="clvmd" class="ocf" provider="lvm2" type="clvmd"/></clone>
	  <primitive id="dlm" class="ocf" provider="pacemaker" type="controld"/>
	  <primitive id="vm1" class="ocf" provider="heartbeat" type="VirtualDomain"/>
	</resources></configuration></cib>`)
	got, err := DetectLegacy(conf, vgs, cib)
	if err != nil {
		t.Fatal(err)
	}
	var items []string
	for _, f := range got {
		items = append(items, f.Item)
		if f.Advice == "" || f.Problem == "" {
			t.Errorf("finding without problem or advice: %+v", f)
		}
	}
	want := "lvm.conf global/locking_type = 3|lvm.conf global/use_lvmlockd = 0|VG oldvg (attr wz--nc) is clustered|Pacemaker resource clvmd (ocf:lvm2:clvmd)"
	if strings.Join(items, "|") != want {
		t.Fatalf("got %q\nwant %q", strings.Join(items, "|"), want)
	}
	if !strings.Contains(got[2].Advice, "vgchange --lock-type dlm oldvg") {
		t.Fatalf("advice does not name the VG: %s", got[2].Advice)
	}

	// Debian 12's stock lvm.conf: use_lvmlockd is only in a comment, so off.
	got, err = DetectLegacy(readTestdata(t, "lvm.conf-debian12-default"), nil, nil)
	if err != nil || len(got) != 1 || got[0].Item != "lvm.conf global/use_lvmlockd = 0" {
		t.Fatalf("stock lvm.conf: %+v %v", got, err)
	}
	// A converted host: nothing to report.
	got, err = DetectLegacy([]byte("global {\n use_lvmlockd = 1\n}\n"), vgs[1:], []byte(`<cib/>`))
	if err != nil || len(got) != 0 {
		t.Fatalf("converted host: %+v %v", got, err)
	}
	if _, err := DetectLegacy(nil, nil, []byte("<cib><unclosed>")); err == nil {
		t.Fatal("broken CIB accepted")
	}
}

func FuzzParseLVs(f *testing.F) {
	f.Add(readTestdata(f, "lvs-json-binary-inactive.txt"))
	f.Add(readTestdata(f, "lvs-json-inactive.txt"))
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := ParseLVs(data)
		if err != nil {
			return
		}
		for _, lv := range got {
			if lv.Name == "" || lv.VG == "" {
				t.Fatalf("row without names: %+v", lv)
			}
		}
	})
}

func FuzzParseVGs(f *testing.F) {
	f.Add(readTestdata(f, "vgs-json-binary-local.txt"))
	f.Add(readTestdata(f, "vgs-json-local.txt"))
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := ParseVGs(data)
		if err != nil {
			return
		}
		for _, vg := range got {
			if vg.Name == "" {
				t.Fatalf("row without a name: %+v", vg)
			}
			if len(vg.Attr) >= 6 && vg.Attr[5] == 'c' && !vg.Clustered {
				t.Fatalf("attr %q but not clustered", vg.Attr)
			}
		}
	})
}

func FuzzDetectLegacy(f *testing.F) {
	f.Add([]byte("locking_type = 3\n"), []byte(`<cib><primitive id="c" class="ocf" provider="lvm2" type="clvmd"/></cib>`))
	f.Fuzz(func(t *testing.T, conf, cib []byte) {
		got, _ := DetectLegacy(conf, nil, cib)
		for _, fd := range got {
			if fd.Item == "" || fd.Advice == "" {
				t.Fatalf("empty finding %+v", fd)
			}
		}
	})
}
