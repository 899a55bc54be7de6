package sim

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// fenceScript is the simulated hosts' fence agent. The leader's real
// fencing code runs it like any fence_* program of fence-agents (options as
// key=value lines on stdin; for status, exit 0 is on and 2 is off). "off"
// asks the simulation to cut the host's power (a request file) and returns
// once the simulation confirms it (an off file), so a fence is complete
// only when the host's VMs and gossip are really gone.
const fenceScript = `#!/bin/sh
action= plug= dir=
while IFS= read -r line; do
  case "$line" in
    action=*) action=${line#action=} ;;
    plug=*) plug=${line#plug=} ;;
    simdir=*) dir=${line#simdir=} ;;
  esac
done
if [ -z "$plug" ] || [ ! -d "$dir" ]; then echo "plug and simdir are required" >&2; exit 1; fi
case "$action" in
  off)
    [ -e "$dir/off/$plug" ] && exit 0
    : > "$dir/req/$plug.tmp" && mv "$dir/req/$plug.tmp" "$dir/req/$plug" || exit 1
    i=0
    while [ ! -e "$dir/off/$plug" ]; do
      i=$((i+1))
      if [ $i -gt 1000 ]; then echo "host $plug did not power off" >&2; exit 1; fi
      sleep 0.01
    done
    exit 0 ;;
  status) [ -e "$dir/off/$plug" ] && exit 2; exit 0 ;;
  monitor) exit 0 ;;
  on|reboot) echo "the simulation does not power hosts on" >&2; exit 1 ;;
esac
echo "unknown action $action" >&2
exit 1
`

func (c *Cluster) writeFenceScript() error {
	c.fenceDir = filepath.Join(c.opts.Dir, "fence")
	for _, d := range []string{"req", "off"} {
		if err := os.MkdirAll(filepath.Join(c.fenceDir, d), 0o700); err != nil {
			return err
		}
	}
	// The agent device accepts only fence_* programs.
	c.script = filepath.Join(c.opts.Dir, "fence_vmhasim")
	return os.WriteFile(c.script, []byte(fenceScript), 0o700)
}

// fenceLoop powers off the hosts the fence script asks for, then confirms.
func (c *Cluster) fenceLoop(ctx context.Context) {
	req := filepath.Join(c.fenceDir, "req")
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(10 * time.Millisecond):
		}
		es, err := os.ReadDir(req)
		if err != nil {
			continue
		}
		for _, e := range es {
			name := e.Name()
			if strings.HasSuffix(name, ".tmp") {
				continue
			}
			if h := c.byName[name]; h != nil {
				h.PowerOff()
				c.mu.Lock()
				c.fences[name]++
				c.mu.Unlock()
				_ = os.WriteFile(filepath.Join(c.fenceDir, "off", name), nil, 0o600)
			}
			_ = os.Remove(filepath.Join(req, name))
		}
	}
}
