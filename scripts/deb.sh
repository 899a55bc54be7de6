#!/usr/bin/env bash
# make deb: builds $OUT/vmha_<version>_<arch>.deb from the binaries of make
# build with Debian's own tools: the tree is staged by make install's script
# (PREFIX=/usr, DESTDIR=the stage), dpkg-shlibdeps works out the Depends of
# the cgo libvirt binding (libvirt0, libc6), dpkg-deb --build packs it.
#
# Environment: BIN (bin: vmha and vmhad), OUT (default BIN), VERSION
# (default scripts/version.sh), DEB_COMPRESS (dpkg-deb -Z: xz by default;
# the package test uses none, much faster to write), TARBALL (yes: also
# $OUT/vmha-<version>-linux-<arch>.tar.gz, the package's files without its
# control files, for hosts without dpkg: tar -xzf it in /, then make what
# the postinst makes, the vmha group and a 0700 /var/lib/vmha).
# Prints the path of the package, then the tarball's.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
BIN=${BIN:-bin}
case $BIN in /*) ;; *) BIN=$root/$BIN ;; esac
OUT=${OUT:-$BIN}
VERSION=${VERSION:-$("$root/scripts/version.sh")}
DEB_COMPRESS=${DEB_COMPRESS:-xz}

for tool in dpkg-deb dpkg-shlibdeps; do
  command -v "$tool" >/dev/null || { echo "deb: $tool not found (apt-get install dpkg-dev; scripts/deps.sh does)" >&2; exit 1; }
done
ARCH=$(dpkg --print-architecture)

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# debhelper's layout: dpkg-shlibdeps finds the package's files under
# debian/PACKAGE and reads debian/control (a stub is enough here).
pkg=$work/debian/vmha
mkdir -p "$pkg"
touch "$work/debian/control"

# Reproducible dates (man pages) from the commit, as Debian builds do.
if [ -z "${SOURCE_DATE_EPOCH:-}" ] && git -C "$root" rev-parse --git-dir >/dev/null 2>&1; then
  SOURCE_DATE_EPOCH=$(git -C "$root" show -s --format=%ct HEAD)
  export SOURCE_DATE_EPOCH
fi

DESTDIR=$pkg PREFIX=/usr SYSCONFDIR=/etc ZSHCOMPDIR=/usr/share/zsh/vendor-completions \
  BIN=$BIN VERSION=$VERSION "$root/scripts/install.sh" install >/dev/null

# Stripped of debug information and symbols, as dh_strip does (Go's own
# tables for stack traces stay).
strip --remove-section=.comment --remove-section=.note --strip-unneeded \
  "$pkg/usr/bin/vmha" "$pkg/usr/sbin/vmhad"

# A native package's changelog: one entry for this build.
if [ -n "${SOURCE_DATE_EPOCH:-}" ]; then when=$(date -u -R -d "@$SOURCE_DATE_EPOCH"); else when=$(date -u -R); fi
commit=$(git -C "$root" rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
printf 'vmha (%s) unstable; urgency=medium\n\n  * Built from git commit %s.\n\n -- vmha developers <vmha@example.org>  %s\n' \
  "$VERSION" "$commit" "$when" | gzip -9n >"$pkg/usr/share/doc/vmha/changelog.gz"
chmod 0644 "$pkg/usr/share/doc/vmha/changelog.gz"

depends=$(cd "$work" && dpkg-shlibdeps -O -e debian/vmha/usr/sbin/vmhad -e debian/vmha/usr/bin/vmha 2>/dev/null |
  sed -n 's/^shlibs:Depends=//p')
case $depends in
  *libvirt0*) ;;
  *) echo "deb: dpkg-shlibdeps found no libvirt0 dependency (got '$depends')" >&2; exit 1 ;;
esac

install -d -m 0755 "$pkg/DEBIAN"
size=$(du -sk --apparent-size "$pkg" | cut -f1)
sed -e "s|@VERSION@|$VERSION|" -e "s|@ARCH@|$ARCH|" -e "s|@SIZE@|$size|" -e "s|@DEPENDS@|$depends|" \
  "$root/packaging/deb/control.in" >"$pkg/DEBIAN/control"
echo /etc/vmha/vmhad.yaml >"$pkg/DEBIAN/conffiles"
install -m 0755 "$root"/packaging/deb/{postinst,prerm,postrm} "$pkg/DEBIAN/"
# md5sums of every file but the conffiles (dpkg keeps theirs), as
# dh_md5sums writes it.
(cd "$pkg" && find . -type f ! -path './DEBIAN/*' ! -path './etc/*' -printf '%P\0' | LC_ALL=C sort -z |
  xargs -0 md5sum) >"$pkg/DEBIAN/md5sums"
chmod 0644 "$pkg/DEBIAN/control" "$pkg/DEBIAN/conffiles" "$pkg/DEBIAN/md5sums"

mkdir -p "$OUT"
deb=$OUT/vmha_${VERSION}_${ARCH}.deb
dpkg-deb --root-owner-group -Z"$DEB_COMPRESS" --build "$pkg" "$deb" >/dev/null
echo "$deb"

if [ "${TARBALL:-}" = yes ]; then
  # The tree dpkg-deb packed, as dpkg-deb packs it: ./-relative names,
  # root's, sorted, dated from the commit.
  tarball=$OUT/vmha-${VERSION}-linux-${ARCH}.tar.gz
  mtime=()
  if [ -n "${SOURCE_DATE_EPOCH:-}" ]; then mtime=(--mtime="@$SOURCE_DATE_EPOCH" --clamp-mtime); fi
  tar -C "$pkg" --exclude=./DEBIAN --sort=name --owner=0 --group=0 --numeric-owner "${mtime[@]}" \
    -cf - . | gzip -9n >"$tarball"
  echo "$tarball"
fi
