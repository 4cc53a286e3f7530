# Shared by the set-up scripts: messages, root, and installing Debian packages.
# Sourced, never run. The packages the project installs are listed once, here, so
# that scripts/fresh-check.sh pre-fetches exactly what the other scripts install.

# shellcheck disable=SC2034 # the lists are read by the scripts that source this file
# What `cargo build` needs besides the Rust toolchain: a C compiler and linker
# (`ring` and `mimalloc` compile C; rustc links with `cc`).
BUILD_PACKAGES=(gcc libc6-dev)
# What `make test` and `make run` need: python3 with venv for the deploy checks,
# curl for the run banner and the README's quick tour, ca-certificates for pip.
TOOL_PACKAGES=(python3 python3-venv curl ca-certificates)
POSTGRES_PACKAGES=(postgresql postgresql-client)
REDIS_PACKAGES=(redis-server redis-tools)
# What `make test` drives the console with: a real headless Chromium over WebDriver.
BROWSER_PACKAGES=(chromium chromium-driver)
# What `make bench-instructions` counts the worker's instructions with (not needed by
# make run or make test, so not pre-fetched by scripts/fresh-check.sh).
PROFILE_PACKAGES=(valgrind)

: "${SCRIPT_NAME:=$(basename "$0" .sh)}"
say() { printf '%s: %s\n' "$SCRIPT_NAME" "$*"; }
die() { printf '%s: error: %s\n' "$SCRIPT_NAME" "$*" >&2; exit 1; }

as_root() {
  if [[ $(id -u) == 0 ]]; then "$@"
  elif command -v sudo >/dev/null; then sudo "$@"
  else die "need root to run: $*"; fi
}

# Installs the named Debian packages that are not installed yet.
apt_updated=
apt_install() {
  local missing=() p
  for p in "$@"; do
    dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null | grep -qx installed || missing+=("$p")
  done
  [[ ${#missing[@]} == 0 ]] && return 0
  command -v apt-get >/dev/null || die "apt-get not found: install ${missing[*]} yourself"
  if [[ -z $apt_updated ]]; then
    # Offline, with package lists and downloads already present, an install still works.
    as_root apt-get update -qq || say "warning: apt-get update failed; using the package lists present"
    apt_updated=1
  fi
  say "installing ${missing[*]}"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null || die "apt-get install ${missing[*]} failed"
}
