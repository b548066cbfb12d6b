#!/usr/bin/env bash
# Build the Rust extension `cache_normalizer` (rust/cache_normalizer) and install it into
# the repository's virtualenv, .venv by default (KOS_VENV overrides).
#
# Needs cargo (rustup) and the venv; installs maturin into the venv if missing, takes crates
# from crates.io as pinned in Cargo.lock. Safe to re-run: cargo rebuilds only what changed
# and the wheel is reinstalled only when it differs from the installed one.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CRATE="$ROOT/rust/cache_normalizer"
VENV="${KOS_VENV:-$ROOT/.venv}"
PY="$VENV/bin/python"
WHEELS="$CRATE/target/wheels"
STAMP="$CRATE/target/installed-wheel.sha256"

if [[ ! -x "$PY" ]]; then
  echo "build_rust: no Python venv at $VENV (create it first: python3 -m venv .venv)" >&2
  exit 1
fi
if ! command -v cargo >/dev/null 2>&1 && [[ -f "$HOME/.cargo/env" ]]; then
  # shellcheck disable=SC1091
  source "$HOME/.cargo/env"
fi
if ! command -v cargo >/dev/null 2>&1; then
  echo "build_rust: cargo not found; install the Rust toolchain (rustup)" >&2
  exit 1
fi

# maturin >= 1.9.4 sets PYO3_BUILD_EXTENSION_MODULE (PyO3 >= 0.26 needs it).
if ! "$PY" - <<'PY' 2>/dev/null; then
import importlib.metadata as m, sys
v = tuple(int(p) for p in m.version("maturin").split(".")[:3] if p.isdigit())
sys.exit(0 if (1, 9, 4) <= v < (2,) else 1)
PY
  echo "build_rust: installing maturin into $VENV"
  "$PY" -m pip install --quiet "maturin>=1.9.4,<2"
fi

rm -f "$WHEELS"/cache_normalizer-*.whl
mkdir -p "$CRATE/target"
LOG="$CRATE/target/build_rust.log"
echo "build_rust: building cache_normalizer (release; about a minute the first time)"
if ! "$VENV/bin/maturin" build --release --locked --quiet \
  --manifest-path "$CRATE/Cargo.toml" --interpreter "$PY" --out "$WHEELS" >"$LOG" 2>&1; then
  cat "$LOG" >&2
  echo "build_rust: maturin build failed (log: $LOG)" >&2
  exit 1
fi
shopt -s nullglob
wheels=("$WHEELS"/cache_normalizer-*.whl)
if [[ ${#wheels[@]} -ne 1 ]]; then
  echo "build_rust: expected one wheel in $WHEELS, found ${#wheels[@]}" >&2
  exit 1
fi
wheel="${wheels[0]}"

# The wheel's files, not the wheel: its metadata may differ between identical builds.
digest="$("$PY" - "$wheel" <<'PY'
import hashlib, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as wheel:
    h = hashlib.sha256()
    for name in sorted(n for n in wheel.namelist() if not n.startswith("cache_normalizer-")):
        h.update(name.encode() + b"\0" + wheel.read(name))
print(h.hexdigest())
PY
)"
if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$digest" ]] && "$PY" -c "import cache_normalizer" 2>/dev/null; then
  echo "build_rust: cache_normalizer already installed and up to date"
else
  "$PY" -m pip install --quiet --no-deps --force-reinstall "$wheel"
  echo "$digest" >"$STAMP"
  echo "build_rust: installed $(basename "$wheel")"
fi
"$PY" -c "import cache_normalizer as c; print('build_rust: cache_normalizer', c.__version__, 'Unicode', c.UNICODE_VERSION)"
