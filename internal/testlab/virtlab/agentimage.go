package virtlab

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// agentImageVersion names the agent guest's files: bump it when its /init
// changes.
const agentImageVersion = "v2"

// GuestAgentChannel is the virtio-serial port name libvirt talks to the
// QEMU guest agent through.
const GuestAgentChannel = "org.qemu.guest_agent.0"

// agentInit is the agent guest's PID 1: the counter guest's console lines
// (so ReadCounters tells its boots apart) and a tiny QEMU guest agent in
// busybox sh on the virtio-serial port named org.qemu.guest_agent.0
// (virtio_console, loaded from the kernel's own package). It answers
// guest-sync and guest-sync-delimited (echoing the 0xFF that precedes the
// latter) with the id, guest-ping with {}, and anything else with
// CommandNotFound. With vmha.hang=N on the kernel command line it stops
// answering N seconds after boot while the kernel and the counter go on:
// a hung guest as heartbeat monitoring sees it (the port stays open, the
// requests are read and dropped, so libvirt times out).
var agentInit = initHead("/tmp") + `for m in $(cat /lib/modules.order); do insmod /lib/$m || echo "vmha-agent: insmod $m failed" > /dev/ttyS0; done
hang=$(sed -n 's/.*vmha\.hang=\([0-9]*\).*/\1/p' /proc/cmdline)
boot=$(head -c 6 /dev/urandom | od -An -tx1 | tr -d ' \n')
agent() {
  port=
  while [ -z "$port" ]; do
    for n in /sys/class/virtio-ports/*/name; do
      if [ -r "$n" ] && [ "$(cat "$n")" = "` + GuestAgentChannel + `" ]; then
        d=${n%/name}
        port=/dev/${d##*/}
      fi
    done
    [ -n "$port" ] || sleep 0.2
  done
  echo "vmha-agent boot=$boot port=$port" > /dev/ttyS0
  while :; do
    if exec 3<>"$port"; then
      while IFS= read -r line <&3; do
        [ -e /tmp/hang ] && continue
        case $line in
        *guest-sync*)
          id=${line##*'"id"'}
          id=${id#*:}
          id=${id# }
          id=${id%%[!0-9]*}
          case $line in *guest-sync-delimited*) printf '\377' >&3 ;; esac
          printf '{"return": %s}\n' "${id:-0}" >&3
          ;;
        *'"guest-ping"'*)
          printf '{"return": {}}\n' >&3
          ;;
        *execute*)
          printf '{"error": {"class": "CommandNotFound", "desc": "vmha lab agent: command not found"}}\n' >&3
          ;;
        esac
      done
      exec 3<&-
    fi
    sleep 0.2
  done
}
agent &
if [ -n "$hang" ]; then
  (sleep "$hang"; touch /tmp/hang; echo "vmha-hang boot=$boot" > /dev/ttyS0) &
fi
` + counterLoop

// agentModules are the modules the agent guest loads (with what they
// depend on): the virtio PCI transport and the virtio-serial driver.
var agentModules = []string{"virtio_pci", "virtio_console"}

// EnsureAgentImage returns the agent guest: the Debian cloud kernel and an
// initrd with its virtio_console module (and the modules it depends on,
// from the same package, so they load) and agentInit. Built once into
// cacheDir, like EnsureImage.
func EnsureAgentImage(cacheDir string) (Image, error) {
	return kernelImage(cacheDir, "agent", agentImageVersion, func(work, pkgRoot string) (string, error) {
		mods, err := moduleLoadOrder(pkgRoot, agentModules)
		if err != nil {
			return "", err
		}
		root, err := guestRoot(work, agentInit, "lib")
		if err != nil {
			return "", err
		}
		order, err := copyModules(mods, filepath.Join(root, "lib"))
		if err != nil {
			return "", err
		}
		return root, os.WriteFile(filepath.Join(root, "lib", "modules.order"), []byte(strings.Join(order, "\n")+"\n"), 0o644)
	})
}

// moduleLoadOrder finds names (module names, as in lsmod) in the unpacked
// kernel package and returns their files and those of the modules they
// depend on (modinfo's depends: the package has no modules.dep, depmod
// makes it on install), each after its dependencies. A module built into
// the kernel (modules.builtin) needs nothing.
func moduleLoadOrder(pkgRoot string, names []string) ([]string, error) {
	dirs, _ := filepath.Glob(filepath.Join(pkgRoot, "lib", "modules", "*"))
	if len(dirs) != 1 {
		return nil, fmt.Errorf("the cloud kernel package has %d module folders, want 1", len(dirs))
	}
	byName := map[string]string{} // module name -> file
	err := filepath.WalkDir(dirs[0], func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.Contains(d.Name(), ".ko") {
			byName[moduleName(p)] = p
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	builtin, _ := os.ReadFile(filepath.Join(dirs[0], "modules.builtin"))
	var out []string
	seen := map[string]bool{}
	var add func(name string) error
	add = func(name string) error {
		if seen[name] {
			return nil
		}
		seen[name] = true
		p, ok := byName[name]
		if !ok {
			if strings.Contains(string(builtin), "/"+name+".ko") || strings.Contains(string(builtin), "/"+strings.ReplaceAll(name, "_", "-")+".ko") {
				return nil
			}
			return fmt.Errorf("the cloud kernel package has no module %s", name)
		}
		dep, err := exec.Command("modinfo", "-F", "depends", p).Output()
		if err != nil {
			return fmt.Errorf("modinfo %s: %w", p, err)
		}
		for _, d := range strings.Split(strings.TrimSpace(string(dep)), ",") {
			if d = strings.TrimSpace(d); d != "" {
				if err := add(moduleName(d)); err != nil {
					return err
				}
			}
		}
		out = append(out, p)
		return nil
	}
	for _, n := range names {
		if err := add(n); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// moduleName is a module file's name as lsmod shows it: no folder, no
// .ko[.xz] suffix, dashes as underscores.
func moduleName(path string) string {
	b := filepath.Base(path)
	if i := strings.Index(b, ".ko"); i >= 0 {
		b = b[:i]
	}
	return strings.ReplaceAll(b, "-", "_")
}

// AgentGuestXML is the agent guest (EnsureAgentImage) with the guest
// agent's channel (<channel type='unix'>, target org.qemu.guest_agent.0;
// libvirt picks the socket and adds the virtio-serial controller). With
// hangAfter > 0 its agent stops answering hangAfter seconds after boot
// (vmha.hang), while the guest keeps running.
func AgentGuestXML(name string, img Image, hangAfter int) string {
	cmdline := "console=ttyS0 quiet panic=0"
	if hangAfter > 0 {
		cmdline += fmt.Sprintf(" vmha.hang=%d", hangAfter)
	}
	return guestSpec{Name: name, Img: img, Cmdline: cmdline, ACPI: true, OnReboot: "restart",
		Devices: fmt.Sprintf("    <channel type='unix'>\n      <source mode='bind'/>\n      <target type='virtio' name='%s'/>\n    </channel>\n", GuestAgentChannel)}.xml()
}
