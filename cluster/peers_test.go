package cluster

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vmha/vmha/api"
)

// connCounter counts a test server's connections and which are closed.
type connCounter struct {
	mu             sync.Mutex
	opened, closed int
}

func (c *connCounter) hook(_ net.Conn, s http.ConnState) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch s {
	case http.StateNew:
		c.opened++
	case http.StateClosed, http.StateHijacked:
		c.closed++
	}
}

func (c *connCounter) get() (int, int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.opened, c.closed
}

// One client per peer: many calls share a connection; forgetting the peer
// closes it; after close, calls keep nothing open.
func TestPeerClientsReuseAndClose(t *testing.T) {
	var cc connCounter
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, api.Alive{Node: "h2"})
	}))
	srv.Config.ConnState = cc.hook
	srv.Start()
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")

	p := newPeerClients(nil)
	for i := range 20 {
		var a api.Alive
		if err := p.do(context.Background(), addr, time.Second, "GET", api.PathAlive, nil, &a, nil); err != nil || a.Node != "h2" {
			t.Fatalf("call %d: %v %+v", i, err, a)
		}
	}
	if opened, _ := cc.get(); opened != 1 {
		t.Fatalf("20 sequential calls opened %d connections, want 1", opened)
	}
	first, again := p.get(addr), p.get(addr)
	if first != again || p.size() != 1 {
		t.Fatal("the peer's client is not kept")
	}
	p.forget(addr)
	waitConns(t, &cc, 1, 1)
	if p.size() != 0 {
		t.Fatal("a forgotten peer is still kept")
	}
	// A peer back after leaving gets a new client.
	if err := p.do(context.Background(), addr, time.Second, "GET", api.PathAlive, nil, nil, nil); err != nil {
		t.Fatal(err)
	}
	p.close()
	waitConns(t, &cc, 2, 2)
	// A late call at shutdown works and leaves nothing open.
	if err := p.do(context.Background(), addr, time.Second, "GET", api.PathAlive, nil, nil, nil); err != nil {
		t.Fatal(err)
	}
	waitConns(t, &cc, 3, 3)
	if p.size() != 0 {
		t.Fatal("a client was kept after close")
	}
}

func waitConns(t *testing.T, cc *connCounter, opened, closed int) {
	t.Helper()
	for end := time.Now().Add(3 * time.Second); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
		if o, c := cc.get(); o == opened && c == closed {
			return
		}
	}
	o, c := cc.get()
	t.Fatalf("connections opened %d closed %d, want %d and %d", o, c, opened, closed)
}
