#!/usr/bin/env bash
# Static checks and tests of the Rust crate rust/cache_normalizer: formatting, clippy with
# warnings as errors, cargo test (which links libpython of the venv's interpreter), and
# whether src/tables.rs is still what gen_tables.py makes from the venv's Python.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CRATE="$ROOT/rust/cache_normalizer"
VENV="${KOS_VENV:-$ROOT/.venv}"
if ! command -v cargo >/dev/null 2>&1 && [[ -f "$HOME/.cargo/env" ]]; then
  # shellcheck disable=SC1091
  source "$HOME/.cargo/env"
fi
# PyO3's build script and the test binaries use this interpreter.
export PYO3_PYTHON="${PYO3_PYTHON:-$VENV/bin/python}"

cd "$CRATE"
echo "check_rust: cargo fmt --check"
cargo fmt --check
echo "check_rust: cargo clippy -D warnings"
cargo clippy --locked --all-targets --quiet -- -D warnings
echo "check_rust: generated tables up to date"
"$PYO3_PYTHON" gen_tables.py --check
echo "check_rust: cargo test"
cargo test --locked --quiet
