"""The Rust ``cache_normalizer`` and the pure-Python reference give identical results.

Every test over ``impl`` runs against both implementations (the rust one is skipped only
when the extension is not built; CI builds it with scripts/build_rust.sh). The reference
itself is checked against the shared golden file, which cargo test reads too, and the
property tests compare the extension with the reference on arbitrary Unicode text.
"""

from __future__ import annotations

import ast
import hashlib
import importlib
import importlib.util
import inspect
import json
import os
import sys
import tomllib
import unicodedata
from pathlib import Path
from types import ModuleType, SimpleNamespace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from knowledge_os.cache import normalizer

ROOT = Path(__file__).resolve().parents[2]
CRATE = ROOT / "rust" / "cache_normalizer"
GOLDEN = json.loads((ROOT / "tests" / "golden" / "normalizer_cases.json").read_text("utf-8"))
CASES = GOLDEN["cases"]

try:
    import cache_normalizer as rust
except ImportError:  # not built here; CI builds it
    rust = None

needs_rust = pytest.mark.skipif(rust is None, reason="cache_normalizer extension not built")

REFERENCE = SimpleNamespace(
    normalize_text=normalizer._py_normalize_text,
    normalize_and_hash=normalizer._py_normalize_and_hash,
    normalize_and_hash_batch=normalizer._py_normalize_and_hash_batch,
)


@pytest.fixture(params=["python", pytest.param("rust", marks=needs_rust)])
def impl(request: pytest.FixtureRequest) -> ModuleType | SimpleNamespace:
    """Each implementation in turn: the Python reference, then the Rust extension."""
    return REFERENCE if request.param == "python" else rust


def reference_hash(text: str) -> str:
    """The definition, spelled out independently of the module under test."""
    return hashlib.md5(" ".join(text.lower().split()).encode("utf-8")).hexdigest()


def raised(fn, *args) -> BaseException:
    with pytest.raises(Exception) as info:
        fn(*args)
    return info.value


# ---------------------------------------------------------------------------- golden


def test_golden_file_agrees_with_running_python() -> None:
    assert GOLDEN["unicode"] == unicodedata.unidata_version
    assert len(CASES) >= 50
    for case in CASES:
        assert " ".join(case["input"].lower().split()) == case["normalized"], case["name"]
        assert reference_hash(case["input"]) == case["md5"], case["name"]


def test_golden_file_covers_every_whitespace_char() -> None:
    whitespace = {c for c in map(chr, range(sys.maxunicode + 1)) if len(f"a{c}a".split()) == 2}
    assert {"\x1c", "\x1d", "\x1e", "\x1f", "\x85", "\u3000"} <= whitespace
    covered = {c for case in CASES for c in case["input"] if c in whitespace}
    assert covered == whitespace


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_golden_normalize_text(impl, case: dict[str, str]) -> None:
    assert impl.normalize_text(case["input"]) == case["normalized"]


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_golden_normalize_and_hash(impl, case: dict[str, str]) -> None:
    assert impl.normalize_and_hash(case["input"]) == case["md5"]


def test_golden_batch_keeps_order(impl) -> None:
    inputs = [c["input"] for c in CASES]
    assert impl.normalize_and_hash_batch(inputs) == [c["md5"] for c in CASES]
    assert impl.normalize_and_hash_batch(list(reversed(inputs))) == [
        c["md5"] for c in reversed(CASES)
    ]


# ------------------------------------------------------------------------- batches


def test_batch_of_nothing(impl) -> None:
    assert impl.normalize_and_hash_batch([]) == []


def test_batch_accepts_any_iterable(impl) -> None:
    texts = ["A b", "ΟΔΟΣ", "x"]
    want = [reference_hash(t) for t in texts]
    assert impl.normalize_and_hash_batch(tuple(texts)) == want
    assert impl.normalize_and_hash_batch(t for t in texts) == want


def test_large_batch_matches_reference(impl) -> None:
    """Past the parallel threshold: many texts of mixed sizes, order kept."""
    texts = [
        f"Text {i}  ΑΣ {'İx ' * (i % 7)}{'word ' * (i % 300)}\u3000END{i}" for i in range(3000)
    ]
    assert sum(len(t.encode()) for t in texts) > 64 * 1024
    assert impl.normalize_and_hash_batch(texts) == [reference_hash(t) for t in texts]


@needs_rust
@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="needs Linux /proc")
@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="needs two cores")
def test_large_batch_runs_on_worker_threads() -> None:
    """The batch call spreads a large batch over a pool of one thread per core."""
    texts = ["Some text to hash, long enough " * 150] * 40
    assert sum(len(t) for t in texts) >= rust.PARALLEL_MIN_BYTES
    assert sum(len(t) for t in texts) >= rust.PARALLEL_MIN_AVG_BYTES * len(texts)
    rust.normalize_and_hash_batch(texts)
    threads = len(os.listdir("/proc/self/task"))
    assert threads >= 1 + (os.cpu_count() or 1)


# ---------------------------------------------------------------------- surrogates


@pytest.mark.parametrize(
    "text",
    ["\ud800", " A\udfff  b ", "x\ud83d\ude00Y", "\ue000\ud800\ue000 \udc00Σ", "ΑΣ\ud800", "\ud800ΑΣ"],
)
def test_surrogates_normalize_like_python(impl, text: str) -> None:
    assert impl.normalize_text(text) == " ".join(text.lower().split())


@pytest.mark.parametrize("text", ["\ud800", " A  \udc00\udfff b", "ok \ue000\ud900"])
def test_surrogates_fail_to_hash_like_python(impl, text: str) -> None:
    want = raised(reference_hash, text)
    got = raised(impl.normalize_and_hash, text)
    assert type(got) is type(want) is UnicodeEncodeError
    assert got.args == want.args


def test_surrogate_in_batch_fails_like_python(impl) -> None:
    texts = ["fine", "bad \ud800 TEXT", "also bad \udc00"]
    want = raised(lambda: [reference_hash(t) for t in texts])
    got = raised(impl.normalize_and_hash_batch, texts)
    assert type(got) is UnicodeEncodeError
    assert got.args == want.args


def test_non_str_is_refused(impl) -> None:
    # The reference fails on `.lower()`, the extension on argument conversion.
    with pytest.raises((TypeError, AttributeError)):
        impl.normalize_and_hash(b"bytes")
    with pytest.raises((TypeError, AttributeError)):
        impl.normalize_and_hash_batch(["ok", 3])


# -------------------------------------------------------------- property tests

# Characters that exercise the rules: every whitespace kind, sigma and its context
# (cased, case-ignorable, neither), special case mappings, the surrogate placeholder.
INTERESTING = (
    "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u200a\u2028\u2029\u202f\u205f\u3000"
    "ΣσςΑα.'\u0301\u00ad\u200b\u0345\u02b0:^`1İıIiẞßǅǄﬁΩ\u212aĀ\ue000\U00010400Ꭰ\u1c90aZ"
)
ANY_CHAR = st.characters(exclude_categories=())  # every code point, surrogates included
NO_SURROGATE = st.characters(exclude_categories=["Cs"])
MIXED = st.one_of(st.sampled_from(INTERESTING), ANY_CHAR)
PROPERTY = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@needs_rust
@PROPERTY
@given(st.text(MIXED, max_size=60))
def test_property_normalize_text_any_str(text: str) -> None:
    assert rust.normalize_text(text) == " ".join(text.lower().split())


@needs_rust
@PROPERTY
@given(st.text(ANY_CHAR, max_size=200))
def test_property_normalize_text_full_range(text: str) -> None:
    assert rust.normalize_text(text) == " ".join(text.lower().split())


@needs_rust
@PROPERTY
@given(st.text(st.one_of(st.sampled_from(INTERESTING), NO_SURROGATE), max_size=120))
def test_property_hash_matches_reference(text: str) -> None:
    assert rust.normalize_and_hash(text) == reference_hash(text)


@needs_rust
@PROPERTY
@given(st.text(MIXED, max_size=40))
def test_property_hash_or_error_matches_reference(text: str) -> None:
    try:
        want: object = reference_hash(text)
    except UnicodeEncodeError as exc:
        want = ("error", exc.args)
    try:
        got: object = rust.normalize_and_hash(text)
    except UnicodeEncodeError as exc:
        got = ("error", exc.args)
    assert got == want


@needs_rust
@PROPERTY
@given(st.lists(st.text(st.one_of(st.sampled_from(INTERESTING), NO_SURROGATE), max_size=30)))
def test_property_batch_matches_reference(texts: list[str]) -> None:
    assert rust.normalize_and_hash_batch(texts) == [reference_hash(t) for t in texts]


def test_batch_every_padding_length(impl) -> None:
    """Normalised lengths 0..300 bytes (1 to 6 MD5 blocks, each side of the 56-byte padding
    edge) in ASCII, Cyrillic and whitespace runs, mixed so that the Rust batch's MD5 lanes
    finish their texts at different times and take the next ones."""
    texts = [
        *("x" * n for n in range(300)),
        *("Ж" * n for n in range(150)),  # 2 bytes each
        *(" A\t\u3000b " * n for n in range(60)),  # whitespace runs collapse
        *("Ünï ΟΔΟΣ 東京 😀 " * n for n in range(25)),
        "",
        " \n\t ",
    ]
    mixed = texts[::2] + texts[1::2][::-1]
    assert impl.normalize_and_hash_batch(mixed) == [reference_hash(t) for t in mixed]


@needs_rust
@PROPERTY
@given(
    st.lists(
        st.text(st.one_of(st.sampled_from("aZ  \t\nЖжΣ\u3000"), NO_SURROGATE), max_size=300),
        min_size=17,
        max_size=80,
    )
)
def test_property_batch_of_many_mixed_lengths(texts: list[str]) -> None:
    """More texts than the widest MD5 lane set (16), of 0..300 characters each."""
    assert rust.normalize_and_hash_batch(texts) == [reference_hash(t) for t in texts]


@needs_rust
@settings(max_examples=60, deadline=None)
@given(st.integers(1, 3), st.text(st.sampled_from("aB Σ\u3000\n\u0130é"), min_size=1, max_size=8))
def test_property_long_text_across_blocks(repeat_kb: int, unit: str) -> None:
    text = unit * (repeat_kb * 1024 // len(unit) + 1)
    assert rust.normalize_and_hash(text) == reference_hash(text)
    assert rust.normalize_text(text) == " ".join(text.lower().split())


def _left_alone(c: str) -> bool:
    """Whether normalisation keeps ``c`` as it is: its own lowercase, not whitespace."""
    return c.lower() == c and len(("a" + c + "a").split()) == 1


#: Three- and four-byte characters where ``_left_alone`` changes (both sides of each
#: boundary), which the Rust crate's step over such characters classifies by table.
PLAIN_BOUNDARIES = sorted(
    {
        c
        for cp in range(0x801, 0x110000)
        if not 0xD800 <= cp <= 0xE000
        and _left_alone(chr(cp)) != _left_alone(chr(cp - 1))
        for c in (chr(cp - 1), chr(cp))
    }
)


@needs_rust
def test_three_and_four_byte_boundaries_at_every_step_offset() -> None:
    """Each character at a boundary, at each offset against the crate's 16-byte steps."""
    assert len(PLAIN_BOUNDARIES) > 700
    texts = [
        "x" * offset + f"{c}Ж{c}東 {c}😀\u2019{c}" for c in PLAIN_BOUNDARIES for offset in range(20)
    ] + [c * 7 for c in PLAIN_BOUNDARIES]
    got = rust.normalize_and_hash_batch(texts)
    assert got == [reference_hash(t) for t in texts]
    assert [rust.normalize_and_hash(t) for t in texts[::7]] == got[::7]


# ------------------------------------------------------------ module and tables


@needs_rust
def test_version_matches_cargo_toml() -> None:
    cargo = tomllib.loads((CRATE / "Cargo.toml").read_text("utf-8"))
    assert rust.__version__ == cargo["package"]["version"]


@needs_rust
def test_tables_are_for_running_unicode_version() -> None:
    assert rust.UNICODE_VERSION == unicodedata.unidata_version


def test_committed_tables_match_running_python() -> None:
    spec = importlib.util.spec_from_file_location("gen_tables", CRATE / "gen_tables.py")
    assert spec is not None and spec.loader is not None
    gen_tables = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen_tables)
    assert gen_tables.render() == (CRATE / "src" / "tables.rs").read_text("utf-8")


@needs_rust
def test_stub_lists_the_module_surface() -> None:
    stub = ast.parse((CRATE / "cache_normalizer.pyi").read_text("utf-8"))
    functions = {n.name for n in stub.body if isinstance(n, ast.FunctionDef)}
    names = {n.target.id for n in stub.body if isinstance(n, ast.AnnAssign)}
    public = {n for n in dir(rust) if not n.startswith("_") and n != "cache_normalizer"}
    assert functions | names == public | {"__version__"}
    for fn in stub.body:
        if isinstance(fn, ast.FunctionDef):
            assert ast.get_docstring(fn), fn.name


# --------------------------------------------------------------- switch point


@pytest.fixture
def reload_normalizer(monkeypatch: pytest.MonkeyPatch):
    """Reloads the switch point under the test's environment, and again afterwards."""
    yield lambda: importlib.reload(normalizer)
    monkeypatch.undo()
    importlib.reload(normalizer)


@pytest.mark.parametrize("value", ["1", "true", "YES"])
def test_env_var_forces_python(monkeypatch, reload_normalizer, value: str) -> None:
    monkeypatch.setenv("KOS_PURE_PYTHON_HASH", value)
    module = reload_normalizer()
    assert module.backend() == "python"
    assert module.normalize_and_hash is module._py_normalize_and_hash
    assert module.normalize_and_hash("  A  B ") == reference_hash("a b")


def test_backend_is_rust_when_built(monkeypatch, reload_normalizer) -> None:
    monkeypatch.delenv("KOS_PURE_PYTHON_HASH", raising=False)
    module = reload_normalizer()
    if rust is None:
        assert module.backend() == "python"
    else:
        assert module.backend() == "rust"
        assert module.normalize_and_hash is rust.normalize_and_hash
        assert module.normalize_and_hash_batch is rust.normalize_and_hash_batch
        assert module.normalize_text is rust.normalize_text


def test_backend_is_python_without_extension(monkeypatch, reload_normalizer) -> None:
    monkeypatch.delenv("KOS_PURE_PYTHON_HASH", raising=False)
    monkeypatch.setitem(sys.modules, "cache_normalizer", None)  # import raises ImportError
    module = reload_normalizer()
    assert module.backend() == "python"


@needs_rust
def test_backend_refuses_tables_of_other_unicode(monkeypatch, reload_normalizer, caplog) -> None:
    monkeypatch.delenv("KOS_PURE_PYTHON_HASH", raising=False)
    monkeypatch.setattr(rust, "UNICODE_VERSION", "0.0.0")
    module = reload_normalizer()
    assert module.backend() == "python"
    assert "Unicode 0.0.0" in caplog.text


@needs_rust
def test_stub_signatures_match_the_extension() -> None:
    # normalize_and_hash is a METH_O builtin: positional only, as the stub must say.
    stub = ast.parse((CRATE / "cache_normalizer.pyi").read_text("utf-8"))
    for fn in stub.body:
        if isinstance(fn, ast.FunctionDef):
            real = inspect.signature(getattr(rust, fn.name))
            kinds = [p.kind for p in real.parameters.values()]
            positional_only = [a.arg for a in fn.args.posonlyargs]
            assert [p for p, k in zip(real.parameters, kinds, strict=True)
                    if k is inspect.Parameter.POSITIONAL_ONLY] == positional_only, fn.name


def _bench_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "bench_cache_normalizer", ROOT / "benchmarks" / "bench_cache_normalizer.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@needs_rust
def test_bench_compare_build_loads_a_second_copy_of_the_extension() -> None:
    """``--compare-build`` loads the given library beside the installed module, not it."""
    bench = _bench_module()
    other = bench.load_build(Path(rust.cache_normalizer.__file__))
    assert other is not rust and other.__name__ == "_other_build.cache_normalizer"
    assert other.normalize_and_hash is not rust.normalize_and_hash
    text = "Ünïcode  ΣΑΣ 東京\u2019 😀"
    assert other.normalize_and_hash(text) == reference_hash(text)


def test_bench_compare_build_refuses_what_is_not_a_build(tmp_path: Path) -> None:
    bench = _bench_module()
    fake = tmp_path / "cache_normalizer.so"
    fake.write_bytes(b"not a shared library")
    with pytest.raises(ImportError):
        bench.load_build(fake)
