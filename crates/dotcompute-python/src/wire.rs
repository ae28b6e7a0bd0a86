//! PyDotCompute's wire format for messages, encoded and decoded in Rust.
//!
//! A message is a MessagePack map with one entry per dataclass field (in
//! declaration order, fields whose names start with `_cached` left out),
//! then `"__type__"`: the class's bare name. Values are packed the way
//! `msgpack.packb(..., use_bin_type=True)` packs them (smallest integer
//! form, float64, `str` as str, `bytes` as bin, lists and tuples as arrays,
//! dicts as maps), and what msgpack cannot pack goes through PyDotCompute's
//! hook:
//! - `uuid.UUID` → `{"__uuid_bin__": <16 bytes>}`;
//! - anything with `tobytes`, `dtype` and `shape` (numpy arrays and numpy
//!   scalars) → `{"__ndarray__": <C-order bytes>, "dtype": str(dtype), "shape": [..]}`;
//! - anything else with `item()` → packed as `item()`;
//! - the rest is a `MessageSerializationError`.
//!
//! Decoding turns every map holding `__uuid_bin__` (or the older
//! `__uuid__` string form) into a `UUID` and every map holding `__ndarray__`
//! into a writable numpy array, as PyDotCompute's hook does.
//!
//! Invariants: decoding never panics and never reads past the input; any
//! malformed input (truncated, trailing bytes, invalid UTF-8, nesting deeper
//! than [`MAX_DEPTH`], an extension type) is an error naming what and where;
//! encoding a value and decoding it gives an equal value (tuples come back
//! as lists, as in PyDotCompute).

use pyo3::exceptions::{PyOverflowError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{
    PyBool, PyByteArray, PyBytes, PyDict, PyFloat, PyInt, PyList, PyMemoryView, PyString, PyTuple, PyType,
};

use crate::errors::exc;
use crate::message::{is_uuid, uuid_bytes, uuid_from_bytes};

/// Deepest nesting accepted, as msgpack-python's default limit.
pub const MAX_DEPTH: usize = 511;

// ---- encoding --------------------------------------------------------------

fn put_uint(out: &mut Vec<u8>, v: u64) {
    if v < 128 {
        out.push(v as u8);
    } else if v <= u64::from(u8::MAX) {
        out.extend_from_slice(&[0xcc, v as u8]);
    } else if v <= u64::from(u16::MAX) {
        out.push(0xcd);
        out.extend_from_slice(&(v as u16).to_be_bytes());
    } else if v <= u64::from(u32::MAX) {
        out.push(0xce);
        out.extend_from_slice(&(v as u32).to_be_bytes());
    } else {
        out.push(0xcf);
        out.extend_from_slice(&v.to_be_bytes());
    }
}

fn put_int(out: &mut Vec<u8>, v: i64) {
    if v >= 0 {
        put_uint(out, v as u64);
    } else if v >= -32 {
        out.push(v as u8);
    } else if v >= i64::from(i8::MIN) {
        out.extend_from_slice(&[0xd0, v as i8 as u8]);
    } else if v >= i64::from(i16::MIN) {
        out.push(0xd1);
        out.extend_from_slice(&(v as i16).to_be_bytes());
    } else if v >= i64::from(i32::MIN) {
        out.push(0xd2);
        out.extend_from_slice(&(v as i32).to_be_bytes());
    } else {
        out.push(0xd3);
        out.extend_from_slice(&v.to_be_bytes());
    }
}

fn put_len(out: &mut Vec<u8>, len: usize, fix: u8, fix_max: usize, m8: Option<u8>, m16: u8, m32: u8) -> PyResult<()> {
    if len <= fix_max {
        out.push(fix | len as u8);
    } else if let (Some(m8), true) = (m8, len <= usize::from(u8::MAX)) {
        out.extend_from_slice(&[m8, len as u8]);
    } else if len <= usize::from(u16::MAX) {
        out.push(m16);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else if let Ok(l) = u32::try_from(len) {
        out.push(m32);
        out.extend_from_slice(&l.to_be_bytes());
    } else {
        return Err(PyValueError::new_err(format!(
            "object too large to pack ({len} items or bytes)"
        )));
    }
    Ok(())
}

fn put_str(out: &mut Vec<u8>, s: &str) -> PyResult<()> {
    put_len(out, s.len(), 0xa0, 31, Some(0xd9), 0xda, 0xdb)?;
    out.extend_from_slice(s.as_bytes());
    Ok(())
}

fn put_bin(out: &mut Vec<u8>, b: &[u8]) -> PyResult<()> {
    if b.len() <= usize::from(u8::MAX) {
        out.extend_from_slice(&[0xc4, b.len() as u8]);
    } else {
        put_len(out, b.len(), 0, 0, None, 0xc5, 0xc6)?;
    }
    out.extend_from_slice(b);
    Ok(())
}

fn put_array_len(out: &mut Vec<u8>, n: usize) -> PyResult<()> {
    put_len(out, n, 0x90, 15, None, 0xdc, 0xdd)
}

fn put_map_len(out: &mut Vec<u8>, n: usize) -> PyResult<()> {
    put_len(out, n, 0x80, 15, None, 0xde, 0xdf)
}

/// Packs one value (see the module docs for the rules).
pub fn encode_value(out: &mut Vec<u8>, v: &Bound<'_, PyAny>, depth: usize) -> PyResult<()> {
    if depth > MAX_DEPTH {
        return Err(PyValueError::new_err("recursion limit exceeded"));
    }
    let py = v.py();
    if v.is_none() {
        out.push(0xc0);
    } else if let Ok(b) = v.cast::<PyBool>() {
        out.push(if b.is_true() { 0xc3 } else { 0xc2 });
    } else if v.is_instance_of::<PyInt>() {
        if let Ok(i) = v.extract::<i64>() {
            put_int(out, i);
        } else if let Ok(u) = v.extract::<u64>() {
            put_uint(out, u);
        } else {
            return Err(PyOverflowError::new_err("Integer value out of range"));
        }
    } else if let Ok(f) = v.cast::<PyFloat>() {
        out.push(0xcb);
        out.extend_from_slice(&f.value().to_be_bytes());
    } else if let Ok(s) = v.cast::<PyString>() {
        put_str(out, s.to_str()?)?;
    } else if let Ok(b) = v.cast::<PyBytes>() {
        put_bin(out, b.as_bytes())?;
    } else if let Ok(b) = v.cast::<PyByteArray>() {
        put_bin(out, &b.to_vec())?;
    } else if let Ok(d) = v.cast::<PyDict>() {
        put_map_len(out, d.len())?;
        for (k, val) in d.iter() {
            encode_value(out, &k, depth + 1)?;
            encode_value(out, &val, depth + 1)?;
        }
    } else if let Ok(l) = v.cast::<PyList>() {
        put_array_len(out, l.len())?;
        for item in l.iter() {
            encode_value(out, &item, depth + 1)?;
        }
    } else if let Ok(t) = v.cast::<PyTuple>() {
        put_array_len(out, t.len())?;
        for item in t.iter() {
            encode_value(out, &item, depth + 1)?;
        }
    } else if v.is_instance_of::<PyMemoryView>() {
        let b = py.import("builtins")?.getattr("bytes")?.call1((v,))?;
        put_bin(out, b.cast::<PyBytes>()?.as_bytes())?;
    } else {
        encode_hooked(out, v, depth)?;
    }
    Ok(())
}

/// PyDotCompute's `default=` hook.
fn encode_hooked(out: &mut Vec<u8>, v: &Bound<'_, PyAny>, depth: usize) -> PyResult<()> {
    let py = v.py();
    if is_uuid(v)? {
        put_map_len(out, 1)?;
        put_str(out, "__uuid_bin__")?;
        return put_bin(out, uuid_bytes(v)?.as_bytes());
    }
    let has = |name: &str| v.hasattr(name).unwrap_or(false);
    if has("tobytes") && has("dtype") && has("shape") {
        let data = v.call_method0("tobytes")?;
        let dtype = v.getattr("dtype")?.str()?;
        let shape = v.getattr("shape")?;
        put_map_len(out, 3)?;
        put_str(out, "__ndarray__")?;
        put_bin(out, data.cast::<PyBytes>()?.as_bytes())?;
        put_str(out, "dtype")?;
        put_str(out, dtype.to_str()?)?;
        put_str(out, "shape")?;
        let dims: Vec<Bound<'_, PyAny>> = shape.try_iter()?.collect::<PyResult<_>>()?;
        put_array_len(out, dims.len())?;
        for d in dims {
            encode_value(out, &d, depth + 1)?;
        }
        return Ok(());
    }
    if has("item") {
        let item = v.call_method0("item")?;
        return encode_value(out, &item, depth + 1);
    }
    let name = v
        .get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "?".into());
    let _ = py;
    Err(PyTypeError::new_err(format!("Unknown type: <class '{name}'>")))
}

// ---- decoding --------------------------------------------------------------

struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn fail(&self, what: &str) -> PyErr {
        PyValueError::new_err(format!("{what} at byte {} of {}", self.pos, self.data.len()))
    }

    fn take(&mut self, n: usize) -> PyResult<&'a [u8]> {
        let end = self.pos.checked_add(n).filter(|e| *e <= self.data.len());
        match end {
            Some(end) => {
                let s = &self.data[self.pos..end];
                self.pos = end;
                Ok(s)
            }
            None => Err(self.fail(&format!("truncated input (needed {n} more bytes)"))),
        }
    }

    fn u8(&mut self) -> PyResult<u8> {
        Ok(self.take(1)?[0])
    }

    fn be<const N: usize>(&mut self) -> PyResult<[u8; N]> {
        let s = self.take(N)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }

    fn len16(&mut self) -> PyResult<usize> {
        Ok(usize::from(u16::from_be_bytes(self.be()?)))
    }

    fn len32(&mut self) -> PyResult<usize> {
        usize::try_from(u32::from_be_bytes(self.be()?)).map_err(|_| self.fail("length does not fit"))
    }
}

fn decode_str<'py>(py: Python<'py>, r: &mut Reader<'_>, n: usize) -> PyResult<Bound<'py, PyAny>> {
    let at = r.pos;
    let bytes = r.take(n)?;
    match std::str::from_utf8(bytes) {
        Ok(s) => Ok(PyString::new(py, s).into_any()),
        Err(e) => Err(PyValueError::new_err(format!(
            "invalid UTF-8 in a string at byte {at}: {e}"
        ))),
    }
}

fn decode_value<'py>(py: Python<'py>, r: &mut Reader<'_>, depth: usize) -> PyResult<Bound<'py, PyAny>> {
    if depth > MAX_DEPTH {
        return Err(r.fail("nesting too deep"));
    }
    let m = r.u8()?;
    let v: Bound<'py, PyAny> = match m {
        0x00..=0x7f => u64::from(m).into_pyobject(py)?.into_any(),
        0x80..=0x8f => decode_map(py, r, usize::from(m & 0x0f), depth)?,
        0x90..=0x9f => decode_array(py, r, usize::from(m & 0x0f), depth)?,
        0xa0..=0xbf => decode_str(py, r, usize::from(m & 0x1f))?,
        0xc0 => py.None().into_bound(py),
        0xc2 => PyBool::new(py, false).to_owned().into_any(),
        0xc3 => PyBool::new(py, true).to_owned().into_any(),
        0xc4 => {
            let n = usize::from(r.u8()?);
            PyBytes::new(py, r.take(n)?).into_any()
        }
        0xc5 => {
            let n = r.len16()?;
            PyBytes::new(py, r.take(n)?).into_any()
        }
        0xc6 => {
            let n = r.len32()?;
            PyBytes::new(py, r.take(n)?).into_any()
        }
        0xc7..=0xc9 | 0xd4..=0xd8 => return Err(r.fail("extension types are not part of the message format")),
        0xca => f64::from(f32::from_be_bytes(r.be()?)).into_pyobject(py)?.into_any(),
        0xcb => f64::from_be_bytes(r.be()?).into_pyobject(py)?.into_any(),
        0xcc => u64::from(r.u8()?).into_pyobject(py)?.into_any(),
        0xcd => u64::from(u16::from_be_bytes(r.be()?)).into_pyobject(py)?.into_any(),
        0xce => u64::from(u32::from_be_bytes(r.be()?)).into_pyobject(py)?.into_any(),
        0xcf => u64::from_be_bytes(r.be()?).into_pyobject(py)?.into_any(),
        0xd0 => i64::from(i8::from_be_bytes(r.be()?)).into_pyobject(py)?.into_any(),
        0xd1 => i64::from(i16::from_be_bytes(r.be()?)).into_pyobject(py)?.into_any(),
        0xd2 => i64::from(i32::from_be_bytes(r.be()?)).into_pyobject(py)?.into_any(),
        0xd3 => i64::from_be_bytes(r.be()?).into_pyobject(py)?.into_any(),
        0xd9 => {
            let n = usize::from(r.u8()?);
            decode_str(py, r, n)?
        }
        0xda => {
            let n = r.len16()?;
            decode_str(py, r, n)?
        }
        0xdb => {
            let n = r.len32()?;
            decode_str(py, r, n)?
        }
        0xdc => {
            let n = r.len16()?;
            decode_array(py, r, n, depth)?
        }
        0xdd => {
            let n = r.len32()?;
            decode_array(py, r, n, depth)?
        }
        0xde => {
            let n = r.len16()?;
            decode_map(py, r, n, depth)?
        }
        0xdf => {
            let n = r.len32()?;
            decode_map(py, r, n, depth)?
        }
        0xe0..=0xff => i64::from(m as i8).into_pyobject(py)?.into_any(),
        0xc1 => return Err(r.fail("invalid marker 0xc1")),
    };
    Ok(v)
}

fn decode_array<'py>(py: Python<'py>, r: &mut Reader<'_>, n: usize, depth: usize) -> PyResult<Bound<'py, PyAny>> {
    // Each element takes at least one byte: refuse lengths the input cannot hold.
    if n > r.data.len().saturating_sub(r.pos) {
        return Err(r.fail(&format!("array of {n} items longer than the input")));
    }
    let list = PyList::empty(py);
    for _ in 0..n {
        list.append(decode_value(py, r, depth + 1)?)?;
    }
    Ok(list.into_any())
}

fn decode_map<'py>(py: Python<'py>, r: &mut Reader<'_>, n: usize, depth: usize) -> PyResult<Bound<'py, PyAny>> {
    if n.saturating_mul(2) > r.data.len().saturating_sub(r.pos) {
        return Err(r.fail(&format!("map of {n} entries longer than the input")));
    }
    let dict = PyDict::new(py);
    for _ in 0..n {
        let k = decode_value(py, r, depth + 1)?;
        let v = decode_value(py, r, depth + 1)?;
        dict.set_item(k, v)?;
    }
    object_hook(py, dict)
}

/// PyDotCompute's `object_hook`: UUIDs and numpy arrays out of their maps.
fn object_hook<'py>(py: Python<'py>, dict: Bound<'py, PyDict>) -> PyResult<Bound<'py, PyAny>> {
    if let Some(b) = dict.get_item(pyo3::intern!(py, "__uuid_bin__"))? {
        let bytes = b
            .cast::<PyBytes>()
            .map_err(|_| PyValueError::new_err("__uuid_bin__ must hold bytes"))?;
        return uuid_from_bytes(py, bytes.as_bytes());
    }
    if let Some(s) = dict.get_item(pyo3::intern!(py, "__uuid__"))? {
        static UUID: PyOnceLock<Py<PyType>> = PyOnceLock::new();
        return UUID.import(py, "uuid", "UUID")?.call1((s,));
    }
    if let Some(data) = dict.get_item(pyo3::intern!(py, "__ndarray__"))? {
        static FROMBUFFER: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
        let frombuffer = FROMBUFFER.import(py, "numpy", "frombuffer")?;
        let dtype = dict
            .get_item("dtype")?
            .ok_or_else(|| PyValueError::new_err("__ndarray__ without dtype"))?;
        let shape = dict
            .get_item("shape")?
            .ok_or_else(|| PyValueError::new_err("__ndarray__ without shape"))?;
        let shape = PyTuple::new(py, shape.try_iter()?.collect::<PyResult<Vec<_>>>()?)?;
        return frombuffer
            .call1((data, dtype))?
            .call_method1("reshape", (shape,))?
            .call_method0("copy");
    }
    Ok(dict.into_any())
}

/// Decodes one MessagePack value that must fill `data` exactly.
pub fn decode<'py>(py: Python<'py>, data: &[u8]) -> PyResult<Bound<'py, PyAny>> {
    if data.is_empty() {
        return Err(PyValueError::new_err("empty input"));
    }
    let mut r = Reader { data, pos: 0 };
    let v = decode_value(py, &mut r, 0)?;
    if r.pos != data.len() {
        return Err(PyValueError::new_err(format!(
            "extra data: {} bytes after the message",
            data.len() - r.pos
        )));
    }
    Ok(v)
}

// ---- messages --------------------------------------------------------------

/// The wire fields of a message's class: its own `_dotcompute_wire_fields`
/// (set by `@message`, or cached here on first use), computed as the
/// dataclass fields whose names do not start with `_cached`.
fn wire_fields<'py>(cls: &Bound<'py, PyType>) -> PyResult<Vec<Bound<'py, PyString>>> {
    let py = cls.py();
    let key = pyo3::intern!(py, "_dotcompute_wire_fields");
    let own = cls.getattr(pyo3::intern!(py, "__dict__"))?.get_item(key).ok();
    if let Some(f) = own {
        if let Ok(t) = f.cast::<PyTuple>() {
            return t
                .iter()
                .map(|x| x.cast_into::<PyString>().map_err(PyErr::from))
                .collect();
        }
    }
    let fields = py.import("dataclasses")?.call_method1("fields", (cls,))?;
    let mut out = Vec::new();
    for f in fields.try_iter()? {
        let name = f?.getattr("name")?.cast_into::<PyString>()?;
        if !name.to_str()?.starts_with("_cached") {
            out.push(name);
        }
    }
    // Cache it on the class itself (not inherited by subclasses with more fields).
    let _ = cls.setattr(key, PyTuple::new(py, &out)?);
    Ok(out)
}

/// `msg.serialize()`: the message in PyDotCompute's wire format.
#[pyfunction]
pub fn serialize_message<'py>(py: Python<'py>, msg: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyBytes>> {
    let cls = msg.get_type();
    let encode = || -> PyResult<Vec<u8>> {
        let fields = wire_fields(&cls)?;
        let mut out = Vec::with_capacity(96);
        put_map_len(&mut out, fields.len() + 1)?;
        for name in &fields {
            put_str(&mut out, name.to_str()?)?;
            encode_value(&mut out, &msg.getattr(name)?, 1)?;
        }
        put_str(&mut out, "__type__")?;
        put_str(&mut out, &cls.name()?.to_string())?;
        Ok(out)
    };
    match encode() {
        Ok(bytes) => Ok(PyBytes::new(py, &bytes)),
        Err(cause) => Err(chain(
            py,
            exc(py, "MessageSerializationError", (cls, cause.value(py).clone())),
            cause,
        )),
    }
}

/// `cls.deserialize(data)`: a message of class `cls` from wire bytes.
/// `strict_type`: refuse bytes whose `__type__` names another class.
#[pyfunction]
#[pyo3(signature = (cls, data, strict_type = true))]
pub fn deserialize_message<'py>(
    py: Python<'py>,
    cls: &Bound<'py, PyType>,
    data: &Bound<'py, PyAny>,
    strict_type: bool,
) -> PyResult<Bound<'py, PyAny>> {
    let build = || -> PyResult<Bound<'py, PyAny>> {
        let fields = decode_fields(py, data)?;
        build_message(py, cls, &fields, strict_type)
    };
    build().map_err(|cause| {
        chain(
            py,
            exc(
                py,
                "MessageDeserializationError",
                (cls.clone(), cause.value(py).clone()),
            ),
            cause,
        )
    })
}

/// Decodes wire bytes to their map (UUIDs and arrays already decoded).
pub fn decode_fields<'py>(py: Python<'py>, data: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyDict>> {
    let owned;
    let bytes: &[u8] = if let Ok(b) = data.cast::<PyBytes>() {
        b.as_bytes()
    } else if data.is_instance_of::<PyByteArray>() || data.is_instance_of::<PyMemoryView>() {
        owned = py.import("builtins")?.getattr("bytes")?.call1((data,))?;
        owned.cast::<PyBytes>()?.as_bytes()
    } else {
        return Err(PyTypeError::new_err(format!(
            "expected bytes, got {}",
            data.get_type().name()?
        )));
    };
    let value = decode(py, bytes)?;
    value.cast_into::<PyDict>().map_err(|e| {
        PyValueError::new_err(format!(
            "a message is a map of fields, got {}",
            e.into_inner()
                .get_type()
                .name()
                .map(|n| n.to_string())
                .unwrap_or_default()
        ))
    })
}

/// Builds `cls(**fields)` from a decoded map: drops `__type__` (checking it
/// names `cls` when `strict_type`), accepts string or 16-byte forms of the
/// UUID header fields, and ignores keys that are not fields of `cls`.
pub fn build_message<'py>(
    py: Python<'py>,
    cls: &Bound<'py, PyType>,
    fields: &Bound<'py, PyDict>,
    strict_type: bool,
) -> PyResult<Bound<'py, PyAny>> {
    if let Some(t) = fields.get_item("__type__")? {
        fields.del_item("__type__")?;
        let expected = cls.name()?.to_string();
        if strict_type {
            let found: String = t.extract().unwrap_or_else(|_| format!("{t}"));
            if found != expected {
                return Err(PyTypeError::new_err(format!(
                    "the bytes hold a '{found}' message, not a '{expected}'"
                )));
            }
        }
    }
    for name in ["message_id", "correlation_id"] {
        if let Some(v) = fields.get_item(name)? {
            if let Ok(s) = v.cast::<PyString>() {
                static UUID: PyOnceLock<Py<PyType>> = PyOnceLock::new();
                fields.set_item(name, UUID.import(py, "uuid", "UUID")?.call1((s,))?)?;
            } else if let Ok(b) = v.cast::<PyBytes>() {
                fields.set_item(name, uuid_from_bytes(py, b.as_bytes())?)?;
            }
        }
    }
    let names = wire_fields(cls)?;
    let kwargs = PyDict::new(py);
    for name in names {
        if let Some(v) = fields.get_item(&name)? {
            kwargs.set_item(name, v)?;
        }
    }
    cls.call((), Some(&kwargs))
}

fn chain(py: Python<'_>, outer: PyErr, cause: PyErr) -> PyErr {
    outer.set_cause(py, Some(cause));
    outer
}

/// `cls(**fields)` from an already decoded map (see [`build_message`]).
#[pyfunction]
pub fn message_from_fields<'py>(
    py: Python<'py>,
    cls: &Bound<'py, PyType>,
    fields: &Bound<'py, PyDict>,
) -> PyResult<Bound<'py, PyAny>> {
    build_message(py, cls, fields, true).map_err(|cause| {
        chain(
            py,
            exc(
                py,
                "MessageDeserializationError",
                (cls.clone(), cause.value(py).clone()),
            ),
            cause,
        )
    })
}

/// Any value in the wire format's MessagePack (with its UUID and array hooks).
#[pyfunction]
pub fn pack_value<'py>(py: Python<'py>, value: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyBytes>> {
    let mut out = Vec::with_capacity(64);
    encode_value(&mut out, value, 0)?;
    Ok(PyBytes::new(py, &out))
}

/// Decodes wire bytes to a dict (for the type registry in Python).
#[pyfunction]
pub fn unpack_message<'py>(py: Python<'py>, data: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyDict>> {
    decode_fields(py, data)
}
