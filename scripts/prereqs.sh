#!/usr/bin/env bash
# Installs (apt-get) what building and testing need besides the Rust toolchain:
# a C compiler, python3 with venv, curl; with `--browser` (make test) also Chromium
# and its WebDriver for the console's tests. Quick when everything is present.
set -euo pipefail
SCRIPT_NAME=prereqs
# shellcheck source=scripts/lib.sh
source "$(dirname "$0")/lib.sh"

command -v cargo >/dev/null ||
  die "cargo not found: install a Rust toolchain (curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh), then open a new shell"
need=()
command -v cc >/dev/null && [[ -e /usr/include/stdio.h ]] || need+=("${BUILD_PACKAGES[@]}")
if ! command -v python3 >/dev/null || ! python3 -c 'import ensurepip, venv' 2>/dev/null ||
  ! command -v curl >/dev/null || [[ ! -e /etc/ssl/certs/ca-certificates.crt ]]; then
  need+=("${TOOL_PACKAGES[@]}")
fi
if [[ ${1:-} == --browser ]] && { [[ ! -x /usr/bin/chromium ]] || [[ ! -x /usr/bin/chromedriver ]]; }; then
  need+=("${BROWSER_PACKAGES[@]}")
fi
[[ ${#need[@]} == 0 ]] || apt_install "${need[@]}"
