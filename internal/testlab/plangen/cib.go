package plangen

import (
	"bytes"
	"fmt"

	"github.com/vmha/vmha/internal/pacemaker"
	"github.com/vmha/vmha/placement"
)

// Input is the placement input the files of Files describe.
func Input(nh, nv int) placement.Input {
	in := placement.Input{Policy: placement.Policy{Strategy: placement.StrategyBalanced, DefaultStickiness: 100}}
	perHost := int64(nv/nh+2) * 2048
	for i := range nh {
		in.Hosts = append(in.Hosts, placement.HostInfo{Name: Host(i),
			Capacity:   map[string]int64{"memory": perHost, "cpu": perHost / 512},
			Attributes: map[string]string{"pingd": "100", "zone": fmt.Sprint(i % 3)}})
	}
	in.Hosts[0].Standby = true
	for i := range nv {
		in.VMs = append(in.VMs, placement.VMInfo{Name: VM(i), Current: Host(i % nh), AllowMigrate: true,
			Utilization: map[string]int64{"memory": int64(1024 + 1024*(i%2)), "cpu": int64(1 + i%3)}, Priority: i % 3})
		in.Locations = append(in.Locations, placement.Location{VM: VM(i), Host: Host((i + 1) % nh), Score: 100})
		in.LocationRules = append(in.LocationRules, placement.LocationRule{VM: VM(i), Rule: placement.Rule{
			Score: -placement.Infinity, BoolOp: "or", Expressions: []placement.Expression{
				{Attribute: "pingd", Operation: "lte", Value: "0", Type: "number"},
				{Attribute: "pingd", Operation: "not_defined"}}}})
	}
	return in
}

// CIB writes Input(nh, nv) as a Pacemaker CIB with the operation history
// a real cluster keeps: besides the start where each VM runs, every node
// holds a probe (monitor, rc 7: not running) of every VM, as after
// Pacemaker probed them all. This history is most of a real CIB's size:
// 32 hosts × 500 VMs make about 9 MB.
func CIB(nh, nv int) []byte {
	in := Input(nh, nv)
	cib := pacemaker.WriteCIB(&in)
	var out bytes.Buffer
	out.Grow(len(cib) + nh*nv*600)
	for h := 0; ; h++ {
		i := bytes.Index(cib, []byte("<lrm_resources>"))
		if i < 0 {
			out.Write(cib)
			break
		}
		i += len("<lrm_resources>")
		out.Write(cib[:i])
		cib = cib[i:]
		for v := range nv {
			if v%nh == h {
				continue // WriteCIB wrote its start
			}
			fmt.Fprintf(&out, `<lrm_resource id="%s" class="ocf" provider="heartbeat" type="VirtualDomain">`+
				`<lrm_rsc_op id="%s_last_0" operation_key="%s_monitor_0" operation="monitor" crm-debug-origin="build_active_RAs" crm_feature_set="%s" `+
				`transition-key="%d:1:7:6a1ab2c5-8e2c-4a5e-b1e4-4d5a0a6f2c1d" transition-magic="0:7;%d:1:7:6a1ab2c5-8e2c-4a5e-b1e4-4d5a0a6f2c1d" `+
				`exit-reason="" on_node="%s" call-id="%d" rc-code="7" op-status="0" interval="0" last-rc-change="1733400000" exec-time="41" queue-time="0" `+
				`op-digest="4811cef7f7f94e3a35a70be7916cb2fd"/></lrm_resource>`,
				VM(v), VM(v), VM(v), pacemaker.FeatureSet, v+1, v+1, Host(h), v+2)
		}
	}
	return out.Bytes()
}
