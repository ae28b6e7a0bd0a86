//! The NVRTC calls: program creation, compilation with options, PTX, cubin,
//! the log, and the compiler version.
//!
//! Invariants: nothing here runs unless [`crate::device::dylib::nvrtc`]
//! found the library (so cudarc cannot panic for want of it); strings with an
//! interior NUL are refused before they reach C; a program is destroyed on
//! every path once created. This is the compiler's only module with `unsafe`.

use std::ffi::{c_char, CString};

use cudarc::nvrtc::{result, sys};

use crate::device::dylib;
use crate::device::error::{DeviceError, DeviceResult};

/// What one NVRTC compilation produced.
pub(crate) struct NvrtcOutput {
    pub ptx: String,
    pub cubin: Option<Vec<u8>>,
    pub log: String,
}

fn unavailable(reason: String) -> DeviceError {
    DeviceError::Unavailable { what: "NVRTC", reason }
}

/// Makes sure the library is loadable.
pub(crate) fn ensure() -> DeviceResult<()> {
    dylib::nvrtc().map_err(unavailable)
}

/// NVRTC's (major, minor) version.
pub fn version() -> DeviceResult<(i32, i32)> {
    ensure()?;
    let (mut major, mut minor) = (0, 0);
    // SAFETY: the library is loaded (checked above); both pointers are valid
    // for writes of one c_int.
    unsafe { sys::nvrtcVersion(&mut major, &mut minor) }
        .result()
        .map_err(|e| unavailable(format!("nvrtcVersion failed: {e:?}")))?;
    Ok((major, minor))
}

/// The SM architectures this NVRTC can target (e.g. 80 for sm_80).
pub fn supported_archs() -> DeviceResult<Vec<i32>> {
    ensure()?;
    let mut n = 0;
    // SAFETY: library loaded; `n` is valid for one write.
    unsafe { sys::nvrtcGetNumSupportedArchs(&mut n) }
        .result()
        .map_err(|e| unavailable(format!("nvrtcGetNumSupportedArchs failed: {e:?}")))?;
    let mut archs = vec![0i32; usize::try_from(n).unwrap_or(0)];
    if !archs.is_empty() {
        // SAFETY: `archs` has room for the `n` values NVRTC reported.
        unsafe { sys::nvrtcGetSupportedArchs(archs.as_mut_ptr()) }
            .result()
            .map_err(|e| unavailable(format!("nvrtcGetSupportedArchs failed: {e:?}")))?;
    }
    Ok(archs)
}

fn c_string(what: &'static str, s: &str) -> DeviceResult<CString> {
    CString::new(s).map_err(|_| DeviceError::invalid(what, format!("{s:.40?}"), "contains a NUL byte"))
}

fn chars_to_string(chars: &[c_char]) -> String {
    let bytes: Vec<u8> = chars.iter().take_while(|c| **c != 0).map(|c| *c as u8).collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

/// Destroys the program when dropped.
struct Program(sys::nvrtcProgram);

impl Drop for Program {
    fn drop(&mut self) {
        // SAFETY: `self.0` came from a successful `create_program` and is
        // destroyed only here, once.
        let _ = unsafe { result::destroy_program(self.0) };
    }
}

/// Compiles `source` with `options`; fetches the cubin when `want_cubin`
/// (which requires a real `sm_XX` architecture).
pub(crate) fn compile(name: &str, source: &str, options: &[String], want_cubin: bool) -> DeviceResult<NvrtcOutput> {
    ensure()?;
    let c_src = c_string("source", source)?;
    let c_name = c_string("name", name)?;
    for o in options {
        c_string("compiler option", o)?;
    }
    let prog = Program(
        result::create_program(&c_src, Some(&c_name)).map_err(|e| DeviceError::Compile {
            name: name.to_string(),
            compiler: "NVRTC",
            status: format!("nvrtcCreateProgram: {e:?}"),
            log: String::new(),
        })?,
    );
    // SAFETY: `prog.0` is a live program; the options were checked for NULs
    // above, so cudarc's CString conversion cannot fail.
    let compiled = unsafe { result::compile_program(prog.0, options) };
    // SAFETY: `prog.0` is live; the log is available after any compile attempt.
    let log = unsafe { result::get_program_log(prog.0) }
        .map(|l| chars_to_string(&l))
        .unwrap_or_default();
    if let Err(e) = compiled {
        return Err(DeviceError::Compile {
            name: name.to_string(),
            compiler: "NVRTC",
            status: format!("{e:?}"),
            log,
        });
    }
    // SAFETY: `prog.0` is live and compiled successfully.
    let ptx = unsafe { result::get_ptx(prog.0) }.map_err(|e| DeviceError::Compile {
        name: name.to_string(),
        compiler: "NVRTC",
        status: format!("nvrtcGetPTX: {e:?}"),
        log: log.clone(),
    })?;
    let ptx = chars_to_string(&ptx);
    let cubin = if want_cubin {
        let mut size = 0usize;
        // SAFETY: `prog.0` is live and compiled; `size` is valid for one write.
        unsafe { sys::nvrtcGetCUBINSize(prog.0, &mut size) }
            .result()
            .map_err(|e| DeviceError::Compile {
                name: name.to_string(),
                compiler: "NVRTC",
                status: format!("nvrtcGetCUBINSize: {e:?} (a cubin needs a real sm_XX architecture)"),
                log: log.clone(),
            })?;
        let mut bin = vec![0u8; size];
        if size > 0 {
            // SAFETY: `bin` has the `size` bytes NVRTC reported.
            unsafe { sys::nvrtcGetCUBIN(prog.0, bin.as_mut_ptr().cast::<c_char>()) }
                .result()
                .map_err(|e| DeviceError::Compile {
                    name: name.to_string(),
                    compiler: "NVRTC",
                    status: format!("nvrtcGetCUBIN: {e:?}"),
                    log: log.clone(),
                })?;
        }
        if bin.is_empty() {
            return Err(DeviceError::Compile {
                name: name.to_string(),
                compiler: "NVRTC",
                status: "no cubin produced (a cubin needs a real sm_XX architecture, not compute_XX)".into(),
                log,
            });
        }
        Some(bin)
    } else {
        None
    };
    Ok(NvrtcOutput { ptx, cubin, log })
}
