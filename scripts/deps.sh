#!/usr/bin/env bash
# Installs what a fresh Debian 12 machine lacks to build, demo and test vmha:
# Debian packages (libvirt for the cgo binding and its in-process test driver, OpenIPMI's
# ipmi_sim and ipmitool, fence-agents for cross-checks) and the Go modules.
# Safe to run again: it installs only what is missing.
set -euo pipefail

packages=(
  libvirt-dev pkg-config
  openipmi ipmitool fence-agents
  pacemaker-cli-utils
  # Pacemaker's sample alert agents (alert_file.sh): vmha's alerts must drive them unchanged
  pacemaker-common
  # cluster tests cut hosts apart with iptables owner matches on loopback
  iptables
  # the live-migration lab (internal/testlab/virtlab): two libvirtd, QEMU TCG guests
  # from a busybox initrd; the guest kernel is fetched by the lab itself with
  # apt-get download into /var/cache/vmha-lab
  libvirt-daemon-system libvirt-clients qemu-system-x86 qemu-utils busybox-static cpio
  # shared storage (sharedfs/, clvm/): mkfs and read-back tools of GFS2 and
  # OCFS2, LVM on loop devices; kmod because mkfs.ocfs2 runs modprobe and
  # exits 1 without it although it formatted the volume
  gfs2-utils ocfs2-tools lvm2 kmod
  # rebalance/ compares its plans with Ganeti's hbal on the same clusters
  ganeti-htools
  # make deb (dpkg-shlibdeps works out the package's Depends) and its test
  # (internal/testlab/pkgtest: man -l renders the installed pages; the
  # maintainer scripts run chrooted with busybox-static, listed above)
  dpkg-dev man-db
  # promtool (cluster/metrics_test.go: promtool check rules on
  # configs/monitoring/vmha-alerts.yml) comes only with the server package
  # in Debian 12; on a machine that runs systemd its postinst also enables
  # and starts prometheus.service (:9090): systemctl disable --now prometheus
  prometheus
  # the web console's browser tests (web/, internal/testlab/labcluster
  # TestWebConsole): a real headless Chromium driven over CDP by chromedp
  chromium
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if ((${#missing[@]})); then
  echo "deps: installing Debian packages: ${missing[*]}"
  sudo=""
  if [ "$(id -u)" != 0 ]; then sudo="sudo"; fi
  # apt on these machines deletes downloaded packages between dpkg runs,
  # which breaks installs that pull in systemd; an empty parts folder avoids it.
  mkdir -p /tmp/aptparts
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get -o Dir::Etc::Parts=/tmp/aptparts update -qq
  $sudo apt-get -o Dir::Etc::Parts=/tmp/aptparts install -y -qq --no-install-recommends "${missing[@]}" >/tmp/vmha-apt.log 2>&1 || {
    tail -30 /tmp/vmha-apt.log; exit 1; }
fi

if ! command -v go >/dev/null; then
  if [ -x /usr/local/go/bin/go ]; then export PATH=$PATH:/usr/local/go/bin; else
    echo "deps: Go 1.26 is required (https://go.dev/dl); not found in PATH" >&2; exit 1; fi
fi
cd "$(dirname "$0")/.."
go mod download
