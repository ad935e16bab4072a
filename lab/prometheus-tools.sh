#!/usr/bin/env bash
# promtool and amtool for `make unit` (promtool check config / test rules, amtool
# check-config), taken from the very Debian 13 packages the monitor node runs, so the
# fast tier checks the formula's files with the versions that will load them. No root,
# no lab: the .debs come from Debian's mirror once, are checked against pinned SHA-256
# sums, and only the two binaries are unpacked into the virtualenv's bin directory.
#   lab/prometheus-tools.sh .venv/bin
set -euo pipefail

bin=${1:?usage: prometheus-tools.sh BIN_DIR}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
cache=${PGHA_LAB_CACHE_DIR:-/var/cache/pgha-lab}/debs
[ -w "$(dirname "$cache")" ] || cache=${XDG_CACHE_HOME:-$HOME/.cache}/pgha-lab/debs
mkdir -p "$cache"

# tool  package-file (pool path)  sha256
TOOLS=(
  "promtool pool/main/p/prometheus/promtool_2.53.3+ds1-2_amd64.deb ff27654eacc95abd846d344e91fe4ba3b4f0588a50d606ed1d2f09ad3408722f"
  "amtool pool/main/p/prometheus-alertmanager/prometheus-alertmanager_0.28.1+ds-1_amd64.deb 76ee08c2bf686fa32ca243d099b6bfc6cb00074e9337c18ef73154b60c5830a9"
)

[ "$(uname -m)" = x86_64 ] || { echo "prometheus-tools: the pinned packages are amd64; this is $(uname -m)" >&2; exit 1; }

for entry in "${TOOLS[@]}"; do
  read -r tool pool sum <<<"$entry"
  stamp="$bin/.$tool.$sum"
  [ -x "$bin/$tool" ] && [ -e "$stamp" ] && continue
  deb="$cache/$(basename "$pool")"
  if ! { [ -f "$deb" ] && echo "$sum  $deb" | sha256sum -c --quiet - >/dev/null 2>&1; }; then
    echo "prometheus-tools: fetching $mirror/$pool"
    curl -fsS --retry 3 -o "$deb.part" "$mirror/$pool" \
      || { echo "prometheus-tools: cannot fetch $mirror/$pool (is the Debian mirror reachable?)" >&2; exit 1; }
    echo "$sum  $deb.part" | sha256sum -c --quiet - \
      || { echo "prometheus-tools: $pool does not match its pinned SHA-256 $sum" >&2; rm -f "$deb.part"; exit 1; }
    mv "$deb.part" "$deb"
  fi
  work=$(mktemp -d)
  dpkg-deb -x "$deb" "$work"
  install -m 0755 "$work/usr/bin/$tool" "$bin/$tool"
  rm -rf "$work"
  rm -f "$bin/.$tool".*
  touch "$stamp"
done
