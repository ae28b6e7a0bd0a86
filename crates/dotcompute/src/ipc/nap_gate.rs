//! The handshake between a process kernel's thread, which naps long while a
//! host sleeps relaying for it, and that host when it leaves (see
//! [`relay`](super::relay)).
//!
//! Invariant: a nap the kernel's thread chose long because it saw a
//! sleeping host is always cut short by that host's leaving — the host's
//! [`host_must_nudge`](NapGate::host_must_nudge) after its
//! [`host_wakes`](NapGate::host_wakes) returns true. The kernel's thread
//! raises `napping`, then a sequentially consistent fence, then reads
//! `host_sleeping`; the host lowers `host_sleeping`, then a fence, then
//! reads `napping`. The two fences are ordered one way or the other, so at
//! least one of the two reads sees the other side's write (the
//! store-buffering outcome, where both miss, is excluded). Model-checked
//! below with loom (`scripts/loom.sh`; loom checks fences, and treats
//! `SeqCst` loads and stores as acquire/release only, so the fences are what
//! it verifies).

use crate::ring::sync::{fence, AtomicU32, Ordering};

/// Two flags, one written by each side.
#[derive(Debug, Default)]
pub(super) struct NapGate {
    /// The kernel's thread naps long (written by it).
    napping: AtomicU32,
    /// A host relaying in a receive sleeps on the rings (written by hosts).
    host_sleeping: AtomicU32,
}

impl NapGate {
    pub(super) fn new() -> Self {
        NapGate {
            napping: AtomicU32::new(0),
            host_sleeping: AtomicU32::new(0),
        }
    }

    /// Host: about to sleep on the rings while it relays in a receive.
    pub(super) fn host_sleeps(&self) {
        self.host_sleeping.store(1, Ordering::SeqCst);
    }

    /// Host: awake again (before it can leave).
    pub(super) fn host_wakes(&self) {
        self.host_sleeping.store(0, Ordering::SeqCst);
        fence(Ordering::SeqCst);
    }

    /// Host, leaving its call: whether the kernel's thread may be in a long
    /// nap that this host must cut short.
    pub(super) fn host_must_nudge(&self) -> bool {
        self.napping.load(Ordering::SeqCst) != 0
    }

    /// Kernel's thread, before a nap: whether it may nap long (a host sleeps
    /// relaying, and will nudge it when it leaves). Follow a `true` with
    /// [`kernel_wakes`](Self::kernel_wakes) once the nap is over.
    pub(super) fn kernel_naps_long(&self) -> bool {
        self.napping.store(1, Ordering::SeqCst);
        fence(Ordering::SeqCst);
        let long = self.host_sleeping.load(Ordering::SeqCst) != 0;
        if !long {
            self.napping.store(0, Ordering::SeqCst);
        }
        long
    }

    /// Kernel's thread: its nap is over.
    pub(super) fn kernel_wakes(&self) {
        self.napping.store(0, Ordering::SeqCst);
    }
}

#[cfg(all(test, loom))]
mod loom_tests {
    use loom::sync::Arc;
    use loom::thread;

    use super::NapGate;

    /// Every interleaving of a host that sleeps, wakes and leaves with a
    /// kernel's thread deciding how long to nap: a long nap is always one
    /// the leaving host nudges.
    #[test]
    fn a_long_nap_is_always_cut_short_by_the_leaving_host() {
        loom::model(|| {
            let gate = Arc::new(NapGate::new());
            let host = {
                let gate = gate.clone();
                thread::spawn(move || {
                    gate.host_sleeps();
                    gate.host_wakes();
                    gate.host_must_nudge()
                })
            };
            let long = gate.kernel_naps_long();
            let nudged = host.join().unwrap();
            assert!(!long || nudged, "a long nap the leaving host did not see");
        });
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::NapGate;

    #[test]
    fn the_gate_follows_its_sides() {
        let gate = NapGate::new();
        assert!(!gate.kernel_naps_long(), "no host sleeps: a short nap");
        assert!(!gate.host_must_nudge());
        gate.host_sleeps();
        assert!(gate.kernel_naps_long());
        gate.host_wakes();
        assert!(gate.host_must_nudge(), "the kernel's thread naps long");
        gate.kernel_wakes();
        assert!(!gate.host_must_nudge());
    }
}
