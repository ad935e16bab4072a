#!/usr/bin/env bash
# Host packages the lab needs, at pinned versions. Idempotent: installs only what is missing.
#   debootstrap        builds the Debian 13 node image
#   systemd-container  systemd-nspawn, which boots the nodes
#   apt-cacher-ng      the nodes' only way to Debian's mirror (see lab/pgha_lab/aptproxy.py)
#   chromium           headless, for the test that opens Prometheus' UI (tests/test_09)
set -euo pipefail

PINNED=(
  debootstrap=1.0.128+nmu2+deb12u2
  systemd-container=252.39-1~deb12u2
  apt-cacher-ng=3.7.4-1+b2
  chromium=156.0.8078.114-1~deb12u1
)
# Debian replaces chromium's version with each security release and drops the old one
# from the mirror: if the pinned one is gone, take the mirror's and say so.
FLOATING=(chromium)

[ "$(id -u)" = 0 ] || { echo "host-setup: run as root" >&2; exit 1; }

missing=()
for spec in "${PINNED[@]}"; do
  name=${spec%%=*} want=${spec#*=}
  have=$(dpkg-query -W -f='${Version}' "$name" 2>/dev/null || true)
  [ "$have" = "$want" ] || missing+=("$spec")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "host-setup: installing ${missing[*]}"
apt-get update -qq
# This host has no init system to start services, and apt-cacher-ng must not start a
# default instance of its own: the lab runs its own, on the bridge address only.
policy=/usr/sbin/policy-rc.d
cleanup() { rm -f "$policy"; }
trap cleanup EXIT
printf '#!/bin/sh\nexit 101\n' > "$policy"
chmod 755 "$policy"
install=()
for spec in "${missing[@]}"; do
  name=${spec%%=*} want=${spec#*=}
  if [[ " ${FLOATING[*]} " == *" $name "* ]] && ! apt-cache madison "$name" | grep -qF " $want "; then
    candidate=$(apt-cache policy "$name" | awk '/Candidate:/ {print $2}')
    echo "host-setup: $name $want is no longer on the mirror; installing $candidate" >&2
    spec="$name=$candidate"
    [ "$(dpkg-query -W -f='${Version}' "$name" 2>/dev/null || true)" = "$candidate" ] && continue
  fi
  install+=("$spec")
done
[ ${#install[@]} -eq 0 ] && exit 0
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${install[@]}"
