//! Python objects as runtime messages, and message identity minted in Rust.
//!
//! A [`PyMsg`] carries a reference to any Python object through the Rust
//! queues (never serialized: in-process messages move by reference, as in
//! PyDotCompute's default "zero-copy" mode), together with the runtime header
//! the queues need: the priority, read once from the object's `priority`
//! attribute when it is sent.
//!
//! Invariants:
//! - a priority outside 0–255 (or not an integer) is refused with
//!   `ValueError` at the send, never clamped or wrapped;
//! - [`new_message_id`] returns a real `uuid.UUID` (version 4, RFC 4122 variant)
//!   whose 122 random bits come from the `uuid` crate's generator, built
//!   without going through `uuid.uuid4()` and its `os.urandom` call.

use dotcompute::{Message, MessageHeader, DEFAULT_PRIORITY};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBool, PyBytes, PyInt, PyType};
use uuid::Uuid;

/// A Python object in flight through the runtime's queues.
pub struct PyMsg {
    /// The object.
    pub obj: Py<PyAny>,
    header: MessageHeader,
}

impl Message for PyMsg {
    const TYPE_NAME: &'static str = "python object";

    fn header(&self) -> &MessageHeader {
        &self.header
    }

    fn header_mut(&mut self) -> &mut MessageHeader {
        &mut self.header
    }
}

impl PyMsg {
    /// Wraps `obj`, reading its priority (128 if it has no `priority`).
    ///
    /// # Errors
    /// `ValueError` for a priority outside 0–255, `TypeError` for a
    /// non-integer priority.
    pub fn new(obj: &Bound<'_, PyAny>) -> PyResult<Self> {
        let priority = priority_of(obj)?;
        Ok(Self::with_priority(obj.clone().unbind(), priority))
    }

    /// Wraps `obj` with the given priority (FIFO queues use one priority for all).
    pub fn with_priority(obj: Py<PyAny>, priority: u8) -> Self {
        PyMsg {
            obj,
            header: MessageHeader::with_priority(priority),
        }
    }
}

/// The object's `priority` attribute, validated; 128 when it has none.
pub fn priority_of(obj: &Bound<'_, PyAny>) -> PyResult<u8> {
    let py = obj.py();
    match obj.getattr(pyo3::intern!(py, "priority")) {
        Ok(p) => checked_priority(&p),
        Err(e) if e.is_instance_of::<pyo3::exceptions::PyAttributeError>(py) => Ok(DEFAULT_PRIORITY),
        Err(e) => Err(e),
    }
}

/// `p` as a priority: an int (not a bool) in 0–255.
pub fn checked_priority(p: &Bound<'_, PyAny>) -> PyResult<u8> {
    if p.is_instance_of::<PyBool>() || !p.is_instance_of::<PyInt>() {
        return Err(PyTypeError::new_err(format!(
            "Priority must be an int in 0-255, got {}",
            p.repr().map(|r| r.to_string()).unwrap_or_else(|_| "?".into())
        )));
    }
    match p.extract::<i64>() {
        Ok(v) if (0..=255).contains(&v) => Ok(v as u8),
        _ => Err(PyValueError::new_err(format!("Priority must be 0-255, got {p}"))),
    }
}

fn uuid_class(py: Python<'_>) -> PyResult<&Bound<'_, PyType>> {
    static UUID: PyOnceLock<Py<PyType>> = PyOnceLock::new();
    UUID.import(py, "uuid", "UUID")
}

/// A `uuid.UUID` holding `value`, built without running `UUID.__init__`
/// (the same two slots it would set: `int` and `is_safe`).
///
/// The object is allocated by the class's own `tp_alloc`, which is all
/// `object.__new__(UUID)` does for a class without abstract methods, minus
/// the call, its argument tuple and its checks; the `int` is built from the
/// 16 bytes in one step where the interpreter offers it ([`int_from_u128`]).
pub fn uuid_from_u128(py: Python<'_>, value: u128) -> PyResult<Bound<'_, PyAny>> {
    static SAFE_UNKNOWN: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    let cls = uuid_class(py)?;
    let safe = SAFE_UNKNOWN.get_or_try_init(py, || {
        py.import("uuid")?
            .getattr("SafeUUID")?
            .getattr("unknown")
            .map(Bound::unbind)
    })?;
    let obj = alloc_instance(cls)?;
    let int = int_from_u128(py, value)?;
    set_slot(&obj, pyo3::intern!(py, "int"), &int)?;
    set_slot(&obj, pyo3::intern!(py, "is_safe"), safe.bind(py))?;
    // A UUID refers to an `int` and a `SafeUUID` member only (its slots
    // cannot be assigned from Python), so it can never be part of a
    // reference cycle: out of the cycle collector's lists, as CPython keeps
    // its own tuples of atomic values, it is never traversed. Every message
    // carries one, and a full queue holds thousands of them.
    // SAFETY: `obj` is a live object; untracking one that is not tracked
    // does nothing.
    unsafe { pyo3::ffi::PyObject_GC_UnTrack(obj.as_ptr().cast()) };
    Ok(obj)
}

/// A new, uninitialized instance of `cls` from its `tp_alloc` slot.
fn alloc_instance<'py>(cls: &Bound<'py, PyType>) -> PyResult<Bound<'py, PyAny>> {
    let py = cls.py();
    // SAFETY: `cls` is a live type object; PyType_GetSlot reads its slot
    // (heap and static types alike since 3.10, the abi3 floor being 3.11).
    let slot = unsafe { pyo3::ffi::PyType_GetSlot(cls.as_type_ptr(), pyo3::ffi::Py_tp_alloc) };
    if slot.is_null() {
        return Err(PyErr::take(py).unwrap_or_else(|| PyTypeError::new_err("uuid.UUID has no tp_alloc")));
    }
    // SAFETY: a non-null Py_tp_alloc slot is an `allocfunc`.
    let alloc: pyo3::ffi::allocfunc =
        unsafe { std::mem::transmute::<*mut std::ffi::c_void, pyo3::ffi::allocfunc>(slot) };
    // SAFETY: `alloc` is the type's allocator, called as `object.__new__`
    // calls it (`tp_alloc(type, 0)`); it returns a new reference or NULL
    // with an exception set.
    unsafe { Bound::from_owned_ptr_or_err(py, alloc(cls.as_type_ptr(), 0)) }
}

/// `_PyLong_FromByteArray(bytes, n, little_endian, is_signed)`: exported by
/// every CPython 3.x (the `int.from_bytes` primitive), though not part of
/// the limited API the abi3 wheel is built against, so looked up at run
/// time; `None` where the interpreter does not export it.
type FromByteArray =
    unsafe extern "C" fn(*const u8, libc::size_t, libc::c_int, libc::c_int) -> *mut pyo3::ffi::PyObject;

fn from_byte_array() -> Option<FromByteArray> {
    static FN: std::sync::OnceLock<Option<FromByteArray>> = std::sync::OnceLock::new();
    *FN.get_or_init(|| {
        // SAFETY: dlsym with RTLD_DEFAULT and a NUL-terminated name only
        // reads the loaded objects' symbol tables.
        let sym = unsafe { libc::dlsym(libc::RTLD_DEFAULT, c"_PyLong_FromByteArray".as_ptr()) };
        // SAFETY: the symbol, where present, is CPython's function of this
        // signature (unchanged from 3.0 through 3.14).
        (!sym.is_null()).then(|| unsafe { std::mem::transmute::<*mut libc::c_void, FromByteArray>(sym) })
    })
}

/// `value` as a Python `int`: one call of the interpreter's byte-array
/// conversion where available, else PyO3's shift-and-or of two halves.
pub fn int_from_u128(py: Python<'_>, value: u128) -> PyResult<Bound<'_, PyAny>> {
    if let Some(f) = from_byte_array() {
        let bytes = value.to_le_bytes();
        // SAFETY: `bytes` is 16 readable bytes; the function copies them
        // and returns a new reference, or NULL with an exception set.
        return unsafe { Bound::from_owned_ptr_or_err(py, f(bytes.as_ptr(), bytes.len(), 1, 0)) };
    }
    Ok(value.into_pyobject(py)?.into_any())
}

/// `object.__setattr__(obj, name, value)`: bypasses `UUID.__setattr__`,
/// which refuses every assignment once the object exists.
fn set_slot(obj: &Bound<'_, PyAny>, name: &Bound<'_, pyo3::types::PyString>, value: &Bound<'_, PyAny>) -> PyResult<()> {
    // SAFETY: the three pointers are valid, owned by `Bound`s that outlive
    // the call; PyObject_GenericSetAttr borrows them.
    let rc = unsafe { pyo3::ffi::PyObject_GenericSetAttr(obj.as_ptr(), name.as_ptr(), value.as_ptr()) };
    if rc == 0 {
        Ok(())
    } else {
        Err(PyErr::fetch(obj.py()))
    }
}

/// A fresh random (version 4) `uuid.UUID`.
#[pyfunction]
pub fn new_message_id(py: Python<'_>) -> PyResult<Bound<'_, PyAny>> {
    uuid_from_u128(py, Uuid::new_v4().as_u128())
}

/// A `uuid.UUID` from its 16 bytes (big-endian, as `UUID(bytes=...)`).
pub fn uuid_from_bytes<'py>(py: Python<'py>, bytes: &[u8]) -> PyResult<Bound<'py, PyAny>> {
    let arr: [u8; 16] = bytes
        .try_into()
        .map_err(|_| PyValueError::new_err(format!("a UUID takes 16 bytes, got {}", bytes.len())))?;
    uuid_from_u128(py, u128::from_be_bytes(arr))
}

/// The 16 bytes of a `uuid.UUID` (its `int`, big-endian).
pub fn uuid_bytes<'py>(obj: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyBytes>> {
    let v: u128 = obj.getattr(pyo3::intern!(obj.py(), "int"))?.extract()?;
    Ok(PyBytes::new(obj.py(), &v.to_be_bytes()))
}

/// Whether `obj` is a `uuid.UUID`.
pub fn is_uuid(obj: &Bound<'_, PyAny>) -> PyResult<bool> {
    obj.is_instance(uuid_class(obj.py())?)
}

/// The `__post_init__` that `@message` gives a class without one of its own:
/// an exact `int` priority in 0–255 passes here; anything else goes to
/// `dotcompute.ring_kernels.message._check_priority`, which accepts `int`
/// subclasses in range and raises its `ValueError` for the rest.
///
/// It is a method descriptor of `object` (so it binds to any instance):
/// the `self.__post_init__()` of a dataclass `__init__` then calls it with
/// no bound-method object and no Python frame, where a Python
/// `__post_init__` costs a frame of its own on every message built.
pub fn post_init_descriptor(py: Python<'_>) -> PyResult<Bound<'_, PyAny>> {
    static DESCR: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    DESCR
        .get_or_try_init(py, || {
            struct Def;
            impl pyo3::impl_::trampoline::MethodDef<pyo3::impl_::trampoline::noargs::Func> for Def {
                const METH: pyo3::impl_::trampoline::noargs::Func = post_init;
            }
            let def: &'static mut pyo3::ffi::PyMethodDef = Box::leak(Box::new(pyo3::ffi::PyMethodDef {
                ml_name: c"__post_init__".as_ptr(),
                ml_meth: pyo3::ffi::PyMethodDefPointer {
                    PyCFunction: pyo3::impl_::trampoline::noargs::<Def>,
                },
                ml_flags: pyo3::ffi::METH_NOARGS,
                ml_doc: c"Checks the message's priority (an int in 0-255).".as_ptr(),
            }));
            // SAFETY: `object`'s type object is static; the method table
            // entry is leaked, so it outlives the descriptor.
            unsafe {
                Bound::from_owned_ptr_or_err(
                    py,
                    pyo3::ffi::PyDescr_NewMethod(std::ptr::addr_of_mut!(pyo3::ffi::PyBaseObject_Type), def),
                )
            }
            .map(Bound::unbind)
        })
        .map(|d| d.bind(py).clone())
}

/// The body of [`post_init_descriptor`].
///
/// # Safety
/// Called through PyO3's `noargs` trampoline with `slf` a live object.
unsafe fn post_init(py: Python<'_>, slf: *mut pyo3::ffi::PyObject) -> PyResult<*mut pyo3::ffi::PyObject> {
    static CHECK: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    // SAFETY: `slf` is borrowed from the caller for the call.
    let obj = unsafe { Bound::from_borrowed_ptr(py, slf) };
    let p = obj.getattr(pyo3::intern!(py, "priority"))?;
    let in_range = p.is_exact_instance_of::<PyInt>() && matches!(p.extract::<i64>(), Ok(0..=255));
    if !in_range {
        CHECK
            .import(py, "dotcompute.ring_kernels.message", "_check_priority")?
            .call1((p,))?;
    }
    Ok(py.None().into_ptr())
}
