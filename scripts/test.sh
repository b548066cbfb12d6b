#!/usr/bin/env bash
# Everything the tests need, then every test: set-up, PostgreSQL and Neo4j started from
# scripts in this repo (stopped on exit), Rust checks, pytest (unit, integration, e2e).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh

cleanup() {
  bash scripts/services/neo4j.sh stop || true
  bash scripts/services/postgres.sh stop || true
}
trap cleanup EXIT

eval "$(bash scripts/services/postgres.sh start | grep '^export ')"
eval "$(bash scripts/services/neo4j.sh start | grep '^export ')"

if [ -f scripts/check_rust.sh ]; then
  bash scripts/check_rust.sh
fi
.venv/bin/python -m pytest -ra "$@"
