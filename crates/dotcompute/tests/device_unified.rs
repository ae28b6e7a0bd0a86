//! UnifiedBuffer's six states, lazy synchronisation with counted transfers,
//! and the guards that refuse to lose unsynchronised writes.

use std::sync::Arc;

use dotcompute::device::cpu::ThreadIdx;
use dotcompute::device::{
    kernels, Backend, BufferState, CpuBackend, CpuKernel, DeviceBuffer, DeviceError, KernelArg, LaunchConfig,
    UnifiedBuffer,
};
use BufferState::*;

fn cpu() -> Arc<CpuBackend> {
    Arc::new(CpuBackend::new())
}

#[test]
fn new_buffers_start_uninitialized_and_allocate_lazily() {
    let cpu = cpu();
    let mut b = UnifiedBuffer::<f32, _>::new(&cpu, 8).unwrap();
    assert_eq!(b.state(), Uninitialized);
    assert!(!b.is_allocated());
    assert_eq!(cpu.stats().allocations, 0);
    b.synchronize().unwrap(); // nothing to do
    assert_eq!(b.state(), Uninitialized);
    assert_eq!(b.host().unwrap(), &[0.0; 8]);
    assert_eq!(b.state(), HostOnly);
    assert_eq!(cpu.stats().allocations, 0, "the host side needs no device memory");

    let mut d = UnifiedBuffer::<u32, _>::new(&cpu, 4).unwrap();
    d.device().unwrap();
    assert_eq!(d.state(), DeviceOnly);
    assert_eq!(d.to_vec().unwrap(), vec![0; 4]);
    assert_eq!(d.state(), Synchronized);
}

#[test]
fn lazy_sync_copies_only_when_a_side_is_stale() {
    let cpu = cpu();
    let mut b = UnifiedBuffer::from_slice(&cpu, &[1.0f32, 2.0, 3.0, 4.0]).unwrap();
    assert_eq!(b.state(), HostOnly);
    for _ in 0..3 {
        b.device().unwrap();
    }
    assert_eq!(b.state(), Synchronized);
    assert_eq!((b.transfers().htod_count, b.transfers().htod_bytes), (1, 16));
    for _ in 0..3 {
        b.host().unwrap();
    }
    assert_eq!(b.transfers().dtoh_count, 0, "the host copy was never stale");

    b.host_mut().unwrap()[1] = 20.0;
    assert_eq!(b.state(), HostDirty);
    b.host_mut().unwrap()[2] = 30.0; // still one pending upload
    b.device().unwrap();
    assert_eq!(b.state(), Synchronized);
    assert_eq!(b.transfers().htod_count, 2);
    assert_eq!(b.device().unwrap().to_vec().unwrap(), vec![1.0, 20.0, 30.0, 4.0]);

    // The backend's own counters agree with the buffer's.
    assert_eq!(cpu.stats().htod_count, 2);
}

#[test]
fn kernel_writes_mark_the_device_dirty_and_reads_pull_them_back() {
    let cpu = cpu();
    let saxpy = cpu.compile(kernels::cpu::saxpy()).unwrap();
    let mut x = UnifiedBuffer::from_slice(&cpu, &[1.0f32, 2.0, 3.0]).unwrap();
    let mut y = UnifiedBuffer::from_slice(&cpu, &[10.0f32, 10.0, 10.0]).unwrap();
    let cfg = LaunchConfig::linear(3, 32).unwrap();
    x.device().unwrap();
    let xa = x.arg().unwrap();
    cpu.launch(
        &saxpy,
        &cfg,
        &mut [
            KernelArg::scalar(2.0f32),
            xa,
            y.arg_mut().unwrap(),
            KernelArg::scalar(3u32),
        ],
        &cpu.default_stream(),
    )
    .unwrap();
    assert_eq!(y.state(), DeviceDirty);
    assert_eq!(
        x.state(),
        Synchronized,
        "a read-only argument leaves its buffer synchronized"
    );
    assert_eq!(y.host().unwrap(), &[12.0, 14.0, 16.0]);
    assert_eq!(y.state(), Synchronized);
    assert_eq!(y.transfers().dtoh_count, 1);
    // A second launch and read: exactly one more copy each way is needed.
    cpu.launch(
        &saxpy,
        &cfg,
        &mut [
            KernelArg::scalar(1.0f32),
            x.arg().unwrap(),
            y.arg_mut().unwrap(),
            KernelArg::scalar(3u32),
        ],
        &cpu.default_stream(),
    )
    .unwrap();
    assert_eq!(y.to_vec().unwrap(), vec![13.0, 16.0, 19.0]);
    assert_eq!((y.transfers().htod_count, y.transfers().dtoh_count), (1, 2));
}

#[test]
fn marking_the_other_side_dirty_over_unsynced_writes_is_refused() {
    let cpu = cpu();
    let mut b = UnifiedBuffer::from_slice(&cpu, &[1u8, 2]).unwrap();
    b.synchronize().unwrap();
    b.mark_host_dirty().unwrap();
    assert_eq!(b.state(), HostDirty);
    match b.mark_device_dirty() {
        Err(DeviceError::InvalidState { state: HostDirty, .. }) => {}
        other => panic!("{other:?}"),
    }
    assert_eq!(b.state(), HostDirty, "a refused mark changes nothing");
    b.synchronize().unwrap();
    b.mark_device_dirty().unwrap();
    assert!(matches!(
        b.mark_host_dirty(),
        Err(DeviceError::InvalidState { state: DeviceDirty, .. })
    ));
    // Marks need the side to exist.
    let mut h = UnifiedBuffer::from_slice(&cpu, &[1u8]).unwrap();
    assert!(matches!(
        h.mark_device_dirty(),
        Err(DeviceError::InvalidState { state: HostOnly, .. })
    ));
    h.mark_host_dirty().unwrap();
    assert_eq!(h.state(), HostOnly);
    let mut u = UnifiedBuffer::<u8, _>::new(&cpu, 1).unwrap();
    assert!(u.mark_host_dirty().is_err() && u.mark_device_dirty().is_err());
    let mut d = UnifiedBuffer::from_device(DeviceBuffer::from_slice(&cpu, &[5u8]).unwrap());
    assert_eq!(d.state(), DeviceOnly);
    assert!(d.mark_host_dirty().is_err());
    d.mark_device_dirty().unwrap();
    assert_eq!(d.state(), DeviceOnly);
}

#[test]
fn writing_the_host_over_device_writes_keeps_them_first() {
    // host_mut from DeviceDirty first brings the device's data back, so a
    // partial host write never discards the device's other elements.
    let cpu = cpu();
    let fill = cpu
        .compile(CpuKernel::per_thread("fill", |args| {
            let out = args.output::<i32>(0)?;
            Ok(Box::new(move |t: &ThreadIdx| out.store(t.global_x(), 7)))
        }))
        .unwrap();
    let mut b = UnifiedBuffer::<i32, _>::new(&cpu, 4).unwrap();
    cpu.launch(
        &fill,
        &LaunchConfig::new(1, 4),
        &mut [b.arg_mut().unwrap()],
        &cpu.default_stream(),
    )
    .unwrap();
    assert_eq!(b.state(), DeviceOnly);
    b.host_mut().unwrap()[0] = 1;
    assert_eq!(b.state(), HostDirty);
    assert_eq!(b.device().unwrap().to_vec().unwrap(), vec![1, 7, 7, 7]);
}

#[test]
fn every_transition_of_the_state_machine() {
    // (setup, operation, expected state after) for each state and operation.
    let cpu = cpu();
    let make = |s: BufferState| {
        let mut b = UnifiedBuffer::<u16, _>::new(&cpu, 2).unwrap();
        match s {
            Uninitialized => {}
            HostOnly => b.copy_from_slice(&[1, 2]).unwrap(),
            DeviceOnly => {
                b.device().unwrap();
            }
            Synchronized => {
                b.copy_from_slice(&[1, 2]).unwrap();
                b.synchronize().unwrap();
            }
            HostDirty => {
                b.copy_from_slice(&[1, 2]).unwrap();
                b.synchronize().unwrap();
                b.host_mut().unwrap()[0] = 9;
            }
            DeviceDirty => {
                b.copy_from_slice(&[1, 2]).unwrap();
                b.synchronize().unwrap();
                b.device_mut().unwrap();
            }
        }
        assert_eq!(b.state(), s);
        b
    };
    type Op = fn(&mut UnifiedBuffer<u16, CpuBackend>) -> bool;
    let ops: [(&str, Op); 7] = [
        ("host", |b| b.host().is_ok()),
        ("host_mut", |b| b.host_mut().is_ok()),
        ("device", |b| b.device().is_ok()),
        ("device_mut", |b| b.device_mut().is_ok()),
        ("synchronize", |b| b.synchronize().is_ok()),
        ("mark_host_dirty", |b| b.mark_host_dirty().is_ok()),
        ("mark_device_dirty", |b| b.mark_device_dirty().is_ok()),
    ];
    // Expected (ok, state) per starting state, in `ops` order.
    let table: [(BufferState, [(bool, BufferState); 7]); 6] = [
        (
            Uninitialized,
            [
                (true, HostOnly),
                (true, HostOnly),
                (true, DeviceOnly),
                (true, DeviceOnly),
                (true, Uninitialized),
                (false, Uninitialized),
                (false, Uninitialized),
            ],
        ),
        (
            HostOnly,
            [
                (true, HostOnly),
                (true, HostOnly),
                (true, Synchronized),
                (true, DeviceDirty),
                (true, Synchronized),
                (true, HostOnly),
                (false, HostOnly),
            ],
        ),
        (
            DeviceOnly,
            [
                (true, Synchronized),
                (true, HostDirty),
                (true, DeviceOnly),
                (true, DeviceOnly),
                (true, Synchronized),
                (false, DeviceOnly),
                (true, DeviceOnly),
            ],
        ),
        (
            Synchronized,
            [
                (true, Synchronized),
                (true, HostDirty),
                (true, Synchronized),
                (true, DeviceDirty),
                (true, Synchronized),
                (true, HostDirty),
                (true, DeviceDirty),
            ],
        ),
        (
            HostDirty,
            [
                (true, HostDirty),
                (true, HostDirty),
                (true, Synchronized),
                (true, DeviceDirty),
                (true, Synchronized),
                (true, HostDirty),
                (false, HostDirty),
            ],
        ),
        (
            DeviceDirty,
            [
                (true, Synchronized),
                (true, HostDirty),
                (true, DeviceDirty),
                (true, DeviceDirty),
                (true, Synchronized),
                (false, DeviceDirty),
                (true, DeviceDirty),
            ],
        ),
    ];
    for (start, row) in table {
        for ((name, op), (ok, end)) in ops.iter().zip(row) {
            let mut b = make(start);
            assert_eq!(op(&mut b), ok, "{start} --{name}--> ok?");
            assert_eq!(b.state(), end, "{start} --{name}-->");
        }
    }
}

#[test]
fn data_survives_any_round_trip_and_free_resets() {
    let cpu = cpu();
    let mut b = UnifiedBuffer::from_slice(&cpu, &[1.5f64, -2.5]).unwrap();
    b.device_mut().unwrap().write(&[3.0, 4.0]).unwrap();
    assert_eq!(b.to_vec().unwrap(), vec![3.0, 4.0]);
    b.host_mut().unwrap()[1] = 5.0;
    assert_eq!(b.device().unwrap().to_vec().unwrap(), vec![3.0, 5.0]);
    let before = b.transfers();
    b.free();
    assert_eq!(b.state(), Uninitialized);
    assert_eq!(b.transfers(), before, "counters survive free");
    assert_eq!(cpu.stats().live_bytes, 0, "the device copy was released");
    assert!(matches!(
        b.copy_from_slice(&[1.0]),
        Err(DeviceError::SizeMismatch { .. })
    ));
}
