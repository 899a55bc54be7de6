package api

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/vmha/vmha/model"
)

// TestFenceDevicesOf: the structured fence devices say what each device is
// and where it answers, level by level, and never its password or user.
func TestFenceDevicesOf(t *testing.T) {
	topo := &model.FenceTopology{
		Devices: []model.FenceDevice{
			{Name: "bmc@h1", Type: "ipmi", Params: map[string]string{"address": "10.0.0.1", "user": "admin"}, Password: "s3cret"},
			{Name: "pdu@h1", Type: "agent", Params: map[string]string{"agent": "fence_apc", "ip": "10.0.0.9", "port": "4"}, Password: "pdu-pw", AllowUnsafe: true},
			{Name: "virt@h1", Type: "libvirt", Params: map[string]string{"uri": "qemu+tcp://root:hunter2@10.0.0.2/system"}},
			{Name: "bmc2@h1", Type: "ipmi", Params: map[string]string{"address": "10.0.0.3", "port": "6230"}},
		},
		Levels: [][]string{{"bmc@h1", "bmc2@h1"}, {"pdu@h1"}, {"virt@h1"}},
	}
	got := FenceDevicesOf(topo)
	want := []FenceDeviceInfo{
		{Name: "bmc@h1", Type: "ipmi", Level: 1, Address: "10.0.0.1", Port: 623},
		{Name: "bmc2@h1", Type: "ipmi", Level: 1, Address: "10.0.0.3", Port: 6230},
		{Name: "pdu@h1", Type: "agent", Level: 2, Address: "10.0.0.9", Agent: "fence_apc", AllowUnsafe: true},
		{Name: "virt@h1", Type: "libvirt", Level: 3, URI: "qemu+tcp://root@10.0.0.2/system"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got  %+v\nwant %+v", got, want)
	}
	b, err := json.Marshal(got)
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{"s3cret", "pdu-pw", "hunter2", "admin"} {
		if strings.Contains(string(b), secret) {
			t.Errorf("%q in %s", secret, b)
		}
	}
	if got := FenceDevicesOf(nil); got == nil || len(got) != 0 {
		t.Fatalf("no topology: %#v, want []", got)
	}
}
