#!/usr/bin/env bash
# The main job with the embedded default (no servers): set up, ingest this machine's
# Debian changelogs, answer sample questions (answer, route, path, citations).
# `kos ingest` writes documents, full text and graph first (seconds) and embeds after;
# the first question is asked as soon as it says "ready:" (its answer is marked while the
# vectors are still being written), the others once the whole corpus is searchable.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
KOS=.venv/bin/kos
started=$(date +%s)
log=$(mktemp)
trap 'rm -f "$log"' EXIT
$KOS ingest 2> >(tee "$log" >&2) &
ingest=$!
until grep -q '^ready:' "$log" 2>/dev/null || ! kill -0 "$ingest" 2>/dev/null; do sleep 1; done
if grep -q '^ready:' "$log"; then
  echo "=== first answer possible $(( $(date +%s) - started )) s after set-up ended"
fi
# Questions about this machine's changelogs; the CVE is taken from the ingested data so
# the question has an answer on any Debian machine.
CVE=$(.venv/bin/python - <<'PY'
import sqlite3
db = sqlite3.connect(".kos/kos.db")
row = db.execute("SELECT entity FROM doc_entities WHERE entity LIKE 'cve:%' ORDER BY doc_id DESC LIMIT 1").fetchone()
print(row[0].split(":", 1)[1] if row else "CVE-2024-6387")
PY
)
ask() {
  echo "=== $1"
  $KOS run "$1"
  echo
}
if kill -0 "$ingest" 2>/dev/null; then
  ask "Which upload fixed ${CVE}?"  # exact ids and full text answer during the embedding
fi
wait "$ingest"
echo "=== whole corpus searchable by every retriever $(( $(date +%s) - started )) s after set-up ended"
for q in \
  "What changed in openssl since March?" \
  "Which upload fixed ${CVE}?" \
  "Which kinds of fixes are rising this quarter?" \
  "Что изменилось в systemd в этом году?"; do
  ask "$q"
done
