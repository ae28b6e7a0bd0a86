//! Atomic word views of an exclusively borrowed byte slice, so that many CPU
//! kernel threads can store into one output buffer without a data race.
//!
//! Invariant: a view exists only while the bytes are exclusively borrowed for
//! the same lifetime, so no non-atomic access can overlap the atomic ones;
//! every view is created only after its alignment was checked. This is the
//! only module of the CPU backend with `unsafe`.

use std::sync::atomic::{AtomicU16, AtomicU32, AtomicU64, AtomicU8, Ordering};

/// A byte slice seen as atomic words of one width.
#[derive(Clone, Copy)]
pub(crate) enum AtomicWords<'a> {
    W8(&'a [AtomicU64]),
    W4(&'a [AtomicU32]),
    W2(&'a [AtomicU16]),
    W1(&'a [AtomicU8]),
}

/// The widest word (8, 4, 2 or 1 bytes) that divides `elem_size`: every
/// element of that size starts on a word boundary of a 64-aligned buffer.
pub(crate) fn word_for(elem_size: usize) -> usize {
    [8, 4, 2]
        .into_iter()
        .find(|w| elem_size.is_multiple_of(*w))
        .unwrap_or(1)
}

macro_rules! view {
    ($bytes:expr, $int:ty, $atomic:ty, $variant:ident) => {{
        let ints: &'a mut [$int] = bytemuck::try_cast_slice_mut($bytes).ok()?;
        if !ints.as_ptr().cast::<$atomic>().is_aligned() {
            return None;
        }
        let ptr = ints as *mut [$int] as *const [$atomic];
        // SAFETY: `$atomic` has the same size and bit validity as `$int`, and
        // the pointer was just checked to meet `$atomic`'s alignment. The
        // slice is exclusively borrowed for 'a, so for 'a every access to
        // these bytes goes through the returned atomics.
        Some(AtomicWords::$variant(unsafe { &*ptr }))
    }};
}

impl<'a> AtomicWords<'a> {
    /// Views `bytes` as words of `word` bytes; `None` if the slice's length or
    /// alignment does not fit.
    pub(crate) fn new(bytes: &'a mut [u8], word: usize) -> Option<Self> {
        match word {
            8 => view!(bytes, u64, AtomicU64, W8),
            4 => view!(bytes, u32, AtomicU32, W4),
            2 => view!(bytes, u16, AtomicU16, W2),
            _ => view!(bytes, u8, AtomicU8, W1),
        }
    }

    /// Stores `src` at byte offset `at` (a multiple of the word size).
    pub(crate) fn store(&self, at: usize, src: &[u8]) {
        match self {
            AtomicWords::W8(w) => store_words(w, at / 8, src, |a, c| a.store(u64::from_ne_bytes(c), Ordering::Relaxed)),
            AtomicWords::W4(w) => store_words(w, at / 4, src, |a, c| a.store(u32::from_ne_bytes(c), Ordering::Relaxed)),
            AtomicWords::W2(w) => store_words(w, at / 2, src, |a, c| a.store(u16::from_ne_bytes(c), Ordering::Relaxed)),
            AtomicWords::W1(w) => store_words(w, at, src, |a, c: [u8; 1]| a.store(c[0], Ordering::Relaxed)),
        }
    }

    /// Loads `dst.len()` bytes from byte offset `at` (a multiple of the word size).
    pub(crate) fn load(&self, at: usize, dst: &mut [u8]) {
        match self {
            AtomicWords::W8(w) => load_words(w, at / 8, dst, |a| a.load(Ordering::Relaxed).to_ne_bytes()),
            AtomicWords::W4(w) => load_words(w, at / 4, dst, |a| a.load(Ordering::Relaxed).to_ne_bytes()),
            AtomicWords::W2(w) => load_words(w, at / 2, dst, |a| a.load(Ordering::Relaxed).to_ne_bytes()),
            AtomicWords::W1(w) => load_words(w, at, dst, |a| [a.load(Ordering::Relaxed)]),
        }
    }
}

fn store_words<A, const N: usize>(words: &[A], first: usize, src: &[u8], put: impl Fn(&A, [u8; N])) {
    for (k, chunk) in src.chunks_exact(N).enumerate() {
        let mut c = [0u8; N];
        c.copy_from_slice(chunk);
        if let Some(a) = words.get(first + k) {
            put(a, c);
        }
    }
}

fn load_words<A, const N: usize>(words: &[A], first: usize, dst: &mut [u8], get: impl Fn(&A) -> [u8; N]) {
    for (k, chunk) in dst.chunks_exact_mut(N).enumerate() {
        if let Some(a) = words.get(first + k) {
            chunk.copy_from_slice(&get(a));
        }
    }
}
