#!/usr/bin/env bash
# Everything the tests need, then every test: set-up, PostgreSQL and Neo4j started from
# scripts in this repo (stopped on exit), Rust checks, pytest (unit, integration, e2e),
# then the quick eval suites with --gate.
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

# The offline eval gate: the quick suites (real embedded models, a two-package slice of the
# changelogs ingested into a temporary KOS_HOME) against the committed baseline; exits 1 on
# a failed threshold or a regression beyond a metric's tolerance. Report in eval-runs/.
.venv/bin/kos eval quick --baseline knowledge_os/evals/baselines/quick.json --gate
