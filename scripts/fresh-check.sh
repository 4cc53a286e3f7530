#!/usr/bin/env bash
# `make fresh-check`: the README's two commands on a new machine, for real.
#
# 1. A minimal Debian bookworm root (debootstrap --variant=minbase, plus `make`),
#    built once and kept outside the clone in $FRESH_CACHE (default
#    /var/tmp/rule-engine-fresh/base). It is never changed by a check, only by step 2.
# 2. With the network: pre-fetches into caches inside that root exactly what the
#    project's own files download on a new machine, and nothing is installed:
#    - the Debian packages of scripts/lib.sh (BUILD_PACKAGES, TOOL_PACKAGES,
#      POSTGRES_PACKAGES, REDIS_PACKAGES, BROWSER_PACKAGES) with their dependencies, as .deb files in
#      /var/cache/apt/archives, and the package lists (`apt-get update`);
#    - the crates of Cargo.lock (`cargo fetch`) into /root/.cargo;
#    - the wheels of deploy/requirements.txt (`pip download`) into
#      /var/cache/rule-engine/wheels.
# 3. Without the network: in new mount, PID and network namespaces (only loopback,
#    so nothing of this host answers on 5432 or 6379), an overlay of that root with
#    the host's Rust toolchain bind-mounted read-only at /opt/rust and a clone of
#    this repository's HEAD at /root/rule-engine, as root: `make run` (waits for
#    /health/ready, runs the README's quick tour and compares the answers with what
#    the README shows), stops it, then `make test`. Times both.
#
# Every mount lives in the private mount namespace and every process in the PID
# namespace: both vanish with it, even when the check is interrupted, so the host
# never sees a mount into the root, and the overlay's upper directory is deleted
# only after the namespace has gone.
set -euo pipefail
SCRIPT_NAME=fresh-check
cd "$(dirname "$0")/.."
REPO=$(pwd)
# shellcheck source=scripts/lib.sh
source scripts/lib.sh

[[ $(id -u) == 0 ]] || die "needs root (debootstrap, namespaces, mounts)"
for tool in debootstrap unshare ip git; do
  command -v "$tool" >/dev/null || apt_install debootstrap util-linux iproute2 git
done
command -v cargo >/dev/null || die "needs the host's Rust toolchain (cargo)"

CACHE=${FRESH_CACHE:-/var/tmp/rule-engine-fresh}
BASE=$CACHE/base
SUITE=bookworm
SYSROOT=$(rustc --print sysroot)
# The mirror this host's apt uses (never a host named in this repository).
MIRROR=${FRESH_MIRROR:-$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null ||
  awk '$1 == "deb" {print $2; exit}' /etc/apt/sources.list)}
[[ -n $MIRROR ]] || die "cannot tell this host's Debian mirror; set FRESH_MIRROR"

# 1. The minimal root.
if [[ ! -f $BASE/.fresh-check-base ]]; then
  say "building a minimal Debian $SUITE root in $BASE (debootstrap --variant=minbase)"
  rm -rf "$BASE.partial"
  mkdir -p "$CACHE"
  debootstrap --variant=minbase --include=make "$SUITE" "$BASE.partial" "$MIRROR" >"$CACHE/debootstrap.log" 2>&1 ||
    die "debootstrap failed; see $CACHE/debootstrap.log"
  # The same suites as this host (updates and security too), so versions match.
  if [[ -f /etc/apt/sources.list.d/debian.sources ]]; then
    rm -f "$BASE.partial/etc/apt/sources.list"
    cp /etc/apt/sources.list.d/debian.sources "$BASE.partial/etc/apt/sources.list.d/"
  fi
  touch "$BASE.partial/.fresh-check-base"
  mv "$BASE.partial" "$BASE"
fi

# 2. Pre-fetch, with the network. Chroot without /proc is enough for apt here.
say "pre-fetching Debian packages, crates and wheels into the root's caches"
cp /etc/resolv.conf "$BASE/etc/resolv.conf"
PACKAGES=("${BUILD_PACKAGES[@]}" "${TOOL_PACKAGES[@]}" "${POSTGRES_PACKAGES[@]}" "${REDIS_PACKAGES[@]}" "${BROWSER_PACKAGES[@]}")
chroot "$BASE" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive \
  sh -c "apt-get update -qq && apt-get install -y -qq --download-only --no-install-recommends ${PACKAGES[*]} >/dev/null" ||
  die "pre-fetching Debian packages failed"
CARGO_HOME=$BASE/root/.cargo cargo fetch --locked --manifest-path "$REPO/Cargo.toml" --quiet ||
  die "cargo fetch failed"
mkdir -p "$BASE/var/cache/rule-engine/wheels"
python3 -m pip download --quiet --disable-pip-version-check --only-binary=:all: \
  --python-version 3.11 --platform manylinux2014_x86_64 --platform any \
  -d "$BASE/var/cache/rule-engine/wheels" -r deploy/requirements.txt ||
  die "pip download failed"

# 3. Without the network, in namespaces that die with this check.
RUN=$(mktemp -d "$CACHE/run.XXXXXX")
cleanup() { rm -rf "$RUN"; }
trap cleanup EXIT
trap 'exit 130' INT TERM
git clone --quiet --no-hardlinks "$REPO" "$RUN/clone"
mkdir -p "$RUN/upper" "$RUN/work" "$RUN/merged"

say "make run and make test in $SUITE, network: loopback only (toolchain $(rustc --version))"
unshare --mount --pid --net --fork --kill-child --propagation private -- bash -euo pipefail -c '
  BASE=$1 RUN=$2 SYSROOT=$3
  ip link set lo up
  M=$RUN/merged
  mount -t overlay overlay -o "lowerdir=$BASE,upperdir=$RUN/upper,workdir=$RUN/work" "$M"
  mkdir -p "$M/opt/rust" "$M/root/rule-engine"
  mount --bind "$SYSROOT" "$M/opt/rust" && mount -o remount,bind,ro "$M/opt/rust"
  mount --bind "$RUN/clone" "$M/root/rule-engine"
  mount -t proc proc "$M/proc"
  mount --rbind /dev "$M/dev"
  mount -t tmpfs tmpfs "$M/tmp"
  mount -t tmpfs tmpfs "$M/run"
  : >"$M/etc/resolv.conf"
  exec chroot "$M" /usr/bin/env -i HOME=/root TERM=dumb LANG=C.UTF-8 \
    PATH=/opt/rust/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    CARGO_NET_OFFLINE=true PIP_NO_INDEX=1 PIP_FIND_LINKS=/var/cache/rule-engine/wheels \
    bash /root/rule-engine/scripts/fresh-check-inside.sh
' fresh-check "$BASE" "$RUN" "$SYSROOT" </dev/null
