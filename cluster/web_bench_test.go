package cluster

import (
	"context"
	"testing"

	"github.com/vmha/vmha/config"
	"github.com/vmha/vmha/web"
)

// BenchmarkConsoleSnapshot is the web console's shared status read at
// 1,000 hosts × 50,000 VMs on a real (in-memory raft) leader: the status
// built by the API, encoded, and decoded by the console, as it happens
// once per second per host while live pages are open, whatever the number
// of browsers. Pages render from it (go test -run '^$' -bench Pages ./web/).
//
//	go test -run '^$' -bench ConsoleSnapshot -benchmem ./cluster/
func BenchmarkConsoleSnapshot(b *testing.B) {
	n := newMemNode(b, &config.Daemon{NodeName: "h1", Admission: "open"})
	big := bigState(1000, 50000)
	n.fsm.mu.Lock()
	n.fsm.state = big.state
	n.fsm.mu.Unlock()
	c := n.Console().API(web.Identity{Name: "web console on h1", Role: web.RoleReadOnly})
	b.ReportAllocs()
	for b.Loop() {
		st, err := c.Status(context.Background())
		if err != nil {
			b.Fatal(err)
		}
		if len(st.VMs) != 50000 {
			b.Fatalf("%d VMs", len(st.VMs))
		}
	}
}
