//! [`Mapping`]: the only way the `ipc` module touches shared memory.
//!
//! The other process may write any byte of the mapping at any time (it may be
//! buggy, or die half-way through an update). So nothing here hands out a
//! plain reference into the mapping: every access is an atomic load or store
//! of an aligned `u32` / `u64` word. A racing write by the peer can then only
//! make us read a stale or garbage *value*, never cause undefined behaviour;
//! the callers validate every value they read before use.
//!
//! Offsets are computed by this crate from validated local copies of the
//! layout, never taken raw from shared memory, and are bounds- and
//! alignment-checked here anyway (a failed check is a bug in this crate and
//! panics; it cannot be triggered by the content of the mapping).
//!
//! Residual risk, documented rather than handled: a process of the same user
//! that *shrinks the file* (`ftruncate`) makes later accesses fault with
//! `SIGBUS`. The file is created with mode 0600, so only the same user can do
//! that.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use memmap2::MmapMut;

/// A read-write shared mapping, accessed only through aligned atomic words.
pub(crate) struct Mapping {
    /// Keeps the mapping alive (unmapped on drop). Never dereferenced as a
    /// slice after construction, so no `&mut [u8]` aliases the words we hand
    /// out.
    _map: MmapMut,
    base: *mut u8,
    len: usize,
}

// SAFETY: the mapping is plain memory shared with another process anyway;
// every access goes through atomics (see the module docs), which are `Sync`.
// The raw pointer is only a base address, valid as long as `_map` lives.
unsafe impl Send for Mapping {}
// SAFETY: as above.
unsafe impl Sync for Mapping {}

impl Mapping {
    /// Takes ownership of a mapping. Its base is page-aligned (hence 8-aligned).
    pub(crate) fn new(mut map: MmapMut) -> Self {
        let base = map.as_mut_ptr();
        let len = map.len();
        assert_eq!(base as usize % 8, 0, "mappings are page-aligned");
        Mapping { _map: map, base, len }
    }

    /// Length of the mapping in bytes.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    #[inline(always)]
    fn check(&self, offset: usize, size: usize, align: usize) {
        assert!(
            offset.is_multiple_of(align) && offset.checked_add(size).is_some_and(|end| end <= self.len),
            "ipc bug: access of {size} bytes at offset {offset} of a {}-byte mapping",
            self.len
        );
    }

    /// The `u32` word at `offset` (4-aligned, in bounds).
    #[inline(always)]
    pub(crate) fn u32(&self, offset: usize) -> &AtomicU32 {
        self.check(offset, 4, 4);
        // SAFETY: in bounds and 4-aligned (checked above, base is page-aligned);
        // the memory stays mapped for as long as `&self` lives; and every access
        // to this word, in this process or the peer, is atomic, so there is no
        // data race in the sense of the memory model.
        unsafe { AtomicU32::from_ptr(self.base.add(offset).cast()) }
    }

    /// The `u64` word at `offset` (8-aligned, in bounds).
    #[inline(always)]
    pub(crate) fn u64(&self, offset: usize) -> &AtomicU64 {
        self.check(offset, 8, 8);
        // SAFETY: as in `u32`, with 8-byte alignment checked.
        unsafe { AtomicU64::from_ptr(self.base.add(offset).cast()) }
    }

    /// The `count` consecutive `u64` words from `offset` (8-aligned, in bounds).
    #[inline(always)]
    fn words(&self, offset: usize, count: usize) -> &[AtomicU64] {
        self.check(offset, count * 8, 8);
        // SAFETY: the whole range is in bounds and 8-aligned (checked above);
        // `AtomicU64` has the size and alignment of `u64`, so the range is a
        // valid `[AtomicU64]`; the memory stays mapped while `&self` lives;
        // and every access to it, here or in the peer, is atomic.
        unsafe { std::slice::from_raw_parts(self.base.add(offset).cast::<AtomicU64>(), count) }
    }

    /// Copies `src` to `offset` (8-aligned) as `ceil(len / 8)` relaxed `u64`
    /// stores; the last word is zero-padded. The caller publishes the bytes
    /// with a later `Release` store.
    #[inline]
    pub(crate) fn write_bytes(&self, offset: usize, src: &[u8]) {
        let words = self.words(offset, src.len().div_ceil(8));
        let mut chunks = src.chunks_exact(8);
        for (word, chunk) in words.iter().zip(chunks.by_ref()) {
            let mut bytes = [0u8; 8];
            bytes.copy_from_slice(chunk); // chunks_exact(8): always 8 bytes
            let w = u64::from_ne_bytes(bytes);
            word.store(w, Ordering::Relaxed);
        }
        let rest = chunks.remainder();
        if let Some(word) = words.last().filter(|_| !rest.is_empty()) {
            let mut last = [0u8; 8];
            last[..rest.len()].copy_from_slice(rest);
            word.store(u64::from_ne_bytes(last), Ordering::Relaxed);
        }
    }

    /// Fills `dst` from `offset` (8-aligned) with `ceil(len / 8)` relaxed
    /// `u64` loads. The caller has acquired the bytes with an earlier
    /// `Acquire` load. If the peer writes concurrently, `dst` gets garbage,
    /// which the caller's decoder rejects; nothing worse.
    #[inline]
    pub(crate) fn read_bytes(&self, offset: usize, dst: &mut [u8]) {
        let words = self.words(offset, dst.len().div_ceil(8));
        let mut chunks = dst.chunks_exact_mut(8);
        for (word, chunk) in words.iter().zip(chunks.by_ref()) {
            chunk.copy_from_slice(&word.load(Ordering::Relaxed).to_ne_bytes());
        }
        let rest = chunks.into_remainder();
        if let Some(word) = words.last().filter(|_| !rest.is_empty()) {
            let w = word.load(Ordering::Relaxed).to_ne_bytes();
            let n = rest.len();
            rest.copy_from_slice(&w[..n]);
        }
    }
}

impl std::fmt::Debug for Mapping {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mapping").field("len", &self.len).finish()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    fn anon(len: usize) -> Mapping {
        Mapping::new(MmapMut::map_anon(len).unwrap())
    }

    #[test]
    fn bytes_round_trip_at_every_length() {
        let m = anon(4096);
        for len in 0..100 {
            let src: Vec<u8> = (0..len as u8).map(|b| b.wrapping_mul(7).wrapping_add(1)).collect();
            m.write_bytes(64, &src);
            let mut dst = vec![0xAA; len];
            m.read_bytes(64, &mut dst);
            assert_eq!(dst, src);
        }
    }

    #[test]
    fn words_are_shared() {
        let m = anon(4096);
        m.u64(8).store(0x1122_3344_5566_7788, Ordering::Relaxed);
        m.u32(16).store(5, Ordering::Relaxed);
        let mut b = [0u8; 12];
        m.read_bytes(8, &mut b);
        assert_eq!(&b[..8], &0x1122_3344_5566_7788u64.to_ne_bytes());
        assert_eq!(&b[8..], &5u32.to_ne_bytes());
    }

    #[test]
    #[should_panic(expected = "ipc bug")]
    fn out_of_bounds_is_a_panic_not_ub() {
        let m = anon(4096);
        m.u64(4096 - 4);
    }

    #[test]
    #[should_panic(expected = "ipc bug")]
    fn misaligned_is_a_panic_not_ub() {
        let m = anon(4096);
        m.u32(2);
    }
}
