package hypervisor

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
)

func memXML(name string, memMiB, vcpus int) string {
	return fmt.Sprintf(`<domain type='kvm'><name>%s</name><memory unit='MiB'>%d</memory><vcpu>%d</vcpu><os><type>hvm</type></os></domain>`, name, memMiB, vcpus)
}

func mustList(t *testing.T, m *Memory) map[string]Domain {
	t.Helper()
	ds, err := m.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]Domain{}
	for _, d := range ds {
		out[d.Name] = d
	}
	return out
}

func TestMemoryDefineParsesTheXML(t *testing.T) {
	ctx := context.Background()
	m := NewMemory(MemoryOptions{Info: NodeInfo{MemoryMiB: 4096, CPUs: 8}})
	name, err := m.Define(ctx, memXML("vm1", 512, 2))
	if err != nil || name != "vm1" {
		t.Fatalf("Define = %q, %v", name, err)
	}
	d := mustList(t, m)["vm1"]
	if d.State != StateShutoff || d.MemoryMiB != 512 || d.VCPUs != 2 || d.UUID == "" {
		t.Fatalf("defined domain = %+v", d)
	}
	// A redefinition keeps identity and run state, and takes the new size.
	if err := m.Start(ctx, "vm1"); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Define(ctx, memXML("vm1", 1024, 4)); err != nil {
		t.Fatal(err)
	}
	d2 := mustList(t, m)["vm1"]
	if d2.UUID != d.UUID || d2.State != StateRunning || d2.MemoryMiB != 1024 || d2.VCPUs != 4 {
		t.Fatalf("redefined domain = %+v, was %+v", d2, d)
	}
	for _, bad := range []string{"", "<domain>", "<vm/>", "<domain type='kvm'><name>x</name></domain>"} {
		if _, err := m.Define(ctx, bad); err == nil {
			t.Errorf("Define(%q) succeeded", bad)
		}
	}
	if ni, err := m.NodeInfo(ctx); err != nil || ni.MemoryMiB != 4096 || ni.CPUs != 8 {
		t.Fatalf("NodeInfo = %+v, %v", ni, err)
	}
}

// TestMemoryIdempotency checks the interface's promises: starting a running
// domain, stopping a stopped or unknown one and undefining an unknown one
// all succeed; starting an unknown one is ErrNotFound.
func TestMemoryIdempotency(t *testing.T) {
	ctx := context.Background()
	m := NewMemory(MemoryOptions{})
	if err := m.Start(ctx, "ghost"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Start(unknown) = %v, want ErrNotFound", err)
	}
	if err := m.Stop(ctx, "ghost", time.Second); err != nil {
		t.Fatalf("Stop(unknown) = %v", err)
	}
	if err := m.Undefine(ctx, "ghost"); err != nil {
		t.Fatalf("Undefine(unknown) = %v", err)
	}
	if _, err := m.Define(ctx, memXML("vm1", 256, 1)); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		if err := m.Start(ctx, "vm1"); err != nil {
			t.Fatalf("Start #%d: %v", i+1, err)
		}
		if s := mustList(t, m)["vm1"].State; s != StateRunning {
			t.Fatalf("after Start #%d: %s", i+1, s)
		}
	}
	for i := 0; i < 2; i++ {
		if err := m.Stop(ctx, "vm1", time.Second); err != nil {
			t.Fatalf("Stop #%d: %v", i+1, err)
		}
		if s := mustList(t, m)["vm1"].State; s != StateShutoff {
			t.Fatalf("after Stop #%d: %s", i+1, s)
		}
	}
	for i := 0; i < 2; i++ {
		if err := m.Undefine(ctx, "vm1"); err != nil {
			t.Fatalf("Undefine #%d: %v", i+1, err)
		}
	}
	if len(mustList(t, m)) != 0 {
		t.Fatalf("domains left after Undefine: %v", mustList(t, m))
	}
}

// TestMemoryUndefineRunning: as with libvirt, undefining a running domain
// leaves it running (transient) until it stops, then it is gone.
func TestMemoryUndefineRunning(t *testing.T) {
	ctx := context.Background()
	m := NewMemory(MemoryOptions{})
	if _, err := m.Define(ctx, memXML("vm1", 256, 1)); err != nil {
		t.Fatal(err)
	}
	if err := m.Start(ctx, "vm1"); err != nil {
		t.Fatal(err)
	}
	if err := m.Undefine(ctx, "vm1"); err != nil {
		t.Fatal(err)
	}
	if s := mustList(t, m)["vm1"].State; s != StateRunning {
		t.Fatalf("undefined running domain is %q, want still running", s)
	}
	if err := m.Stop(ctx, "vm1", time.Second); err != nil {
		t.Fatal(err)
	}
	if _, ok := mustList(t, m)["vm1"]; ok {
		t.Fatal("transient domain still listed after it stopped")
	}
}

func TestMemoryEvents(t *testing.T) {
	ctx := context.Background()
	m := NewMemory(MemoryOptions{EventBuffer: 4})
	if _, err := m.Define(ctx, memXML("vm1", 256, 1)); err != nil {
		t.Fatal(err)
	}
	_ = m.Start(ctx, "vm1")
	_ = m.Crash("vm1")
	_ = m.Stop(ctx, "vm1", 0)
	want := []string{"defined", "started", "crashed"}
	for _, w := range want {
		select {
		case ev := <-m.Events():
			if ev.Detail != w || ev.Domain != "vm1" || ev.Time.IsZero() {
				t.Fatalf("event = %+v, want detail %s", ev, w)
			}
		case <-time.After(time.Second):
			t.Fatalf("no %s event", w)
		}
	}
	// A crashed domain is not active, so the stop emitted nothing; a full
	// channel drops events instead of blocking the hypervisor.
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < 100; i++ {
			_ = m.Start(ctx, "vm1")
			_ = m.Stop(ctx, "vm1", 0)
		}
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("a slow event reader blocked the hypervisor")
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil {
		t.Fatalf("second Close = %v", err)
	}
	for range m.Events() { //nolint:revive // drain until closed
	}
	if err := m.Start(ctx, "vm1"); !errors.Is(err, ErrClosed) {
		t.Fatalf("Start after Close = %v, want ErrClosed", err)
	}
}

func TestMemoryCrashAndPower(t *testing.T) {
	ctx := context.Background()
	m := NewMemory(MemoryOptions{})
	for _, n := range []string{"a", "b", "c"} {
		if _, err := m.Define(ctx, memXML(n, 256, 1)); err != nil {
			t.Fatal(err)
		}
	}
	_ = m.Start(ctx, "a")
	_ = m.Start(ctx, "b")
	if err := m.Crash("c"); err == nil {
		t.Fatal("crash of a stopped domain succeeded")
	}
	if err := m.Crash("a"); err != nil {
		t.Fatal(err)
	}
	if got := m.Active(); len(got) != 1 || got[0] != "b" {
		t.Fatalf("Active after crash = %v, want [b]", got)
	}
	if s := mustList(t, m)["a"].State; s != StateCrashed {
		t.Fatalf("crashed domain is %s", s)
	}
	if err := m.Start(ctx, "a"); err != nil {
		t.Fatalf("restart after crash: %v", err)
	}
	_ = m.Undefine(ctx, "b") // b is transient now: it must not survive the power cut
	m.PowerOff()
	m.PowerOff()
	if !m.PoweredOff() || len(m.Active()) != 0 {
		t.Fatalf("after PowerOff: off=%v active=%v", m.PoweredOff(), m.Active())
	}
	if _, err := m.List(ctx); !errors.Is(err, ErrPoweredOff) {
		t.Fatalf("List while off = %v", err)
	}
	if err := m.Start(ctx, "a"); !errors.Is(err, ErrPoweredOff) {
		t.Fatalf("Start while off = %v", err)
	}
	m.PowerOn()
	got := mustList(t, m)
	if len(got) != 2 || got["a"].State != StateShutoff || got["c"].State != StateShutoff {
		t.Fatalf("after PowerOn: %+v, want a and c defined and off", got)
	}
}

// TestMemoryWorldLock: a holder of the World write lock sees a still
// picture: no state changes until it lets go, while List still answers.
func TestMemoryWorldLock(t *testing.T) {
	ctx := context.Background()
	var world sync.RWMutex
	m := NewMemory(MemoryOptions{World: &world})
	if _, err := m.Define(ctx, memXML("vm1", 256, 1)); err != nil {
		t.Fatal(err)
	}
	world.Lock()
	started := make(chan error, 1)
	go func() { started <- m.Start(ctx, "vm1") }()
	time.Sleep(50 * time.Millisecond)
	if len(m.Active()) != 0 {
		world.Unlock()
		t.Fatal("a state change went through while the world was held")
	}
	if _, err := m.List(ctx); err != nil {
		world.Unlock()
		t.Fatal(err)
	}
	world.Unlock()
	if err := <-started; err != nil {
		t.Fatal(err)
	}
	if len(m.Active()) != 1 {
		t.Fatal("start lost")
	}
}

func TestMemoryConcurrent(t *testing.T) {
	ctx := context.Background()
	m := NewMemory(MemoryOptions{})
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				name := fmt.Sprintf("vm%d", i%10)
				_, _ = m.Define(ctx, memXML(name, 128, 1))
				_ = m.Start(ctx, name)
				_, _ = m.List(ctx)
				_ = m.Stop(ctx, name, 0)
				if i%7 == g {
					_ = m.Undefine(ctx, name)
				}
			}
		}()
	}
	go func() {
		for range m.Events() { //nolint:revive // drain
		}
	}()
	wg.Wait()
	for _, d := range mustList(t, m) {
		if d.State.Active() {
			t.Fatalf("%s still active after every goroutine stopped it", d.Name)
		}
	}
	_ = m.Close()
}

func TestMemoryContextCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	m := NewMemory(MemoryOptions{})
	if _, err := m.Define(ctx, memXML("vm1", 128, 1)); !errors.Is(err, context.Canceled) {
		t.Fatalf("Define with a cancelled context = %v", err)
	}
}
