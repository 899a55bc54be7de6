package storage

import (
	"strings"
	"testing"

	"github.com/vmha/vmha/sharedfs"
)

func TestCheckVMs(t *testing.T) {
	got, err := cfg.CheckVMs(map[string][]string{
		"b": {"/srv/vmstore/b.img", "/local/b.img"},
		"a": {"/local/a.img"},
		"c": {"vgdlm/c"},
	})
	if err == nil {
		t.Fatal("accepted")
	}
	msg := err.Error()
	ia, ib := strings.Index(msg, "VM a: disk /local/a.img"), strings.Index(msg, "VM b: disk /local/b.img")
	if ia < 0 || ib < 0 || ia > ib {
		t.Fatalf("want both VMs in name order: %s", msg)
	}
	if len(got["b"]) != 1 || len(got["c"]) != 1 || got["c"][0].LV != "c" {
		t.Fatalf("resources %+v", got)
	}
}

func TestMayRecover(t *testing.T) {
	for _, l := range []sharedfs.Liveness{sharedfs.Writing, sharedfs.Silent, sharedfs.Never} {
		if err := MayRecover("h2", l, true); err != nil {
			t.Errorf("%s fenced: %v", l, err)
		}
		err := MayRecover("h2", l, false)
		if err == nil || !strings.Contains(err.Error(), "host h2") {
			t.Errorf("%s unfenced: %v", l, err)
		}
	}
	if err := MayRecover("h2", sharedfs.Writing, false); !strings.Contains(err.Error(), "cut off from the cluster, not dead") {
		t.Fatal(err)
	}
}
