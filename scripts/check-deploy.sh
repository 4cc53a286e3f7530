#!/usr/bin/env bash
# Checks deploy/: YAML lint, kustomize composition, every built-in manifest against
# the Kubernetes schemas, the KEDA ScaledObject against its schema, the compose file,
# and that every container command and environment is accepted by the real binary.
# Installs its pinned tools (deploy/requirements.txt) into .venv-deploy; a missing
# tool is an error, never a skip.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${DEPLOY_VENV:-.venv-deploy}
if [[ ! -x $VENV/bin/python ]] || ! cmp -s deploy/requirements.txt "$VENV/requirements.txt"; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check -r deploy/requirements.txt
  cp deploy/requirements.txt "$VENV/requirements.txt"
fi

"$VENV/bin/yamllint" -d '{extends: default, rules: {line-length: {max: 120}, document-start: disable, truthy: {check-keys: false}, comments: {min-spaces-from-content: 1}, braces: {max-spaces-inside: 1}}}' deploy/ .github/
"$VENV/bin/python" scripts/check_deploy.py "${CARGO_TARGET_DIR:-target}/debug"
