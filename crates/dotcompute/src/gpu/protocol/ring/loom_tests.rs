//! Model checks of the host ↔ device protocol with loom: the very code the
//! emulator runs (`Producer`, `Consumer`, `DeviceSide::step`, `HostControl`)
//! over a loom model of the shared region, in which every control word is a
//! loom atomic and every slot and the state buffer a loom cell, so a read
//! that is not ordered after the matching write is reported as a race.
//!
//! Only built with `--cfg loom` (`scripts/loom.sh`, whose `ring` filter
//! selects this module). Rings hold 1–2 slots and models move 2 messages;
//! with a preemption bound of 5 all five models take about 2 s in release
//! mode (`--nocapture` prints the interleavings explored).

use std::sync::atomic::Ordering;
use std::sync::Arc;

use loom::cell::UnsafeCell;
use loom::sync::atomic::AtomicU64;
use loom::thread;

use crate::gpu::protocol::device_side::{DeviceSide, Step};
use crate::gpu::protocol::host_side::HostControl;
use crate::gpu::protocol::layout::{ControlBlock, DeviceParams, LinkLayout, RegionLayout};
use crate::gpu::protocol::memory::{sealed, SharedMemory};
use crate::gpu::protocol::ring::{Consumer, Producer};
use crate::gpu::protocol::{DeviceState, Lifecycle};

#[derive(Debug, Clone, Copy, PartialEq, Eq, crate::gpu::GpuMessage)]
#[repr(C)]
struct Msg {
    v: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, crate::gpu::GpuMessage)]
#[repr(C)]
struct Tally {
    count: u64,
    sum: u64,
}

/// The model of a region: loom atomics at the word offsets the protocol
/// uses, loom cells for the byte ranges it copies (slots, state).
struct Inner {
    len: usize,
    words: Vec<(usize, AtomicU64)>,
    cells: Vec<(usize, UnsafeCell<Vec<u8>>)>,
}

// SAFETY: the cells are only accessed through loom's `with`/`with_mut`,
// which is what checks that the protocol orders every cross-thread access.
unsafe impl Sync for Inner {}
// SAFETY: as for `Sync`.
unsafe impl Send for Inner {}

#[derive(Clone)]
struct LoomMemory(Arc<Inner>);

impl LoomMemory {
    fn new(
        len: usize,
        words: impl IntoIterator<Item = usize>,
        cells: impl IntoIterator<Item = (usize, usize)>,
    ) -> Self {
        LoomMemory(Arc::new(Inner {
            len,
            words: words.into_iter().map(|o| (o, AtomicU64::new(0))).collect(),
            cells: cells
                .into_iter()
                .map(|(o, n)| (o, UnsafeCell::new(vec![0u8; n])))
                .collect(),
        }))
    }

    fn region(layout: &RegionLayout) -> Self {
        let mut cells = Vec::new();
        for k in 0..layout.in_capacity as usize {
            cells.push((layout.in_slots + k * layout.in_slot_size, layout.in_slot_size));
        }
        for k in 0..layout.out_capacity as usize {
            cells.push((layout.out_slots + k * layout.out_slot_size, layout.out_slot_size));
        }
        cells.push((layout.state, layout.state_size));
        Self::new(layout.size, ControlBlock::FIELDS.iter().map(|f| f.1), cells)
    }

    fn link(layout: &LinkLayout) -> Self {
        let words = [
            LinkLayout::MAGIC,
            LinkLayout::VERSION,
            LinkLayout::CAPACITY,
            LinkLayout::SLOT_SIZE,
            layout.tail,
            layout.head,
        ];
        let cells = (0..layout.capacity as usize).map(|k| (layout.slots + k * layout.slot_size, layout.slot_size));
        Self::new(layout.size, words, cells)
    }

    fn word(&self, offset: usize) -> &AtomicU64 {
        match self.0.words.iter().find(|w| w.0 == offset) {
            Some((_, w)) => w,
            None => panic!("no word at offset {offset} in the model"),
        }
    }

    fn cell(&self, offset: usize, len: usize) -> &UnsafeCell<Vec<u8>> {
        match self.0.cells.iter().find(|c| c.0 == offset) {
            Some((_, c)) => {
                c.with(|v| {
                    // SAFETY: only the length is read; it never changes.
                    assert_eq!(unsafe { (*v).len() }, len, "partial slot access at {offset}")
                });
                c
            }
            None => panic!("no cell at offset {offset} in the model"),
        }
    }
}

impl sealed::Sealed for LoomMemory {}

// SAFETY: words are loom atomics; byte copies go through loom cells, which
// check (and report) any access not ordered by the protocol.
unsafe impl SharedMemory for LoomMemory {
    fn len(&self) -> usize {
        self.0.len
    }

    fn load(&self, offset: usize, order: Ordering) -> u64 {
        self.word(offset).load(order)
    }

    fn store(&self, offset: usize, value: u64, order: Ordering) {
        self.word(offset).store(value, order)
    }

    unsafe fn write(&self, offset: usize, src: *const u8, len: usize) {
        self.cell(offset, len).with_mut(|v| {
            // SAFETY: the caller's contract: `src` is readable for `len`
            // bytes; the cell holds exactly `len` bytes.
            unsafe { std::ptr::copy_nonoverlapping(src, (*v).as_mut_ptr(), len) }
        })
    }

    unsafe fn read(&self, offset: usize, dst: *mut u8, len: usize) {
        self.cell(offset, len).with(|v| {
            // SAFETY: as in `write`.
            unsafe { std::ptr::copy_nonoverlapping((*v).as_ptr(), dst, len) }
        })
    }

    fn zero(&self, offset: usize, len: usize) {
        for (o, w) in &self.0.words {
            if (offset..offset + len).contains(o) {
                w.store(0, Ordering::Relaxed);
            }
        }
        for (o, c) in &self.0.cells {
            if (offset..offset + len).contains(o) {
                // SAFETY: zeroing happens before the memory is shared.
                c.with_mut(|v| unsafe { (*v).fill(0) });
            }
        }
    }
}

/// Runs `f` under every interleaving loom explores (preemption bound 5
/// unless `LOOM_MAX_PREEMPTIONS` says otherwise) and prints how many.
fn model(f: impl Fn() + Sync + Send + 'static) {
    static RUNS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let mut builder = loom::model::Builder::new();
    if builder.preemption_bound.is_none() {
        builder.preemption_bound = Some(5);
    }
    builder.max_branches = 100_000;
    let start = std::time::Instant::now();
    let before = RUNS.load(Ordering::Relaxed);
    builder.check(move || {
        RUNS.fetch_add(1, Ordering::Relaxed);
        f();
    });
    println!(
        "explored {} interleavings in {:.2?}",
        RUNS.load(Ordering::Relaxed) - before,
        start.elapsed()
    );
}

/// A fresh region for `Msg → Msg` with `Tally` state, ready for the device.
fn region(in_cap: u64, out_cap: u64, batch: u32) -> (LoomMemory, RegionLayout) {
    let layout = RegionLayout::for_types::<Msg, Msg, Tally>(in_cap, out_cap).unwrap();
    let mem = LoomMemory::region(&layout);
    let params = DeviceParams {
        batch_size: batch,
        ..DeviceParams::default()
    };
    layout.init(&mem, &params).unwrap();
    (mem, layout)
}

fn handler(i: &Msg, o: &mut Msg, s: &mut Tally) -> u32 {
    s.count += 1;
    s.sum += i.v;
    o.v = i.v * 10 + s.count;
    0
}

/// Runs the device until it exits; returns the number of messages it handled.
fn run_device(dev: DeviceSide<LoomMemory, Msg, Msg, Tally>) -> u64 {
    run_until(dev, u64::MAX)
}

/// Runs the device until it exits or has handled `limit` messages.
fn run_until(mut dev: DeviceSide<LoomMemory, Msg, Msg, Tally>, limit: u64) -> u64 {
    let mut h = handler;
    let mut handled = 0;
    while handled < limit {
        match dev.step(&mut h) {
            Step::Processed(n) => handled += n,
            Step::Idle | Step::Parked => thread::yield_now(),
            Step::Exited => return handled,
            Step::Faulted(code) => panic!("device faulted: {code:?}"),
        }
    }
    handled
}

fn push_blocking(tx: &mut Producer<LoomMemory, Msg>, v: u64) {
    while tx.push_slice(&[Msg { v }]).unwrap() == 0 {
        thread::yield_now();
    }
}

fn pop_blocking(rx: &mut Consumer<LoomMemory, Msg>) -> Msg {
    let mut out = Vec::new();
    while rx.pop_into(&mut out, 1).unwrap() == 0 {
        thread::yield_now();
    }
    out[0]
}

/// Waits until the device acknowledged the host's latest command (one load
/// per poll, to keep the model small).
fn wait_ack(control: &HostControl<LoomMemory>) -> DeviceState {
    loop {
        let (state, ack) = control.status().unwrap();
        if ack == control.last_command().1 {
            return state;
        }
        thread::yield_now();
    }
}

#[test]
fn round_trip_through_both_rings_arrives_once_in_order() {
    // Host producer + device consumer on a 1-slot input ring, device producer
    // + host consumer on a 1-slot output ring, 2 messages, batches of 2.
    model(|| {
        let (mem, layout) = region(1, 1, 2);
        let mut control = HostControl::new(mem.clone(), layout);
        control.write_initial_state(&Tally { count: 0, sum: 0 });
        let mut tx = Producer::<_, Msg>::attach(mem.clone(), layout.input_ring()).unwrap();
        let mut rx = Consumer::<_, Msg>::attach(mem.clone(), layout.output_ring()).unwrap();
        control.command(Lifecycle::Active);
        let device_mem = mem.clone();
        let device = thread::spawn(move || {
            let dev = DeviceSide::<_, Msg, Msg, Tally>::attach(device_mem, None, None).unwrap();
            run_device(dev)
        });
        for v in 1..=2 {
            push_blocking(&mut tx, v);
            // With one slot each way the host must drain to keep going.
            let got = pop_blocking(&mut rx);
            assert_eq!(got.v, v * 10 + v);
        }
        control.command(Lifecycle::Terminate);
        assert_eq!(device.join().unwrap(), 2);
        let c = control.counters().unwrap();
        assert_eq!((c.state, c.processed), (DeviceState::Exited, 2));
        assert_eq!(control.read_state::<Tally>().unwrap(), Some(Tally { count: 2, sum: 3 }));
    });
}

#[test]
fn batch_of_two_is_published_at_once_and_in_order() {
    // Two messages already queued; the device may take them as one batch or
    // two; the host sees each exactly once, in order.
    model(|| {
        let (mem, layout) = region(2, 2, 2);
        let mut control = HostControl::new(mem.clone(), layout);
        control.write_initial_state(&Tally { count: 0, sum: 0 });
        let mut tx = Producer::<_, Msg>::attach(mem.clone(), layout.input_ring()).unwrap();
        let mut rx = Consumer::<_, Msg>::attach(mem.clone(), layout.output_ring()).unwrap();
        control.command(Lifecycle::Active);
        let device_mem = mem.clone();
        let device = thread::spawn(move || {
            let dev = DeviceSide::<_, Msg, Msg, Tally>::attach(device_mem, None, None).unwrap();
            run_device(dev)
        });
        assert_eq!(tx.push_slice(&[Msg { v: 5 }, Msg { v: 7 }]).unwrap(), 2);
        let a = pop_blocking(&mut rx);
        let b = pop_blocking(&mut rx);
        assert_eq!((a.v, b.v), (51, 72));
        control.command(Lifecycle::Terminate);
        device.join().unwrap();
        let c = control.counters().unwrap();
        assert_eq!(c.processed, 2);
        assert!(c.batches == 1 || c.batches == 2);
    });
}

#[test]
fn deactivate_parks_and_the_state_read_does_not_race() {
    // The host deactivates while a message may be in flight, waits for the
    // acknowledgement, reads the state (a loom cell the device writes back),
    // then sends while parked: nothing more is handled until terminate.
    model(|| {
        let (mem, layout) = region(2, 2, 2);
        let mut control = HostControl::new(mem.clone(), layout);
        control.write_initial_state(&Tally { count: 0, sum: 0 });
        let mut tx = Producer::<_, Msg>::attach(mem.clone(), layout.input_ring()).unwrap();
        control.command(Lifecycle::Active);
        let device_mem = mem.clone();
        let device = thread::spawn(move || {
            let dev = DeviceSide::<_, Msg, Msg, Tally>::attach(device_mem, None, None).unwrap();
            run_device(dev)
        });
        push_blocking(&mut tx, 4);
        control.command(Lifecycle::Deactivated);
        assert_eq!(wait_ack(&control), DeviceState::Parked);
        let state = control.read_state::<Tally>().unwrap().expect("parked and acknowledged");
        let processed = control.counters().unwrap().processed;
        assert_eq!(state.count, processed, "the state written back matches the counters");
        assert!(processed <= 1);
        push_blocking(&mut tx, 6);
        control.command(Lifecycle::Terminate);
        let handled = device.join().unwrap();
        assert_eq!(handled, processed, "nothing is handled while parked");
        let c = control.counters().unwrap();
        assert_eq!((c.state, c.processed), (DeviceState::Exited, processed));
    });
}

#[test]
fn exited_status_implies_final_counters_and_visible_replies() {
    // The host requests terminate at once and polls the status word; once it
    // reads Exited, the counters and every published reply are visible.
    model(|| {
        let (mem, layout) = region(2, 2, 1);
        let mut control = HostControl::new(mem.clone(), layout);
        control.write_initial_state(&Tally { count: 0, sum: 0 });
        let mut tx = Producer::<_, Msg>::attach(mem.clone(), layout.input_ring()).unwrap();
        let mut rx = Consumer::<_, Msg>::attach(mem.clone(), layout.output_ring()).unwrap();
        control.command(Lifecycle::Active);
        assert_eq!(tx.push_slice(&[Msg { v: 1 }, Msg { v: 2 }]).unwrap(), 2);
        let device_mem = mem.clone();
        let device = thread::spawn(move || {
            let dev = DeviceSide::<_, Msg, Msg, Tally>::attach(device_mem, None, None).unwrap();
            run_device(dev)
        });
        control.command(Lifecycle::Terminate);
        while control.status().unwrap().0 != DeviceState::Exited {
            thread::yield_now();
        }
        let c = control.counters().unwrap();
        // No join yet: only the status word orders what we read.
        let mut replies = Vec::new();
        rx.pop_into(&mut replies, 2).unwrap();
        assert_eq!(
            replies.len() as u64,
            c.processed,
            "every handled message's reply is visible"
        );
        let state = control.read_state::<Tally>().unwrap().expect("exited");
        assert_eq!(state.count, c.processed);
        assert_eq!(device.join().unwrap(), c.processed);
    });
}

#[test]
fn link_ring_between_two_devices_delivers_in_order() {
    // Kernel-to-kernel: device A writes its replies into a 1-slot link ring
    // that device B reads. Both inputs are queued before the devices start
    // and each device stops after two messages, so only A and B interleave.
    model(|| {
        let (mem_a, layout_a) = region(2, 1, 1);
        let (mem_b, layout_b) = region(1, 2, 1);
        let link_layout = LinkLayout::new(1, std::mem::size_of::<Msg>()).unwrap();
        let link = LoomMemory::link(&link_layout);
        link_layout.init(&link).unwrap();
        let mut ctl_a = HostControl::new(mem_a.clone(), layout_a);
        let mut ctl_b = HostControl::new(mem_b.clone(), layout_b);
        ctl_a.write_initial_state(&Tally { count: 0, sum: 0 });
        ctl_b.write_initial_state(&Tally { count: 0, sum: 0 });
        let mut tx = Producer::<_, Msg>::attach(mem_a.clone(), layout_a.input_ring()).unwrap();
        let mut rx = Consumer::<_, Msg>::attach(mem_b.clone(), layout_b.output_ring()).unwrap();
        ctl_a.command(Lifecycle::Active);
        ctl_b.command(Lifecycle::Active);
        assert_eq!(tx.push_slice(&[Msg { v: 1 }, Msg { v: 2 }]).unwrap(), 2);
        let (ma, la) = (mem_a.clone(), link.clone());
        let a = thread::spawn(move || run_until(DeviceSide::attach(ma, None, Some(la)).unwrap(), 2));
        let (mb, lb) = (mem_b.clone(), link.clone());
        let b = thread::spawn(move || run_until(DeviceSide::attach(mb, Some(lb), None).unwrap(), 2));
        assert_eq!(a.join().unwrap(), 2);
        assert_eq!(b.join().unwrap(), 2);
        // A: 1 → 11, 2 → 22; B: 11 → 111, 22 → 222.
        let mut out = Vec::new();
        assert_eq!(rx.pop_into(&mut out, 2).unwrap(), 2);
        assert_eq!((out[0].v, out[1].v), (111, 222));
    });
}
