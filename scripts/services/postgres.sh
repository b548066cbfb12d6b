#!/usr/bin/env bash
# Throwaway PostgreSQL cluster for integration tests and benchmarks.
#
#   scripts/services/postgres.sh start    # prints: export KOS_TEST_POSTGRES_DSN=...
#   scripts/services/postgres.sh stop     # stops the cluster, keeps its files
#   scripts/services/postgres.sh destroy  # stops and drops the cluster
#
# Use as: eval "$(scripts/services/postgres.sh start)". Progress goes to stderr, the
# export line alone to stdout. Idempotent. Runs as root (installs Debian's postgresql
# when missing). Cluster "kosci" on 127.0.0.1:${KOS_PG_PORT:-5433}, trust auth on TCP
# (tests only: never expose this port), database kos_test.
set -euo pipefail

PORT="${KOS_PG_PORT:-5433}"
CLUSTER=kosci
DB=kos_test
log() { echo "postgres.sh: $*" >&2; }

ensure_installed() {
  if ! command -v pg_createcluster >/dev/null 2>&1 || ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then
    log "installing postgresql from Debian's packages"
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >&2
  fi
}

pg_version() { ls /usr/lib/postgresql | sort -V | tail -1; }

cluster_exists() { pg_lsclusters -h | awk -v v="$1" -v c="$CLUSTER" '$1 == v && $2 == c {found=1} END {exit !found}'; }

as_postgres() { runuser -u postgres -- "$@"; }

start() {
  ensure_installed
  local ver; ver="$(pg_version)"
  if ! cluster_exists "$ver"; then
    log "creating cluster $ver/$CLUSTER on port $PORT"
    pg_createcluster "$ver" "$CLUSTER" -p "$PORT" --start -- --auth-host=trust --auth-local=peer >&2
  elif ! pg_ctlcluster "$ver" "$CLUSTER" status >/dev/null 2>&1; then
    log "starting cluster $ver/$CLUSTER"
    pg_ctlcluster "$ver" "$CLUSTER" start >&2
  fi
  for _ in $(seq 1 60); do
    pg_isready -q -h 127.0.0.1 -p "$PORT" && break
    sleep 0.5
  done
  pg_isready -q -h 127.0.0.1 -p "$PORT" || { log "cluster did not become ready on port $PORT"; exit 1; }
  if [ "$(as_postgres psql -p "$PORT" -tAc "SELECT 1 FROM pg_database WHERE datname = '$DB'")" != "1" ]; then
    as_postgres createdb -p "$PORT" "$DB"
  fi
  log "ready on 127.0.0.1:$PORT, database $DB"
  echo "export KOS_TEST_POSTGRES_DSN=postgresql://postgres@127.0.0.1:$PORT/$DB"
}

stop() {
  command -v pg_lsclusters >/dev/null 2>&1 || return 0
  local ver; ver="$(pg_version)"
  if cluster_exists "$ver" && pg_ctlcluster "$ver" "$CLUSTER" status >/dev/null 2>&1; then
    pg_ctlcluster "$ver" "$CLUSTER" stop >&2
    log "stopped"
  fi
}

destroy() {
  command -v pg_lsclusters >/dev/null 2>&1 || return 0
  local ver; ver="$(pg_version)"
  if cluster_exists "$ver"; then
    pg_dropcluster --stop "$ver" "$CLUSTER" >&2
    log "dropped"
  fi
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  destroy) destroy ;;
  *) echo "usage: $0 start|stop|destroy" >&2; exit 2 ;;
esac
