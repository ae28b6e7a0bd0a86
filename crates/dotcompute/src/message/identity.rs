//! Cheap message identity: the id and creation time of every new header.
//!
//! Invariants:
//! - every id minted by one thread differs from every other id that thread
//!   minted (a 62-bit counter behind a per-thread random base), and ids of
//!   different threads or processes differ unless two 122-bit random draws
//!   collide in their top 60 bits *and* their counters overlap — as unlikely
//!   as a collision of random (v4) UUIDs;
//! - a process forked from this one reseeds every thread's base before its
//!   next id, so parent and child never mint the same ids;
//! - ids are RFC 9562 version 8 ("custom") UUIDs with the RFC variant bits:
//!   `base_hi` (version nibble forced to 8) then the variant bits and the
//!   62-bit counter;
//! - creation times are nanoseconds since the Unix epoch from the coarse
//!   real-time clock (one scheduler tick of resolution, 1–4 ms on Linux).
//!
//! Why not `Uuid::new_v4()` and `SystemTime::now()`: together they cost
//! about 40 ns per header (a random draw and a precise clock read), which
//! was a quarter of an async round trip. Here an id is a thread-local add
//! and a relaxed load (about 1–2 ns) and the time a coarse clock read
//! through the vDSO (about 6 ns). The C library's `clock_gettime` does that
//! read; rustix's own vDSO lookup crashed under valgrind, which profiling
//! and users' memory checks need.

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Once;

use uuid::Uuid;

/// Bumped in a forked child so every thread reseeds.
static FORK_GENERATION: AtomicU64 = AtomicU64::new(0);

/// Per-thread state: `(base_hi, counter, generation)`; `base_hi == 0` means unseeded.
struct Ids {
    base_hi: Cell<u64>,
    counter: Cell<u64>,
    generation: Cell<u64>,
}

thread_local! {
    static IDS: Ids = const {
        Ids { base_hi: Cell::new(0), counter: Cell::new(0), generation: Cell::new(0) }
    };
}

/// Version 8 in the version nibble (bits 12..16 of the high half).
const VERSION_MASK: u64 = 0xF000;
const VERSION_8: u64 = 0x8000;
/// The RFC variant (`10`) in the top two bits of the low half.
const VARIANT_MASK: u64 = 0xC000_0000_0000_0000;
const VARIANT_RFC: u64 = 0x8000_0000_0000_0000;
/// The counter's bits.
const COUNTER_MASK: u64 = !VARIANT_MASK;

#[cfg(unix)]
extern "C" fn on_fork_child() {
    FORK_GENERATION.fetch_add(1, Ordering::Relaxed);
}

fn register_fork_handler() {
    static REGISTER: Once = Once::new();
    REGISTER.call_once(|| {
        #[cfg(unix)]
        // SAFETY: `pthread_atfork` only records the function pointers; the
        // child handler is an `extern "C"` fn that does one atomic add
        // (async-signal-safe, allocation-free), as a fork child handler must.
        unsafe {
            libc::pthread_atfork(None, None, Some(on_fork_child));
        }
    });
}

/// A new message id: unique (see the module invariants), never nil.
#[inline]
pub(crate) fn next_id() -> Uuid {
    IDS.with(|ids| {
        let generation = FORK_GENERATION.load(Ordering::Relaxed);
        let mut base = ids.base_hi.get();
        if base == 0 || ids.generation.get() != generation {
            base = seed(ids, generation);
        }
        let counter = ids.counter.get().wrapping_add(1);
        ids.counter.set(counter);
        Uuid::from_u64_pair(base, (counter & COUNTER_MASK) | VARIANT_RFC)
    })
}

/// Draws this thread's random base and counter start (first id of the
/// thread, or first after a fork); returns the base.
#[cold]
#[inline(never)]
fn seed(ids: &Ids, generation: u64) -> u64 {
    register_fork_handler();
    let (hi, lo) = Uuid::new_v4().as_u64_pair();
    let base = (hi & !VERSION_MASK) | VERSION_8;
    ids.base_hi.set(base);
    ids.counter.set(lo);
    ids.generation.set(generation);
    base
}

/// Nanoseconds since the Unix epoch, from the coarse real-time clock
/// (through the C library, which reads it from the vDSO without a system
/// call; a failure, which Linux never reports for this clock, gives the
/// precise system clock instead).
#[cfg(any(target_os = "linux", target_os = "android"))]
#[inline]
pub(crate) fn coarse_now_ns() -> u64 {
    let mut t = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `t` is a valid, writable `timespec` for the duration of the
    // call, which writes nothing else.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_REALTIME_COARSE, &mut t) };
    if rc != 0 {
        return precise_now_ns();
    }
    // Both fields are non-negative for this clock (seconds since 1970,
    // nanoseconds below 10^9), and the product fits in 64 bits until 2554.
    (t.tv_sec as u64)
        .wrapping_mul(1_000_000_000)
        .wrapping_add(t.tv_nsec as u64)
}

/// Nanoseconds since the Unix epoch from the precise system clock (on
/// Linux only the coarse clock's fallback, which never runs).
#[cfg_attr(any(target_os = "linux", target_os = "android"), cold)]
fn precise_now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// Nanoseconds since the Unix epoch (no coarse clock on this platform).
#[cfg(not(any(target_os = "linux", target_os = "android")))]
pub(crate) fn coarse_now_ns() -> u64 {
    precise_now_ns()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn ids_are_version_8_rfc_variant_and_unique_across_threads() {
        let per_thread = 20_000;
        let threads: Vec<_> = (0..4)
            .map(|_| std::thread::spawn(move || (0..per_thread).map(|_| next_id()).collect::<Vec<_>>()))
            .collect();
        let mut seen = HashSet::new();
        for t in threads {
            for id in t.join().unwrap() {
                assert_eq!(id.get_version_num(), 8);
                assert_eq!(id.get_variant(), uuid::Variant::RFC4122);
                assert!(!id.is_nil());
                assert!(seen.insert(id), "duplicate id {id}");
            }
        }
        assert_eq!(seen.len(), 4 * per_thread);
    }

    #[test]
    fn the_counter_wraps_inside_its_62_bits() {
        IDS.with(|ids| {
            let _ = next_id();
            ids.counter.set(COUNTER_MASK - 1);
        });
        let a = next_id();
        let b = next_id();
        let c = next_id();
        assert_ne!(a, b);
        assert_ne!(b, c);
        for id in [a, b, c] {
            assert_eq!(id.get_variant(), uuid::Variant::RFC4122);
        }
    }

    #[test]
    fn a_fork_generation_change_reseeds() {
        let before = next_id();
        FORK_GENERATION.fetch_add(1, Ordering::Relaxed);
        let after = next_id();
        assert_ne!(before.as_u64_pair().0, after.as_u64_pair().0, "new base after a fork");
    }

    #[test]
    fn coarse_time_is_close_to_the_system_clock() {
        let sys = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64;
        let coarse = coarse_now_ns();
        // One tick (≤ 10 ms on any common kernel) apart, in either order.
        assert!(coarse.abs_diff(sys) < 50_000_000, "{coarse} vs {sys}");
    }
}
