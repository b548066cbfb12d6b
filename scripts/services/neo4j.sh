#!/usr/bin/env bash
# Embedded Neo4j 5.26 LTS Community (from Maven Central, on Java 17) with Bolt on
# ${KOS_NEO4J_HOST:-127.0.0.1}:${KOS_NEO4J_PORT:-7687}, auth disabled: for integration tests
# and benchmarks (tests/integration/netns.py binds one to its test bridge's address).
#
#   scripts/services/neo4j.sh start   # prints: export KOS_TEST_NEO4J_URI=bolt://127.0.0.1:7687
#   scripts/services/neo4j.sh stop    # stops it (pid file), keeps the data
#   scripts/services/neo4j.sh destroy # stops it and deletes the data folder
#
# Use as: eval "$(scripts/services/neo4j.sh start)". Progress goes to stderr, the export
# line alone to stdout. Idempotent. The first start fetches the classpath with Maven into
# scripts/services/neo4j/lib/ (gitignored) and compiles src/KosNeo4j.java; data and the
# log live in ${KOS_NEO4J_DATA:-scripts/services/neo4j/data}/ (gitignored).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")/neo4j" && pwd)"
PORT="${KOS_NEO4J_PORT:-7687}"
HOST="${KOS_NEO4J_HOST:-127.0.0.1}"
DATA="${KOS_NEO4J_DATA:-$HERE/data}"
LIB="$HERE/lib"
PIDFILE="$DATA/neo4j.pid"
LOG="$DATA/neo4j.log"
HEAP="${KOS_NEO4J_HEAP:-1g}"
log() { echo "neo4j.sh: $*" >&2; }

bolt_answers() { (exec 3<>"/dev/tcp/$HOST/$PORT") 2>/dev/null; }

running_pid() {
  [ -f "$PIDFILE" ] || return 1
  local pid; pid="$(cat "$PIDFILE")"
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && grep -q KosNeo4j "/proc/$pid/cmdline" 2>/dev/null || return 1
  echo "$pid"
}

ensure_tools() {
  if ! command -v javac >/dev/null 2>&1 || ! command -v mvn >/dev/null 2>&1; then
    log "installing openjdk-17-jdk-headless and maven from Debian's packages"
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openjdk-17-jdk-headless maven >&2
  fi
}

ensure_classpath() {
  if [ ! -f "$LIB/.complete" ]; then
    log "fetching the Neo4j classpath from Maven Central (first run only)"
    rm -rf "$LIB"
    (cd "$HERE" && mvn -q -B dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$LIB") >&2
    touch "$LIB/.complete"
  fi
  if [ ! -f "$LIB/classes/KosNeo4j.class" ] || [ "$HERE/src/KosNeo4j.java" -nt "$LIB/classes/KosNeo4j.class" ]; then
    mkdir -p "$LIB/classes"
    javac -d "$LIB/classes" -cp "$LIB/*" "$HERE/src/KosNeo4j.java" >&2
  fi
}

start() {
  if pid="$(running_pid)" && bolt_answers; then
    log "already running (pid $pid)"
    echo "export KOS_TEST_NEO4J_URI=bolt://$HOST:$PORT"
    return 0
  fi
  if bolt_answers; then
    # Started from another checkout (its own pid file)? Adopt it; anything else is an error.
    local other
    other="$(pgrep -f "KosNeo4j .* $HOST $PORT " | head -n 1 || true)"
    if [ -n "$other" ]; then
      mkdir -p "$DATA"
      echo "$other" >"$PIDFILE"
      log "adopted the KosNeo4j already serving $HOST:$PORT (pid $other)"
      echo "export KOS_TEST_NEO4J_URI=bolt://$HOST:$PORT"
      return 0
    fi
    log "port $PORT is taken by another process; set KOS_NEO4J_PORT"
    exit 1
  fi
  ensure_tools
  ensure_classpath
  mkdir -p "$DATA"
  log "starting on $HOST:$PORT (data in $DATA)"
  nohup java "-Xms256m" "-Xmx$HEAP" -XX:+UseG1GC -cp "$LIB/*:$LIB/classes" KosNeo4j \
    "$DATA/home" "$HOST" "$PORT" 256 >"$LOG" 2>&1 </dev/null &
  echo $! >"$PIDFILE"
  local pid; pid="$(cat "$PIDFILE")"
  for _ in $(seq 1 240); do
    if grep -q KOS_NEO4J_READY "$LOG" 2>/dev/null && bolt_answers; then
      log "ready (pid $pid)"
      echo "export KOS_TEST_NEO4J_URI=bolt://$HOST:$PORT"
      return 0
    fi
    if ! kill -0 "$pid" 2>/dev/null; then
      log "exited during start; last lines of $LOG:"
      tail -n 30 "$LOG" >&2
      rm -f "$PIDFILE"
      exit 1
    fi
    sleep 0.5
  done
  log "not ready after 120 s; see $LOG"
  exit 1
}

stop() {
  local pid
  if pid="$(running_pid)"; then
    kill "$pid"
    for _ in $(seq 1 60); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.5
    done
    if kill -0 "$pid" 2>/dev/null; then
      log "pid $pid ignored SIGTERM for 30 s; killing"
      kill -9 "$pid"
    fi
    log "stopped (pid $pid)"
  fi
  rm -f "$PIDFILE"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  destroy) stop; rm -rf "$DATA"; log "data deleted" ;;
  *) echo "usage: $0 start|stop|destroy" >&2; exit 2 ;;
esac
