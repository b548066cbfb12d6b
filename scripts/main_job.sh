#!/usr/bin/env bash
# The main job with the embedded default (no servers): set up, ingest this machine's
# Debian changelogs, answer sample questions (answer, route, path, citations).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
KOS=.venv/bin/kos
$KOS ingest
# Questions about this machine's changelogs; the CVE is taken from the ingested data so
# the question has an answer on any Debian machine.
CVE=$(.venv/bin/python - <<'PY'
import sqlite3
db = sqlite3.connect(".kos/kos.db")
row = db.execute("SELECT entity FROM doc_entities WHERE entity LIKE 'cve:%' ORDER BY doc_id DESC LIMIT 1").fetchone()
print(row[0].split(":", 1)[1] if row else "CVE-2024-6387")
PY
)
for q in \
  "What changed in openssl since March?" \
  "Which upload fixed ${CVE}?" \
  "Which kinds of fixes are rising this quarter?" \
  "Что изменилось в systemd в этом году?"; do
  echo "=== $q"
  $KOS run "$q"
  echo
done
