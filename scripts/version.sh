#!/bin/sh
# Prints vmha's version for the Debian package and the man pages, from git,
# in a form dpkg orders correctly:
#   at tag v1.2.0                      1.2.0
#   5 commits after v1.2.0, abc1234    1.2.0+git5.abc1234
#   no v* tag yet                      0.0~git20261205145338.abc1234 (commit time, UTC)
# with +dirty appended when tracked files have uncommitted changes (so a
# package built from them is never mistaken for the commit). Outside a git
# checkout it prints $VMHA_VERSION, or 0.0~unknown.
set -eu
cd "$(dirname "$0")/.."
if ! git rev-parse --git-dir >/dev/null 2>&1; then
  echo "${VMHA_VERSION:-0.0~unknown}"
  exit 0
fi
if d=$(git describe --tags --match 'v[0-9]*' 2>/dev/null); then
  # v1.2.0 or v1.2.0-5-gabc1234; a pre-release tag v1.2.0-rc1 becomes
  # 1.2.0~rc1, which dpkg sorts before 1.2.0
  v=$(echo "$d" | sed -E 's/^v//; s/-([0-9]+)-g([0-9a-f]+)$/+git\1.\2/; s/-/~/g')
else
  when=$(TZ=UTC git show -s --date=format-local:%Y%m%d%H%M%S --format=%cd HEAD)
  v="0.0~git${when}.$(git rev-parse --short=7 HEAD)"
fi
if [ -n "$(git status --porcelain --untracked-files=no 2>/dev/null)" ]; then
  v="${v}+dirty"
fi
echo "$v"
