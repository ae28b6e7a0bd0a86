//! Standard output and standard error that never panic.
//!
//! `std`'s `println!` panics when standard output is closed (`| head -1`)
//! or full (`> /dev/full`). This crate shadows `println!`, `print!` and
//! `eprintln!` (see `main.rs`) with macros that write through [`print`] and
//! [`eprint`] instead: the first failed write to standard output is kept
//! and later writes are skipped; [`finish`] flushes and returns it, and
//! [`crate::ending::finish`] turns a closed pipe into a quiet exit 0 and any
//! other failure into exit 1 with one line on stderr. A long-running loop
//! asks [`closed`] to stop early once nobody reads its output.
//!
//! Invariant: after the first failure nothing more is written to standard
//! output, so the reader never sees a partial line after a gap.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

static FAILED: AtomicBool = AtomicBool::new(false);
static FIRST_ERROR: Mutex<Option<std::io::Error>> = Mutex::new(None);

fn record(e: std::io::Error) {
    FAILED.store(true, Ordering::Release);
    if let Ok(mut slot) = FIRST_ERROR.lock() {
        slot.get_or_insert(e);
    }
}

/// Writes `args` to standard output (line-buffered, as `std`'s).
#[allow(dead_code)] // `print!` in this crate
pub fn print(args: std::fmt::Arguments<'_>) {
    if closed() {
        return;
    }
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_fmt(args) {
        record(e);
    }
}

/// Writes `args` and a newline to standard output as one line.
pub fn print_line(args: std::fmt::Arguments<'_>) {
    if closed() {
        return;
    }
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_fmt(args).and_then(|()| out.write_all(b"\n")) {
        record(e);
    }
}

/// Flushes standard output now (a streaming command calls it after each
/// record, so a reader sees it at once); false once output has failed.
pub fn flush() -> bool {
    if closed() {
        return false;
    }
    if let Err(e) = std::io::stdout().lock().flush() {
        record(e);
        return false;
    }
    true
}

/// Writes `args` and a newline to standard error; a failure is ignored
/// (there is nowhere left to report it).
pub fn eprint_line(args: std::fmt::Arguments<'_>) {
    let mut err = std::io::stderr().lock();
    let _ = err.write_fmt(args).and_then(|()| err.write_all(b"\n"));
}

/// Whether a write to standard output has failed (its reader is gone, or
/// the disk is full): long loops stop producing output then.
pub fn closed() -> bool {
    FAILED.load(Ordering::Acquire)
}

/// The error a write to standard output met, if any, after a last flush.
pub fn finish() -> std::io::Result<()> {
    if !closed() {
        if let Err(e) = std::io::stdout().lock().flush() {
            record(e);
        }
    }
    match FIRST_ERROR.lock().ok().and_then(|mut slot| slot.take()) {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// A `Write` to standard output through the same failure record, for
/// writers (CSV, JSON) that write in pieces.
pub struct Stdout;

impl Write for Stdout {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if closed() {
            return Err(std::io::Error::from(std::io::ErrorKind::BrokenPipe));
        }
        std::io::stdout()
            .lock()
            .write(buf)
            .inspect_err(|e| record(std::io::Error::new(e.kind(), e.to_string())))
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if closed() {
            return Err(std::io::Error::from(std::io::ErrorKind::BrokenPipe));
        }
        std::io::stdout()
            .lock()
            .flush()
            .inspect_err(|e| record(std::io::Error::new(e.kind(), e.to_string())))
    }
}
