//! `cache_normalizer`: the cache-key normaliser and hasher of Knowledge OS.
//!
//! [`normalize`] holds the logic in plain Rust; [`tables`] is generated from the Python
//! whose results it must reproduce. The `#[pymodule]` below only converts arguments and
//! results, picks the rare path for strings holding lone surrogates, and releases the GIL.

pub mod md5;
pub mod normalize;
#[rustfmt::skip]
pub mod tables;

use pyo3::exceptions::PyUnicodeEncodeError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyString};

/// Texts at least this long (bytes) are hashed with the GIL released.
const DETACH_MIN_BYTES: usize = 64 * 1024;

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

fn hex_to_py<'py>(py: Python<'py>, hex: &[u8; 32]) -> Bound<'py, PyString> {
    PyString::new(py, std::str::from_utf8(hex).expect("hex digits are ASCII"))
}

/// Python-identical text normalisation and MD5 cache keys, implemented in Rust.
#[pymodule(name = "cache_normalizer")]
mod python {
    use super::*;

    #[pymodule_init]
    fn init(m: &Bound<'_, PyModule>) -> PyResult<()> {
        m.add("__version__", env!("CARGO_PKG_VERSION"))?;
        m.add("UNICODE_VERSION", tables::UNICODE_VERSION)?;
        m.add("PARALLEL_MIN_BYTES", normalize::PARALLEL_MIN_BYTES)?;
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

    /// normalize_and_hash(text) -> str: MD5 hex digest of normalize_text(text) in UTF-8.
    #[pyfunction]
    fn normalize_and_hash<'py>(text: &Bound<'py, PyString>) -> PyResult<Bound<'py, PyString>> {
        let py = text.py();
        let Some(s) = utf8(text)? else {
            return Err(surrogate_error(text));
        };
        let hex = if s.len() >= DETACH_MIN_BYTES {
            py.detach(|| normalize::normalize_and_hash_hex(s))
        } else {
            normalize::normalize_and_hash_hex(s)
        };
        Ok(hex_to_py(py, &hex))
    }

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
        let strs = items
            .iter()
            .map(|item| item.to_str())
            .collect::<PyResult<Vec<&str>>>()?;
        let total: usize = strs.iter().map(|s| s.len()).sum();
        let hexes = if total >= DETACH_MIN_BYTES.min(normalize::PARALLEL_MIN_BYTES) {
            py.detach(|| normalize::normalize_and_hash_hex_batch(&strs))
        } else {
            normalize::normalize_and_hash_hex_batch(&strs)
        };
        PyList::new(py, hexes.iter().map(|hex| hex_to_py(py, hex)))
    }
}
