#!/usr/bin/env bash
# `make fuzz-api`: schemathesis against a rules-api of its own, from the API's own
# OpenAPI document: every operation, examples, coverage, fuzzing and stateful
# sequences (create → read → patch → delete through the document's links), with the
# API key. Fails on any 5xx, any status the document does not list, any body that
# breaks its schema, any wrong content type.
#
# Its own database (created, migrated, dropped) and stream names; the machine's
# PostgreSQL and Redis are only used, never reset. schemathesis is pinned and lives
# in a venv this script creates (FUZZ_VENV). FUZZ_EXAMPLES bounds the examples per
# operation (CI runs a few), FUZZ_SEED makes a run repeatable.
set -euo pipefail
cd "$(dirname "$0")/.."

SCHEMATHESIS_VERSION=4.32.5
BIN=${CARGO_TARGET_DIR:-target}/debug
VENV=${FUZZ_VENV:-${CARGO_TARGET_DIR:-target}/fuzz-venv}
EXAMPLES=${FUZZ_EXAMPLES:-100}
SEED=${FUZZ_SEED:-20261201}
ADMIN_URL=${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/rules_db}
ADMIN_URL=${ADMIN_URL%/*}/postgres
REDIS=${REDIS_URL:-redis://127.0.0.1:6379/0}

if ! "$VENV/bin/schemathesis" --version 2>/dev/null | grep -q "$SCHEMATHESIS_VERSION"; then
  echo "fuzz-api: installing schemathesis $SCHEMATHESIS_VERSION into $VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
fi

db=rules_fuzz_$$
stream=fuzz:$$:events
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
key=fuzz-$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
api=
cleanup() {
  [[ -n $api ]] && kill -TERM "$api" 2>/dev/null && wait "$api" 2>/dev/null || true
  psql -qw "$ADMIN_URL" -c "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" >/dev/null 2>&1 || true
}
trap cleanup EXIT

psql -qw "$ADMIN_URL" -c "CREATE DATABASE \"$db\"" >/dev/null
db_url=${ADMIN_URL%/*}/$db
DATABASE_URL=$db_url "$BIN/rules-migrate" >/dev/null
DATABASE_URL=$db_url REDIS_URL=$REDIS RULES_API_KEYS=$key \
  RULES__API__BIND=127.0.0.1:$port RULES__WORKER__STREAMS=$stream RULES__LOG__FILTER=error \
  "$BIN/rules-api" &
api=$!
for _ in $(seq 1 100); do
  curl -fs "http://127.0.0.1:$port/health/ready" >/dev/null && break
  sleep 0.1
done

"$VENV/bin/schemathesis" run "http://127.0.0.1:$port/openapi.json" \
  --header "Authorization: Bearer $key" \
  --checks not_a_server_error,status_code_conformance,response_schema_conformance,content_type_conformance \
  --phases examples,coverage,fuzzing,stateful \
  --max-examples "$EXAMPLES" --seed "$SEED" --workers 1 \
  --warnings off --no-color
