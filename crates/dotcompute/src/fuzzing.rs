//! Fuzz targets: one function per input surface that takes arbitrary bytes,
//! feeds them to the code that reads outside input, and checks that it
//! answers with a value or a typed error, never a panic, a hang or an
//! unbounded allocation, and that what it accepts keeps its invariants.
//!
//! Not a stable API (hidden from the docs): the functions are here, inside
//! the crate, because some surfaces (the GPU protocol's host side) are
//! crate-private. The workloads' parsers have their own targets in
//! `dotcompute_workloads::fuzzing`. Two drivers call them: the cargo-fuzz targets in `fuzz/`
//! (nightly, coverage-guided) and `tests/fuzz_targets.rs` (stable, every
//! test run: the committed corpus in `fuzz/corpus/` plus thousands of
//! random inputs).
//!
//! Invariant: each function returns normally for every input; a panic in
//! one is a bug in the code it drives (or a violated invariant it checks).

/// A message for the codec target: nested, optional, variable-length fields.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, crate::Message)]
pub struct FuzzMessage {
    /// A number.
    pub id: u64,
    /// Text.
    pub name: String,
    /// A list.
    pub values: Vec<f64>,
    /// An optional nested list.
    pub tags: Option<Vec<String>>,
    /// Header.
    pub header: crate::MessageHeader,
}

/// The wire codec: `decode` of arbitrary bytes; what decodes re-encodes to
/// bytes that decode to the same message.
pub fn codec(data: &[u8]) {
    let _ = crate::message::codec::peek_type_name(data);
    if let Ok(m) = crate::message::codec::decode::<FuzzMessage>(data) {
        if let Ok(bytes) = crate::message::codec::encode(&m) {
            let again = crate::message::codec::decode::<FuzzMessage>(&bytes);
            assert!(again.is_ok(), "a decoded message does not decode after re-encoding");
            if let Ok(again) = again {
                // NaN != NaN: compare the bits of the values.
                assert_eq!(again.id, m.id);
                assert_eq!(again.name, m.name);
                assert_eq!(
                    again.values.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                    m.values.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
                );
                assert_eq!(again.tags, m.tags);
            }
        }
    }
}

/// Opening a shared-memory region a hostile creator wrote: the file is
/// either the input itself (first byte even) or a valid region with the
/// input's patches applied (`offset: u16, byte` triples); if it opens, the
/// kernel end reads its ring and the failure text.
#[cfg(all(feature = "process", target_os = "linux"))]
pub fn shm_open(data: &[u8]) {
    use crate::ipc::shm::{Region, Role};
    let Ok(dir) = tempfile::tempdir() else { return };
    let path = dir.path().join("region");
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    if selector & 1 == 0 {
        if std::fs::write(&path, body).is_err() {
            return;
        }
    } else {
        let config = crate::ipc::RegionConfig {
            capacity: 4,
            slot_size: 64,
            heartbeat_timeout: None,
            ..Default::default()
        };
        let Ok(region) = Region::create(&path, Role::Host, &config) else {
            return;
        };
        drop(region);
        let Ok(mut bytes) = std::fs::read(&path) else { return };
        for patch in body.chunks_exact(3) {
            let at = usize::from(u16::from_le_bytes([patch[0], patch[1]]));
            if let Some(b) = bytes.get_mut(at) {
                *b = patch[2];
            }
        }
        if std::fs::write(&path, &bytes).is_err() {
            return;
        }
    }
    if let Ok(region) = Region::open(&path, Role::Kernel, std::time::Duration::ZERO) {
        let region = std::sync::Arc::new(region);
        let _ = region.failure_text();
        if let Ok((_tx, mut rx)) = crate::ipc::byte_ring::split(&region) {
            let mut out = Vec::new();
            for _ in 0..8 {
                out.clear();
                match rx.try_pop(&mut out) {
                    Ok(true) => assert!(out.len() <= rx.max_message()),
                    Ok(false) | Err(_) => break,
                }
            }
        }
    }
}

/// The GPU protocol's host side reading what a (hostile or broken) device
/// wrote: the input is a sequence of device writes to the output ring's
/// tail, the input ring's head and the status and counter words, each
/// followed by the host's reads (`refresh`, `pop_into`, `push_slice`,
/// `counters`, `read_state`). Every index the host accepts must stay within
/// the ring; everything else must be a `ProtocolError`.
#[cfg(feature = "gpu")]
pub fn gpu_host_reader(data: &[u8]) {
    use std::sync::atomic::Ordering;

    use crate::gpu::protocol::host_side::HostControl;
    use crate::gpu::protocol::layout::{ControlBlock, DeviceParams, RegionLayout};
    use crate::gpu::protocol::memory::{HostRegion, SharedMemory};
    use crate::gpu::protocol::ring::{Consumer, Producer};
    use crate::gpu::protocol::Lifecycle;
    use crate::gpu::NoState;

    let Ok(layout) = RegionLayout::for_types::<FuzzSlot, FuzzSlot, NoState>(8, 8) else {
        return;
    };
    let Ok(host) = HostRegion::new(layout.size) else { return };
    let mem = host.region();
    if layout.init(&mem, &DeviceParams::default()).is_err() {
        return;
    }
    let mut control = HostControl::new(mem, layout);
    let Ok(mut producer) = Producer::<_, FuzzSlot>::attach(mem, layout.input_ring()) else {
        return;
    };
    let Ok(mut consumer) = Consumer::<_, FuzzSlot>::attach(mem, layout.output_ring()) else {
        return;
    };
    let words = [
        ControlBlock::OUT_TAIL,
        ControlBlock::IN_HEAD,
        ControlBlock::DEVICE_STATE,
        ControlBlock::PROCESSED,
        ControlBlock::FAULT,
    ];
    let mut out = Vec::new();
    for op in data.chunks(9) {
        let (&which, value) = match op.split_first() {
            Some(x) => x,
            None => break,
        };
        let mut word = [0u8; 8];
        word[..value.len()].copy_from_slice(value);
        let value = u64::from_le_bytes(word);
        // The device's write: small steps are the likely ones, so a value
        // below 64 moves the word by that much instead of replacing it.
        let at = words[usize::from(which) % words.len()];
        let new = if value < 64 {
            mem.load(at, Ordering::Relaxed).wrapping_add(value)
        } else {
            value
        };
        mem.store(at, new, Ordering::Release);
        match which >> 4 {
            0 => {
                if let Ok(n) = consumer.refresh() {
                    assert!(
                        n <= layout.out_capacity,
                        "{n} messages in a ring of {}",
                        layout.out_capacity
                    );
                }
            }
            1 => {
                out.clear();
                if let Ok(n) = consumer.pop_into(&mut out, 5) {
                    assert!(n <= 5 && out.len() == n);
                }
            }
            2 => {
                if let Ok(free) = producer.refresh() {
                    assert!(free <= layout.in_capacity);
                }
            }
            3 => {
                let _ = producer.push_slice(&[FuzzSlot { value: 1 }; 3]);
            }
            4 => {
                let _ = control.counters();
                let _ = control.status();
            }
            5 => {
                let _ = control.read_state::<NoState>();
            }
            6 => control.command(Lifecycle::Deactivated),
            7 => control.command(Lifecycle::Active),
            _ => {
                if let Ok(c) = control.counters() {
                    let _ = control.acknowledged(&c);
                    let _ = c.fault_code();
                }
            }
        }
    }
}

/// A ring slot for [`gpu_host_reader`].
#[cfg(feature = "gpu")]
#[derive(Debug, Clone, Copy, PartialEq, crate::gpu::GpuMessage)]
#[repr(C)]
#[gpu_message(cuda_name = "DcFuzzSlot")]
pub struct FuzzSlot {
    /// A value.
    pub value: u64,
}
