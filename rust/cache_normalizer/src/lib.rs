//! `cache_normalizer`: the cache-key normaliser and hasher of Knowledge OS.
//!
//! [`normalize`] holds the logic in plain Rust; [`tables`] is generated from the Python
//! whose results it must reproduce. The `#[pymodule]` below only converts arguments and
//! results, picks the rare path for strings holding lone surrogates, and releases the GIL.

pub mod md5;
pub mod md5_lanes;
pub mod normalize;
#[rustfmt::skip]
pub mod tables;

use pyo3::exceptions::{PyRuntimeError, PyUnicodeEncodeError};
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyString};

/// Texts at least this long (bytes) are hashed with the GIL released.
const DETACH_MIN_BYTES: usize = 64 * 1024;
/// A batch is hashed in chunks of at least this many input bytes...
const CHUNK_BYTES: usize = 256 * 1024;
/// ... and at least this many texts (enough for both threads' MD5 lanes) ...
const CHUNK_TEXTS: usize = 256;
/// ... unless that would pass this many bytes.
const CHUNK_MAX_BYTES: usize = 8 * 1024 * 1024;

/// The code points of `text`, lone surrogates included.
fn code_points(text: &Bound<'_, PyString>) -> PyResult<Vec<u32>> {
    let encoded = text.call_method1("encode", ("utf-32-le", "surrogatepass"))?;
    let bytes = encoded.cast::<PyBytes>()?.as_bytes();
    Ok(bytes
        .chunks_exact(4)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect())
}

/// A Python `str` with exactly these code points, lone surrogates included.
fn string_from_code_points<'py>(
    py: Python<'py>,
    code_points: &[u32],
) -> PyResult<Bound<'py, PyString>> {
    let bytes: Vec<u8> = code_points.iter().flat_map(|cp| cp.to_le_bytes()).collect();
    let decoded =
        PyBytes::new(py, &bytes).call_method1("decode", ("utf-32-le", "surrogatepass"))?;
    Ok(decoded.cast_into::<PyString>()?)
}

/// `text` as UTF-8, or `None` when it holds lone surrogates (UTF-8 cannot carry them).
fn utf8<'a>(text: &'a Bound<'_, PyString>) -> PyResult<Option<&'a str>> {
    match text.to_str() {
        Ok(s) => Ok(Some(s)),
        Err(err) if err.is_instance_of::<PyUnicodeEncodeError>(text.py()) => Ok(None),
        Err(err) => Err(err),
    }
}

/// The error `hashlib.md5(normalized.encode("utf-8"))` raises for `text` with lone
/// surrogates: UnicodeEncodeError on the normalised string, with the same span and reason.
fn surrogate_error(text: &Bound<'_, PyString>) -> PyErr {
    let py = text.py();
    let build = || -> PyResult<PyErr> {
        let normalized = normalize::normalize_code_points(&code_points(text)?);
        let (start, end) = normalize::first_unencodable_run(&normalized)
            .expect("a str that is not UTF-8 keeps a surrogate after normalisation");
        let object = string_from_code_points(py, &normalized)?;
        Ok(PyUnicodeEncodeError::new_err((
            "utf-8",
            object.unbind(),
            start,
            end,
            "surrogates not allowed",
        )))
    };
    build().unwrap_or_else(|err| err)
}

/// A new compact ASCII `str` holding the 32 hex digits, written straight into its data:
/// `PyString::new` would run them through the UTF-8 decoder first.
fn hex_to_py<'py>(py: Python<'py>, hex: &[u8; 32]) -> PyResult<Bound<'py, PyString>> {
    debug_assert!(hex.is_ascii());
    // SAFETY: PyUnicode_New(32, 127) returns a new compact ASCII string (or null with an
    // exception set), whose data is 32 writable one-byte units plus the terminating NUL
    // it already holds; only ASCII bytes are written, as its kind promises.
    unsafe {
        let ptr = ffi::PyUnicode_New(32, 127);
        if ptr.is_null() {
            return Err(PyErr::fetch(py));
        }
        let data = ffi::PyUnicode_DATA(ptr).cast::<u8>();
        core::ptr::copy_nonoverlapping(hex.as_ptr(), data, hex.len());
        Ok(Bound::from_owned_ptr(py, ptr).cast_into_unchecked::<PyString>())
    }
}

/// normalize_and_hash on one `str`, the body of both entry points.
fn hash_one<'py>(text: &Bound<'py, PyString>) -> PyResult<Bound<'py, PyString>> {
    let py = text.py();
    let Some(s) = utf8(text)? else {
        return Err(surrogate_error(text));
    };
    let hex = if s.len() >= DETACH_MIN_BYTES {
        py.detach(|| normalize::normalize_and_hash_hex(s))
    } else {
        normalize::normalize_and_hash_hex(s)
    };
    hex_to_py(py, &hex)
}

/// The `METH_O` C entry of `normalize_and_hash`: CPython passes the one positional argument
/// as is, without the argument parser a `#[pyfunction]` goes through (about a third of a
/// call on a 100-byte text). Panics become a Python `RuntimeError`, never an unwind into C.
///
/// # Safety
///
/// Called by CPython only, attached to the interpreter, `arg` a valid borrowed reference.
unsafe extern "C" fn normalize_and_hash_meth_o(
    _module: *mut ffi::PyObject,
    arg: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    // SAFETY: CPython calls a METH_O function attached to the interpreter.
    let py = unsafe { Python::assume_attached() };
    let outcome = std::panic::catch_unwind(|| {
        // SAFETY: `arg` is a valid borrowed reference for the duration of the call.
        let arg = unsafe { Borrowed::from_ptr(py, arg) };
        let text = arg.cast::<PyString>().map_err(PyErr::from)?;
        hash_one(&text).map(Bound::into_ptr)
    });
    let err = match outcome {
        Ok(Ok(ptr)) => return ptr,
        Ok(Err(err)) => err,
        Err(_) => PyRuntimeError::new_err("cache_normalizer.normalize_and_hash panicked"),
    };
    err.restore(py);
    core::ptr::null_mut()
}

/// The method table entry of [`normalize_and_hash_meth_o`], static as CPython requires.
struct MethodDef(ffi::PyMethodDef);
// SAFETY: the definition is immutable, and its pointers point at static data.
unsafe impl Sync for MethodDef {}

static NORMALIZE_AND_HASH_DEF: MethodDef = MethodDef(ffi::PyMethodDef {
    ml_name: c"normalize_and_hash".as_ptr(),
    ml_meth: ffi::PyMethodDefPointer {
        PyCFunction: normalize_and_hash_meth_o,
    },
    ml_flags: ffi::METH_O,
    ml_doc: c"normalize_and_hash(text, /)\n--\n\nMD5 hex digest of normalize_text(text) in UTF-8."
        .as_ptr(),
});

/// Python-identical text normalisation and MD5 cache keys, implemented in Rust.
#[pymodule(name = "cache_normalizer")]
mod python {
    use super::*;

    #[pymodule_init]
    fn init(m: &Bound<'_, PyModule>) -> PyResult<()> {
        m.add("__version__", env!("CARGO_PKG_VERSION"))?;
        m.add("UNICODE_VERSION", tables::UNICODE_VERSION)?;
        m.add("PARALLEL_MIN_BYTES", normalize::PARALLEL_MIN_BYTES)?;
        m.add("PARALLEL_MIN_AVG_BYTES", normalize::PARALLEL_MIN_AVG_BYTES)?;
        let py = m.py();
        // SAFETY: the definition is static; the module and its name are valid objects;
        // PyCFunction_NewEx returns a new reference or null with an exception set.
        let name = m.name()?;
        let function = unsafe {
            Bound::from_owned_ptr_or_err(
                py,
                ffi::PyCFunction_NewEx(
                    (&raw const NORMALIZE_AND_HASH_DEF.0).cast_mut(),
                    m.as_ptr(),
                    name.as_ptr(),
                ),
            )?
        };
        m.add("normalize_and_hash", function)?;
        Ok(())
    }

    /// normalize_text(text) -> str: " ".join(text.lower().split())
    #[pyfunction]
    fn normalize_text<'py>(text: &Bound<'py, PyString>) -> PyResult<Bound<'py, PyString>> {
        let py = text.py();
        match utf8(text)? {
            Some(s) => Ok(PyString::new(py, &normalize::normalize(s))),
            None => {
                let normalized = normalize::normalize_code_points(&code_points(text)?);
                string_from_code_points(py, &normalized)
            }
        }
    }

    // normalize_and_hash is added in `init` as a METH_O function (normalize_and_hash_meth_o).

    /// normalize_and_hash_batch(texts) -> list[str]: normalize_and_hash of each text, in order.
    #[pyfunction]
    fn normalize_and_hash_batch<'py>(texts: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyList>> {
        let py = texts.py();
        // Keep a reference to every str while the GIL is released, and fail on the first
        // bad item, as the reference's loop does.
        let mut items: Vec<Bound<'py, PyString>> = Vec::new();
        for item in texts.try_iter()? {
            let item = item?.cast_into::<PyString>()?;
            if utf8(&item)?.is_none() {
                return Err(surrogate_error(&item));
            }
            items.push(item);
        }
        // Chunk by chunk, so that the texts' UTF-8 pointers and the hex keys in between
        // stay in cache: in one pass over a 1 MB batch of 100-byte texts they did not, and
        // cost a third of the time (benchmarks/bench_cache_normalizer.py, --cpu-time).
        let mut out = Vec::with_capacity(items.len());
        let mut strs: Vec<&str> = Vec::new();
        let mut rest = &items[..];
        while !rest.is_empty() {
            strs.clear();
            let mut total = 0;
            for item in rest {
                if total >= CHUNK_BYTES && (strs.len() >= CHUNK_TEXTS || total >= CHUNK_MAX_BYTES) {
                    break;
                }
                let s = item.to_str()?;
                total += s.len();
                strs.push(s);
            }
            rest = &rest[strs.len()..];
            let hexes = if total >= DETACH_MIN_BYTES.min(normalize::PARALLEL_MIN_BYTES) {
                py.detach(|| normalize::normalize_and_hash_hex_batch(&strs))
            } else {
                normalize::normalize_and_hash_hex_batch(&strs)
            };
            for hex in &hexes {
                out.push(hex_to_py(py, hex)?);
            }
        }
        PyList::new(py, out)
    }
}
