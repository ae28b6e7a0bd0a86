//! The Python type of [`Awaitable`] (`dotcompute._native.Awaitable`), built
//! with `PyType_FromSpec` so that it has the `am_send` slot.
//!
//! `await x` drives `x` with `PyIter_Send`. With `am_send` a completed
//! await hands its value back as a plain return (`PYGEN_RETURN`); through
//! `__next__` alone it would have to raise `StopIteration(value)`, which the
//! interpreter then catches and unpacks, about 2,000 instructions per
//! completed await. PyO3's `#[pyclass]` cannot declare `am_send`, hence this
//! hand-built type (a stable-ABI slot since CPython 3.10).
//!
//! Invariants:
//! - an instance holds exactly one [`Awaitable`] in place (no box of its
//!   own: one allocation fewer per await), written when it is created from
//!   Rust ([`IntoPyObject`]) and dropped in `tp_dealloc`; `init` says it is
//!   there. The type cannot be instantiated from Python
//!   (`DISALLOW_INSTANTIATION`), so every instance has one;
//! - every entry point runs inside a PyO3 trampoline (panics become Python
//!   exceptions, the interpreter is known to be attached), the same ones
//!   `#[pymethods]` use;
//! - the iterator protocol (`__next__`, `send`, `throw`, `close`) behaves as
//!   before: a value still arrives as `StopIteration(value)` there.

use std::ffi::{c_int, c_void};
use std::mem::MaybeUninit;
use std::ptr::null_mut;

use pyo3::ffi;
use pyo3::impl_::trampoline::{self, MethodDef};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyTuple, PyType};

use crate::awaitable::{stop_iteration, Awaitable, Step};

/// The instance layout: the object header, then the awaitable itself.
#[repr(C)]
struct Object {
    ob_base: ffi::PyObject,
    /// `inner` holds a value (false in a fresh, zero-filled instance).
    init: bool,
    inner: MaybeUninit<Awaitable>,
}

/// The awaitable inside `obj`.
///
/// # Safety
/// `obj` is a live instance of the type built here (the slots below are
/// only ever called with one).
unsafe fn inner<'a>(obj: *mut ffi::PyObject) -> PyResult<&'a Awaitable> {
    let o = obj.cast::<Object>();
    // SAFETY: per the contract, `obj` points to an `Object`; `init` is set
    // once `inner` is written at creation and cleared only in `tp_dealloc`,
    // after which no slot runs.
    if unsafe { (*o).init } {
        // SAFETY: `init` says `inner` holds a live value owned by `obj`.
        Ok(unsafe { (*o).inner.assume_init_ref() })
    } else {
        Err(pyo3::exceptions::PyRuntimeError::new_err(
            "dotcompute: an uninitialized awaitable",
        ))
    }
}

/// `am_send`: one step; a result is returned, not raised.
unsafe extern "C" fn am_send(
    slf: *mut ffi::PyObject,
    arg: *mut ffi::PyObject,
    result: *mut *mut ffi::PyObject,
) -> ffi::PySendResult {
    // The `ternaryfunc` trampoline passes the three pointers through; the
    // body returns a non-null tag for the outcome (null means an exception
    // was raised and set).
    struct Def;
    impl MethodDef<trampoline::ternaryfunc::Func> for Def {
        const METH: trampoline::ternaryfunc::Func = send_body;
    }
    // SAFETY: called by the interpreter, attached, with `slf` an instance
    // and `result` a valid out-pointer.
    let tag = unsafe { trampoline::ternaryfunc::<Def>(slf, arg, result.cast()) };
    match tag as usize {
        0 => ffi::PySendResult::PYGEN_ERROR,
        RETURNED => ffi::PySendResult::PYGEN_RETURN,
        _ => ffi::PySendResult::PYGEN_NEXT,
    }
}

const RETURNED: usize = 1;
const YIELDED: usize = 2;

unsafe fn send_body(
    py: Python<'_>,
    slf: *mut ffi::PyObject,
    arg: *mut ffi::PyObject,
    result: *mut ffi::PyObject,
) -> PyResult<*mut ffi::PyObject> {
    let result = result.cast::<*mut ffi::PyObject>();
    // SAFETY: `result` is the interpreter's out-pointer; clear it first so
    // that an error leaves it null, as PYGEN_ERROR requires.
    unsafe { *result = null_mut() };
    // SAFETY: `arg` is a borrowed reference the interpreter holds.
    if !arg.is_null() && unsafe { ffi::Py_IsNone(arg) } == 0 {
        return Err(pyo3::exceptions::PyTypeError::new_err(
            "dotcompute awaitables accept only send(None)",
        ));
    }
    // SAFETY: `slf` is an instance (see `inner`).
    let (tag, value) = match unsafe { inner(slf) }?.step(py)? {
        Step::Yield(v) => (YIELDED, v),
        Step::Return(v) => (RETURNED, v),
    };
    // SAFETY: the out-pointer receives a new reference.
    unsafe { *result = value.into_ptr() };
    Ok(tag as *mut ffi::PyObject)
}

/// `__next__`: one step; the end is `StopIteration(value)` (or no exception
/// at all for `None`, which the protocol reads as `StopIteration()`).
unsafe fn iternext_body(py: Python<'_>, slf: *mut ffi::PyObject) -> PyResult<*mut ffi::PyObject> {
    // SAFETY: `slf` is an instance (see `inner`).
    match unsafe { inner(slf) }?.step(py)? {
        Step::Yield(v) => Ok(v.into_ptr()),
        Step::Return(v) if v.is_none(py) => Ok(null_mut()),
        Step::Return(v) => Err(stop_iteration(py, v)),
    }
}

/// `send(value)` (METH_O).
unsafe fn send_method(
    py: Python<'_>,
    slf: *mut ffi::PyObject,
    arg: *mut ffi::PyObject,
) -> PyResult<*mut ffi::PyObject> {
    // SAFETY: `arg` is a borrowed reference the interpreter holds for the call.
    let arg = unsafe { Bound::from_borrowed_ptr(py, arg) };
    // SAFETY: `slf` is an instance (see `inner`).
    Ok(unsafe { inner(slf) }?.send(py, &arg)?.into_ptr())
}

/// `throw(typ, val=None, tb=None)` (METH_VARARGS: `args` is a tuple).
unsafe fn throw_method(
    py: Python<'_>,
    slf: *mut ffi::PyObject,
    args: *mut ffi::PyObject,
) -> PyResult<*mut ffi::PyObject> {
    // SAFETY: METH_VARARGS passes a borrowed tuple.
    let args = unsafe { Bound::from_borrowed_ptr(py, args) };
    let args = args.cast::<PyTuple>()?;
    if args.is_empty() || args.len() > 3 {
        return Err(pyo3::exceptions::PyTypeError::new_err(format!(
            "throw expected 1 to 3 arguments, got {}",
            args.len()
        )));
    }
    let typ = args.get_item(0)?;
    let val = if args.len() > 1 { Some(args.get_item(1)?) } else { None };
    // SAFETY: `slf` is an instance (see `inner`).
    Ok(unsafe { inner(slf) }?.throw(&typ, val.as_ref())?.into_ptr())
}

/// `close()` (METH_NOARGS).
unsafe fn close_method(py: Python<'_>, slf: *mut ffi::PyObject) -> PyResult<*mut ffi::PyObject> {
    // SAFETY: `slf` is an instance (see `inner`).
    unsafe { inner(slf) }?.close();
    Ok(py.None().into_ptr())
}

unsafe fn repr_body(py: Python<'_>, slf: *mut ffi::PyObject) -> PyResult<*mut ffi::PyObject> {
    // SAFETY: `slf` is an instance (see `inner`).
    let text = unsafe { inner(slf) }?.repr();
    Ok(pyo3::types::PyString::new(py, &text).into_any().into_ptr())
}

/// `tp_dealloc`: drops the awaitable (inside a trampoline: the drop releases
/// Python references), then frees the object and its reference to the type.
unsafe extern "C" fn dealloc(slf: *mut ffi::PyObject) {
    struct Def;
    impl MethodDef<trampoline::unaryfunc::Func> for Def {
        const METH: trampoline::unaryfunc::Func = drop_body;
    }
    // SAFETY: called by the interpreter, attached, with a dying instance.
    unsafe {
        trampoline::unaryfunc::<Def>(slf);
        let tp = ffi::Py_TYPE(slf);
        let free = ffi::PyType_GetSlot(tp, ffi::Py_tp_free);
        if !free.is_null() {
            let free: ffi::freefunc = std::mem::transmute::<*mut c_void, ffi::freefunc>(free);
            free(slf.cast());
        }
        ffi::Py_DECREF(tp.cast());
    }
}

unsafe fn drop_body(_py: Python<'_>, slf: *mut ffi::PyObject) -> PyResult<*mut ffi::PyObject> {
    let o = slf.cast::<Object>();
    // SAFETY: `slf` is a dying instance; `init` is cleared before the value
    // is dropped, so it is dropped exactly once.
    unsafe {
        if std::mem::replace(&mut (*o).init, false) {
            (*o).inner.assume_init_drop();
        }
    }
    // A non-null value, so the trampoline reports no error.
    Ok(slf)
}

/// `__await__` and `__iter__`: the object itself.
unsafe extern "C" fn self_ref(slf: *mut ffi::PyObject) -> *mut ffi::PyObject {
    // SAFETY: `slf` is a live object; the caller receives a new reference.
    unsafe { ffi::Py_NewRef(slf) }
}

macro_rules! slot_fn {
    ($tramp:ident, $body:path) => {{
        struct Def;
        impl MethodDef<trampoline::$tramp::Func> for Def {
            const METH: trampoline::$tramp::Func = $body;
        }
        trampoline::$tramp::<Def> as *mut c_void
    }};
}

/// The type object, built once.
pub fn type_object(py: Python<'_>) -> PyResult<&Bound<'_, PyType>> {
    static TYPE: PyOnceLock<Py<PyType>> = PyOnceLock::new();
    TYPE.get_or_try_init(py, || build(py)).map(|t| t.bind(py))
}

fn build(py: Python<'_>) -> PyResult<Py<PyType>> {
    let methods: &'static mut [ffi::PyMethodDef] = Box::leak(Box::new([
        ffi::PyMethodDef {
            ml_name: c"send".as_ptr(),
            ml_meth: ffi::PyMethodDefPointer {
                PyCFunction: slot_fn_binary_send(),
            },
            ml_flags: ffi::METH_O,
            ml_doc: c"send(None): one step of the awaitable".as_ptr(),
        },
        ffi::PyMethodDef {
            ml_name: c"throw".as_ptr(),
            ml_meth: ffi::PyMethodDefPointer {
                PyCFunction: slot_fn_binary_throw(),
            },
            ml_flags: ffi::METH_VARARGS,
            ml_doc: c"throw(typ, val=None, tb=None): stop waiting and raise".as_ptr(),
        },
        ffi::PyMethodDef {
            ml_name: c"close".as_ptr(),
            ml_meth: ffi::PyMethodDefPointer {
                PyCFunction: slot_fn_noargs_close(),
            },
            ml_flags: ffi::METH_NOARGS,
            ml_doc: c"close(): stop waiting (nothing is lost)".as_ptr(),
        },
        // SAFETY: a zeroed entry ends the table.
        unsafe { std::mem::zeroed() },
    ]));
    let slots: &'static mut [ffi::PyType_Slot] = Box::leak(Box::new([
        ffi::PyType_Slot {
            slot: ffi::Py_am_await,
            pfunc: self_ref as *mut c_void,
        },
        ffi::PyType_Slot {
            slot: ffi::Py_am_send,
            pfunc: am_send as *mut c_void,
        },
        ffi::PyType_Slot {
            slot: ffi::Py_tp_iter,
            pfunc: self_ref as *mut c_void,
        },
        ffi::PyType_Slot {
            slot: ffi::Py_tp_iternext,
            pfunc: slot_fn!(iternextfunc, iternext_body),
        },
        ffi::PyType_Slot {
            slot: ffi::Py_tp_repr,
            pfunc: slot_fn!(reprfunc, repr_body),
        },
        ffi::PyType_Slot {
            slot: ffi::Py_tp_dealloc,
            pfunc: dealloc as *mut c_void,
        },
        ffi::PyType_Slot {
            slot: ffi::Py_tp_methods,
            pfunc: methods.as_mut_ptr().cast(),
        },
        ffi::PyType_Slot {
            slot: ffi::Py_tp_doc,
            pfunc: c"A Rust future as an asyncio awaitable (coroutine protocol).".as_ptr() as *mut c_void,
        },
        ffi::PyType_Slot {
            slot: 0,
            pfunc: null_mut(),
        },
    ]));
    let spec: &'static mut ffi::PyType_Spec = Box::leak(Box::new(ffi::PyType_Spec {
        name: c"dotcompute._native.Awaitable".as_ptr(),
        basicsize: c_int::try_from(std::mem::size_of::<Object>())
            .map_err(|_| pyo3::exceptions::PyOverflowError::new_err("awaitable object size"))?,
        itemsize: 0,
        flags: (ffi::Py_TPFLAGS_DEFAULT | ffi::Py_TPFLAGS_DISALLOW_INSTANTIATION) as std::ffi::c_uint,
        slots: slots.as_mut_ptr(),
    }));
    // SAFETY: the spec, its slots and methods are leaked, so they outlive
    // the type; every function has the signature its slot requires.
    let ty = unsafe { Bound::from_owned_ptr_or_err(py, ffi::PyType_FromSpec(spec)) }?;
    Ok(ty.cast_into::<PyType>()?.unbind())
}

fn slot_fn_binary_send() -> ffi::PyCFunction {
    struct Def;
    impl MethodDef<trampoline::binaryfunc::Func> for Def {
        const METH: trampoline::binaryfunc::Func = send_method;
    }
    trampoline::binaryfunc::<Def>
}

fn slot_fn_binary_throw() -> ffi::PyCFunction {
    struct Def;
    impl MethodDef<trampoline::binaryfunc::Func> for Def {
        const METH: trampoline::binaryfunc::Func = throw_method;
    }
    trampoline::binaryfunc::<Def>
}

fn slot_fn_noargs_close() -> ffi::PyCFunction {
    struct Def;
    impl MethodDef<trampoline::noargs::Func> for Def {
        const METH: trampoline::noargs::Func = close_method;
    }
    trampoline::noargs::<Def>
}

impl<'py> IntoPyObject<'py> for Awaitable {
    type Target = PyAny;
    type Output = Bound<'py, PyAny>;
    type Error = PyErr;

    fn into_pyobject(self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let ty = type_object(py)?;
        // SAFETY: the type is a live heap type; GenericAlloc returns a new,
        // zeroed instance holding a reference to it, or NULL with an error.
        let obj = unsafe { Bound::from_owned_ptr_or_err(py, ffi::PyType_GenericAlloc(ty.as_type_ptr(), 0)) }?;
        let o = obj.as_ptr().cast::<Object>();
        // SAFETY: `obj` is a fresh `Object` (basicsize above) that nothing
        // else has seen; `inner` is written once, then marked as written.
        unsafe {
            (*o).inner.write(self);
            (*o).init = true;
        }
        Ok(obj)
    }
}
