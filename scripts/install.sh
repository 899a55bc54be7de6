#!/usr/bin/env bash
# make install / make uninstall (and the staging of make deb): installs the
# binaries built by make build, the systemd units, a sample config (never
# over an existing one), the man pages and the shell completions.
#
#   scripts/install.sh [install|uninstall]
#
# Settings from the environment (make passes its variables):
#   DESTDIR     staging root, empty for the live system
#   PREFIX      /usr/local; the Debian package uses /usr
#   BIN         where make build left vmha and vmhad (bin)
#   VERSION     the version the man pages carry (scripts/version.sh)
#   SYSCONFDIR  /etc (vmhad reads /etc/vmha/vmhad.yaml whatever the prefix)
#   and BINDIR, SBINDIR, MANDIR, DOCDIR, UNITDIR, BASHCOMPDIR, ZSHCOMPDIR,
#   FISHCOMPDIR for the single directories (defaults below).
#
# Nothing is enabled or started: an HA daemon must not join a cluster before
# its config is written and checked (vmhad --check-config).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
action=${1:-install}

DESTDIR=${DESTDIR:-}
PREFIX=${PREFIX:-/usr/local}
BIN=${BIN:-bin}
case $BIN in /*) ;; *) BIN=$root/$BIN ;; esac
SYSCONFDIR=${SYSCONFDIR:-/etc}
BINDIR=${BINDIR:-$PREFIX/bin}
SBINDIR=${SBINDIR:-$PREFIX/sbin}
MANDIR=${MANDIR:-$PREFIX/share/man}
DOCDIR=${DOCDIR:-$PREFIX/share/doc/vmha}
# systemd reads units from /usr/local/lib/systemd/system as well as
# /usr/lib/systemd/system (systemd.unit(5), "System Unit Search Path").
UNITDIR=${UNITDIR:-$PREFIX/lib/systemd/system}
BASHCOMPDIR=${BASHCOMPDIR:-$PREFIX/share/bash-completion/completions}
# zsh's default fpath has /usr/local/share/zsh/site-functions; Debian's zsh
# also reads /usr/share/zsh/vendor-completions, which the package uses.
ZSHCOMPDIR=${ZSHCOMPDIR:-$PREFIX/share/zsh/site-functions}
FISHCOMPDIR=${FISHCOMPDIR:-$PREFIX/share/fish/vendor_completions.d}
CONFDIR=$SYSCONFDIR/vmha
UNITS=(vmhad.service vmhad-witness.service)

d() { echo "$DESTDIR$1"; }

# systemd_running is systemd's own test (sd_booted(3)).
systemd_running() { [ -z "$DESTDIR" ] && [ -d /run/systemd/system ]; }

# flags_roff prints the Flags section of vmhad --help as man page entries.
flags_roff() {
  "$BIN/vmhad" --help | awk '
    /^Flags:/ { on = 1; next }
    on && /^$/ { exit }
    on {
      sub(/^ +/, "")
      i = match($0, /   +/)
      spec = substr($0, 1, i - 1); text = substr($0, i + RLENGTH)
      gsub(/\\/, "\\e", spec); gsub(/\\/, "\\e", text)
      gsub(/-/, "\\-", spec)
      print ".TP"; print "\\fB" spec "\\fR"; print text
    }'
}

# man_page SRC DEST fills a hand-written page's @PLACEHOLDERS@ and installs
# it compressed, as Debian's policy (12.1) has it.
man_page() {
  local src=$1 dest=$2 tmp
  tmp=$(mktemp)
  sed -e "s|@VERSION@|$VERSION|g" -e "s|@SBINDIR@|$SBINDIR|g" -e "s|@BINDIR@|$BINDIR|g" \
    -e "s|@CONFDIR@|$CONFDIR|g" -e "s|@DOCDIR@|$DOCDIR|g" -e "s|@UNITDIR@|$UNITDIR|g" \
    -e "s|@DATE@|$(man_date)|g" "$src" >"$tmp"
  if grep -q '^@FLAGS@$' "$tmp"; then
    flags_roff >"$tmp.flags"
    sed -i -e "/^@FLAGS@\$/{r $tmp.flags" -e 'd}' "$tmp"
    rm -f "$tmp.flags"
  fi
  gzip -9n <"$tmp" >"$dest.gz"
  chmod 0644 "$dest.gz"
  rm -f "$tmp"
}

# man_date is the pages' date: the commit's (SOURCE_DATE_EPOCH) when set,
# so that a rebuild gives the same files.
man_date() {
  if [ -n "${SOURCE_DATE_EPOCH:-}" ]; then date -u -d "@$SOURCE_DATE_EPOCH" +%Y-%m-%d; else date -u +%Y-%m-%d; fi
}

do_install() {
  VERSION=${VERSION:-$("$root/scripts/version.sh")}
  for b in vmha vmhad; do
    [ -x "$BIN/$b" ] || { echo "install: $BIN/$b not found: run make build first" >&2; exit 1; }
  done

  install -d "$(d "$BINDIR")" "$(d "$SBINDIR")"
  install -m 0755 "$BIN/vmha" "$(d "$BINDIR")/vmha"
  install -m 0755 "$BIN/vmhad" "$(d "$SBINDIR")/vmhad"

  # Units, with ExecStart pointing at this install's vmhad.
  install -d "$(d "$UNITDIR")"
  for u in "${UNITS[@]}"; do
    sed "s|/usr/sbin/vmhad|$SBINDIR/vmhad|g" "$root/configs/systemd/$u" >"$(d "$UNITDIR")/$u"
    chmod 0644 "$(d "$UNITDIR")/$u"
  done

  # The config: the annotated sample, only where there is none. An
  # operator's file is never replaced (the package declares it a conffile,
  # so dpkg asks before touching a changed one). 0640, not Debian's usual
  # 0644: passwords and keys live in their own 0600 files, but a webhook
  # URL of alerts: is often a secret itself.
  [ -d "$(d "$CONFDIR")" ] || install -d -m 0755 "$(d "$CONFDIR")"
  if [ -e "$(d "$CONFDIR")/vmhad.yaml" ]; then
    echo "install: keeping $(d "$CONFDIR")/vmhad.yaml (the sample is in $DOCDIR/examples)"
  else
    install -m 0640 "$root/configs/vmhad.yaml" "$(d "$CONFDIR")/vmhad.yaml"
  fi

  # Documentation and examples.
  install -d "$(d "$DOCDIR")/examples" "$(d "$DOCDIR")/docs"
  install -m 0644 "$root/README.md" "$(d "$DOCDIR")/"
  install -m 0644 "$root"/docs/*.md "$(d "$DOCDIR")/docs/"
  install -m 0644 "$root/configs/vmhad.yaml" "$root/configs/cluster.yaml" "$(d "$DOCDIR")/examples/"
  install -m 0644 "$root/configs/two-hosts-witness/witness.yaml" "$(d "$DOCDIR")/examples/witness.yaml"

  # Man pages: vmha(1) and one per command from the command tree,
  # vmhad(8) with the flags of vmhad --help, vmhad.yaml(5).
  local tmp
  tmp=$(mktemp -d)
  "$BIN/vmha" gen-man --source "vmha $VERSION" "$tmp"
  install -d "$(d "$MANDIR")/man1" "$(d "$MANDIR")/man5" "$(d "$MANDIR")/man8"
  local page
  for f in "$tmp"/*.1; do
    page="$(d "$MANDIR")/man1/$(basename "$f").gz"
    gzip -9n <"$f" >"$page"
    chmod 0644 "$page"
  done
  rm -rf "$tmp"
  man_page "$root/packaging/man/vmhad.8.in" "$(d "$MANDIR")/man8/vmhad.8"
  man_page "$root/packaging/man/vmhad.yaml.5.in" "$(d "$MANDIR")/man5/vmhad.yaml.5"

  # Shell completions (cobra's scripts; the names come from vmhad at Tab).
  install -d "$(d "$BASHCOMPDIR")" "$(d "$ZSHCOMPDIR")" "$(d "$FISHCOMPDIR")"
  "$BIN/vmha" completion bash >"$(d "$BASHCOMPDIR")/vmha"
  "$BIN/vmha" completion zsh >"$(d "$ZSHCOMPDIR")/_vmha"
  "$BIN/vmha" completion fish >"$(d "$FISHCOMPDIR")/vmha.fish"
  chmod 0644 "$(d "$BASHCOMPDIR")/vmha" "$(d "$ZSHCOMPDIR")/_vmha" "$(d "$FISHCOMPDIR")/vmha.fish"

  if [ -z "$DESTDIR" ]; then
    # The unit has StateDirectory=vmha (0700) too; this covers a vmhad
    # started by hand.
    install -d -m 0700 /var/lib/vmha
    chmod 0700 /var/lib/vmha
    # The sample config's socket_group (the package's postinst makes it
    # with addgroup); groupadd is in every distribution's passwd/shadow.
    if ! getent group vmha >/dev/null; then groupadd --system vmha; fi
    if systemd_running; then systemctl daemon-reload || true; fi
    cat <<EOT
vmha installed. vmhad is neither enabled nor started: write $CONFDIR/vmhad.yaml
(vmhad.yaml(5)), check it with '$SBINDIR/vmhad --check-config', then
'systemctl enable --now vmhad' (vmhad-witness on a two-host cluster's witness).
EOT
  fi
}

do_uninstall() {
  rm -f "$(d "$BINDIR")/vmha" "$(d "$SBINDIR")/vmhad"
  for u in "${UNITS[@]}"; do rm -f "$(d "$UNITDIR")/$u"; done
  rm -f "$(d "$MANDIR")"/man1/vmha.1.gz "$(d "$MANDIR")"/man1/vmha-*.1.gz \
    "$(d "$MANDIR")/man8/vmhad.8.gz" "$(d "$MANDIR")/man5/vmhad.yaml.5.gz"
  rm -f "$(d "$BASHCOMPDIR")/vmha" "$(d "$ZSHCOMPDIR")/_vmha" "$(d "$FISHCOMPDIR")/vmha.fish"
  rm -rf "$(d "$DOCDIR")"
  if systemd_running; then systemctl daemon-reload || true; fi
  echo "uninstall: kept $(d "$CONFDIR") (the config) and $(d /var/lib/vmha) (this host's copy of the cluster state)"
}

case $action in
  install) do_install ;;
  uninstall) do_uninstall ;;
  *) echo "usage: $0 [install|uninstall]" >&2; exit 2 ;;
esac
