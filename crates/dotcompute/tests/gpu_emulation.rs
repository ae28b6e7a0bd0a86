//! The GPU ring protocol under CPU emulation: a host thread plays the device
//! over the same memory layout and protocol as the CUDA template. These tests
//! exercise the protocol and the host handle; they say nothing about GPU
//! speed.

use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use dotcompute::gpu::emulator::{EmulatedLinks, EmulatorControl};
use dotcompute::gpu::handlers::{self, Sample, Scaled, Stats, StatsState, WINDOW};
use dotcompute::gpu::protocol::{ControlBlock, DeviceParams, DeviceState, FaultCode, ProtocolError};
use dotcompute::gpu::{GpuError, GpuMessage, GpuPipeline, GpuRing, GpuRingOptions, NoState, RingPhase};

const LONG: Duration = Duration::from_secs(10);

fn sample(seq: u64) -> Sample {
    Sample {
        seq,
        value: (seq % 1000) as f32 * 0.25 - 100.0,
        channel: (seq % 7) as u32,
    }
}

fn expected_scaled(s: &Sample) -> Scaled {
    Scaled {
        seq: s.seq,
        channel: s.channel,
        value: s.value.mul_add(2.0, 1.0),
        squared: s.value * s.value,
        reserved: 0,
    }
}

fn quick_options() -> GpuRingOptions {
    GpuRingOptions {
        heartbeat_timeout: Duration::from_millis(300),
        terminate_timeout: Duration::from_millis(500),
        ..GpuRingOptions::default()
    }
}

/// Sends `n` samples and receives `n` replies, pipelined; checks every reply.
fn pump(ring: &mut GpuRing<Sample, Scaled>, n: u64) {
    let mut next_send = 0u64;
    let mut next_recv = 0u64;
    let mut batch = Vec::with_capacity(256);
    let mut replies = Vec::with_capacity(256);
    let deadline = Instant::now() + Duration::from_secs(60);
    while next_recv < n {
        if next_send < n {
            batch.clear();
            batch.extend((next_send..n.min(next_send + 256)).map(sample));
            next_send += ring.send_slice(&batch).unwrap() as u64;
        }
        replies.clear();
        let got = ring.receive_into(&mut replies, 256).unwrap();
        for r in &replies {
            assert_eq!(*r, expected_scaled(&sample(next_recv)), "reply {next_recv}");
            next_recv += 1;
        }
        if got == 0 {
            ring.check_health().unwrap();
            assert!(Instant::now() < deadline, "stuck at {next_recv}/{n}");
            std::thread::yield_now();
        }
    }
}

#[test]
fn round_trip_of_100k_messages_checks_every_reply() {
    let mut ring =
        GpuRing::<Sample, Scaled>::emulated(handlers::transform, NoState::default(), GpuRingOptions::default())
            .unwrap();
    assert!(ring.is_emulation());
    assert!(ring.device_description().contains("emulation"));
    ring.activate().unwrap();
    let n = 100_000;
    let start = Instant::now();
    pump(&mut ring, n);
    let elapsed = start.elapsed();
    let summary = ring.terminate(LONG).unwrap();
    let c = summary.counters;
    assert_eq!(c.processed, n);
    assert_eq!((c.errors, c.fault, c.state), (0, 0, DeviceState::Exited));
    assert!(c.batches >= 1 && c.batches <= n);
    assert_eq!((summary.unprocessed, summary.unread_replies), (0, 0));
    assert_eq!(ring.in_flight(), 0);
    println!(
        "emulation round trip: {n} messages in {:.1} ms = {:.0} msg/s, {} batches (mean {:.1} per batch), {} idle polls",
        elapsed.as_secs_f64() * 1e3,
        n as f64 / elapsed.as_secs_f64(),
        c.batches,
        n as f64 / c.batches as f64,
        c.idle_polls
    );
}

#[test]
fn small_rings_and_batches_of_one_still_deliver_everything() {
    let options = GpuRingOptions {
        input_capacity: 2,
        output_capacity: 1,
        device: DeviceParams {
            batch_size: 1,
            ..DeviceParams::default()
        },
        ..GpuRingOptions::default()
    };
    let mut ring = GpuRing::<Sample, Scaled>::emulated(handlers::transform, NoState::default(), options).unwrap();
    ring.activate().unwrap();
    pump(&mut ring, 5_000);
    let c = ring.terminate(LONG).unwrap().counters;
    assert_eq!(
        (c.processed, c.batches),
        (5_000, 5_000),
        "a batch size of 1 means one message per batch"
    );
}

/// The running statistics of `values`, computed directly (two-pass).
fn reference_stats(values: &[f32]) -> (f64, f64, f32, f32, f32) {
    let n = values.len() as f64;
    let mean = values.iter().map(|&v| f64::from(v)).sum::<f64>() / n;
    let var = if values.len() > 1 {
        values.iter().map(|&v| (f64::from(v) - mean).powi(2)).sum::<f64>() / (n - 1.0)
    } else {
        0.0
    };
    let window = &values[values.len().saturating_sub(WINDOW)..];
    let wmean = window.iter().sum::<f32>() / window.len() as f32;
    let wmin = window.iter().copied().fold(f32::INFINITY, f32::min);
    let wmax = window.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    (mean, var, wmean, wmin, wmax)
}

#[test]
fn state_persists_across_messages_and_batches() {
    let mut ring =
        GpuRing::<Sample, Stats>::emulated(handlers::running_stats, StatsState::zeroed(), GpuRingOptions::default())
            .unwrap();
    ring.activate().unwrap();
    let values: Vec<f32> = (0..2_000u32).map(|i| ((i * 37) % 101) as f32 - 50.0).collect();
    let samples: Vec<Sample> = values
        .iter()
        .enumerate()
        .map(|(i, &value)| Sample {
            seq: i as u64,
            value,
            channel: 0,
        })
        .collect();
    let mut sent = 0;
    let mut replies = Vec::new();
    while replies.len() < samples.len() {
        sent += ring.send_slice(&samples[sent..]).unwrap();
        if ring.receive_into(&mut replies, 512).unwrap() == 0 {
            ring.check_health().unwrap();
            std::thread::yield_now();
        }
    }
    for (i, r) in replies.iter().enumerate() {
        let (mean, var, wmean, wmin, wmax) = reference_stats(&values[..=i]);
        assert_eq!((r.seq, r.count), (i as u64, i as u64 + 1));
        assert!(
            (r.mean - mean).abs() <= 1e-9 * (1.0 + mean.abs()),
            "mean at {i}: {} vs {mean}",
            r.mean
        );
        assert!(
            (r.variance - var).abs() <= 1e-9 * (1.0 + var),
            "variance at {i}: {} vs {var}",
            r.variance
        );
        assert!((r.window_mean - wmean).abs() <= 1e-4, "window mean at {i}");
        assert_eq!((r.window_min, r.window_max), (wmin, wmax), "window extremes at {i}");
        assert_eq!(r.window_len as usize, (i + 1).min(WINDOW));
    }
    // The device's state, written back when it parks, is the last step's.
    assert_eq!(
        ring.read_state::<StatsState>().unwrap(),
        None,
        "not readable while active"
    );
    ring.deactivate().unwrap();
    ring.wait_acknowledged(LONG).unwrap();
    let state: StatsState = ring.read_state().unwrap().expect("parked");
    assert_eq!(state.count, values.len() as u64);
    assert_eq!(state.mean, replies.last().unwrap().mean);
    // And it goes on from there after reactivation.
    ring.activate().unwrap();
    ring.send(
        &Sample {
            seq: 9_999,
            value: 1.0,
            channel: 0,
        },
        LONG,
    )
    .unwrap();
    assert_eq!(ring.receive(LONG).unwrap().count, values.len() as u64 + 1);
    ring.terminate(LONG).unwrap();
    let final_state: StatsState = ring.read_state().unwrap().expect("exited");
    assert_eq!(final_state.count, values.len() as u64 + 1);
}

#[test]
fn deactivate_parks_with_messages_in_flight_and_reactivate_resumes() {
    // A slow handler keeps messages on the device when it is deactivated.
    let mut ring = GpuRing::<Sample, Scaled>::emulated(
        |i: &Sample, o: &mut Scaled, s: &mut NoState| {
            std::thread::sleep(Duration::from_micros(20));
            handlers::transform(i, o, s)
        },
        NoState::default(),
        GpuRingOptions::default(),
    )
    .unwrap();
    ring.activate().unwrap();
    let first: Vec<Sample> = (0..1000).map(sample).collect();
    assert_eq!(ring.send_slice(&first).unwrap(), 1000);
    std::thread::sleep(Duration::from_millis(2));
    ring.deactivate().unwrap();
    let parked = ring.wait_acknowledged(LONG).unwrap();
    assert_eq!(parked.state, DeviceState::Parked);
    assert!(parked.processed < 1000, "deactivated while messages were in flight");
    // Parked: nothing more is handled, but the heartbeat goes on.
    std::thread::sleep(Duration::from_millis(50));
    let later = ring.check_health().unwrap();
    assert_eq!(later.processed, parked.processed);
    assert!(later.heartbeat > parked.heartbeat, "a parked device still beats");
    let mut replies = Vec::new();
    ring.receive_into(&mut replies, 2000).unwrap();
    assert_eq!(
        replies.len() as u64,
        parked.processed,
        "the replies of the finished batches are there"
    );
    // Sending while deactivated queues on the ring.
    let second: Vec<Sample> = (1000..1010).map(sample).collect();
    assert_eq!(ring.send_slice(&second).unwrap(), 10);
    ring.activate().unwrap();
    let deadline = Instant::now() + LONG;
    while replies.len() < 1010 {
        if ring.receive_into(&mut replies, 2000).unwrap() == 0 {
            ring.check_health().unwrap();
            assert!(Instant::now() < deadline);
            std::thread::sleep(Duration::from_micros(100));
        }
    }
    for (i, r) in replies.iter().enumerate() {
        assert_eq!(*r, expected_scaled(&sample(i as u64)));
    }
    ring.terminate(LONG).unwrap();
}

#[test]
fn terminate_with_messages_in_flight_is_bounded_and_accounts_for_every_message() {
    let mut ring = GpuRing::<Sample, Scaled>::emulated(
        |i: &Sample, o: &mut Scaled, s: &mut NoState| {
            std::thread::sleep(Duration::from_micros(50));
            handlers::transform(i, o, s)
        },
        NoState::default(),
        GpuRingOptions::default(),
    )
    .unwrap();
    ring.activate().unwrap();
    let msgs: Vec<Sample> = (0..1000).map(sample).collect();
    assert_eq!(ring.send_slice(&msgs).unwrap(), 1000);
    std::thread::sleep(Duration::from_millis(1));
    let summary = ring.terminate(Duration::from_secs(5)).unwrap();
    assert!(summary.elapsed < Duration::from_secs(5));
    let processed = summary.counters.processed;
    assert!(processed < 1000, "terminated while messages were in flight");
    assert_eq!(processed + summary.unprocessed, 1000);
    assert_eq!(summary.unread_replies, processed);
    assert_eq!(ring.phase(), RingPhase::Terminated);
    // The replies published before the exit are still receivable, and right.
    let mut replies = Vec::new();
    ring.receive_into(&mut replies, 2000).unwrap();
    assert_eq!(replies.len() as u64, processed);
    for (i, r) in replies.iter().enumerate() {
        assert_eq!(*r, expected_scaled(&sample(i as u64)));
    }
    assert!(matches!(
        ring.send_slice(&msgs[..1]),
        Err(GpuError::InvalidPhase { .. })
    ));
}

#[test]
fn a_frozen_device_is_found_by_its_heartbeat_and_terminate_does_not_hang() {
    let control = EmulatorControl::new();
    let mut ring = GpuRing::<Sample, Scaled>::emulated_with(
        handlers::transform,
        NoState::default(),
        quick_options(),
        EmulatedLinks::default(),
        Some(control.clone()),
    )
    .unwrap();
    ring.activate().unwrap();
    ring.send(&sample(1), LONG).unwrap();
    assert_eq!(ring.receive(LONG).unwrap(), expected_scaled(&sample(1)));
    control.freeze();
    let start = Instant::now();
    let err = loop {
        match ring.check_health() {
            Ok(_) => {
                assert!(start.elapsed() < LONG, "a frozen device was never reported");
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(e) => break e,
        }
    };
    assert!(matches!(err, GpuError::HeartbeatStale { .. }), "{err}");
    assert!(
        start.elapsed() >= Duration::from_millis(250),
        "not long before the timeout"
    );
    assert!(err.to_string().contains("hung or dead"));
    assert_eq!(ring.phase(), RingPhase::Failed);
    assert_eq!(ring.send_slice(&[sample(2)]).unwrap_err(), err, "the failure sticks");
    // Terminate waits at most its timeout, whatever the device does.
    let t = Instant::now();
    let e = ring.terminate(Duration::from_millis(200)).unwrap_err();
    assert!(matches!(e, GpuError::TerminateTimeout { .. }), "{e}");
    assert!(t.elapsed() < Duration::from_secs(2));
    control.resume(); // lets the emulator thread see terminate and end
}

#[test]
fn a_device_that_vanishes_is_reported_lost() {
    let control = EmulatorControl::new();
    let mut ring = GpuRing::<Sample, Scaled>::emulated_with(
        handlers::transform,
        NoState::default(),
        quick_options(),
        EmulatedLinks::default(),
        Some(control.clone()),
    )
    .unwrap();
    ring.activate().unwrap();
    control.stop_silently();
    let start = Instant::now();
    let err = loop {
        match ring.check_health() {
            Ok(_) => {
                assert!(start.elapsed() < LONG);
                std::thread::sleep(Duration::from_millis(2));
            }
            Err(e) => break e,
        }
    };
    assert!(matches!(err, GpuError::DeviceLost(_)), "{err}");
}

#[test]
fn handler_errors_and_panics_are_counted_and_faulted() {
    let mut ring =
        GpuRing::<Sample, Scaled>::emulated(handlers::transform, NoState::default(), quick_options()).unwrap();
    ring.activate().unwrap();
    let bad = Sample {
        seq: 3,
        value: f32::NAN,
        channel: 1,
    };
    ring.send(&bad, LONG).unwrap();
    let reply = ring.receive(LONG).unwrap();
    assert_eq!(reply.seq, 3, "the reply is written even on an error");
    let c = ring.check_health().unwrap();
    assert_eq!((c.errors, c.last_error), (1, 1));
    ring.terminate(LONG).unwrap();

    let mut ring = GpuRing::<Sample, Scaled>::emulated(
        |i: &Sample, _: &mut Scaled, _: &mut NoState| -> Result<(), NonZeroU32> {
            assert!(i.seq != 13, "unlucky");
            Ok(())
        },
        NoState::default(),
        // The panic hook runs on the device thread before the fault is
        // published; with RUST_BACKTRACE=1 symbolising a large test binary
        // takes longer than quick_options' 300 ms heartbeat timeout.
        GpuRingOptions {
            heartbeat_timeout: Duration::from_secs(10),
            ..quick_options()
        },
    )
    .unwrap();
    ring.activate().unwrap();
    ring.send(&sample(13), LONG).unwrap();
    let err = ring.receive(LONG).unwrap_err();
    assert_eq!(
        err,
        GpuError::DeviceFault {
            code: FaultCode::HandlerPanicked.word(),
            description: FaultCode::HandlerPanicked.describe().to_string()
        }
    );
}

/// Writes `value` over the word at `offset` of the ring's region, as a buggy
/// or corrupted device (or host) would.
fn corrupt(ring: &GpuRing<Sample, Scaled>, offset: usize, value: u64) {
    let region = ring.region();
    assert!(offset + 8 <= region.len());
    // SAFETY: the word is inside the region, 8-aligned (the base is
    // 128-aligned and the offsets are multiples of 8), and every party
    // accesses it atomically.
    let word = unsafe { AtomicU64::from_ptr(region.base().as_ptr().add(offset).cast::<u64>()) };
    word.store(value, Ordering::Release);
}

#[test]
fn a_corrupt_device_index_is_a_typed_error() {
    // The device→host tail, written by the device, jumps ahead.
    let mut ring =
        GpuRing::<Sample, Scaled>::emulated(handlers::transform, NoState::default(), quick_options()).unwrap();
    ring.activate().unwrap();
    ring.send(&sample(0), LONG).unwrap();
    ring.receive(LONG).unwrap();
    corrupt(&ring, ControlBlock::OUT_TAIL, 1 << 40);
    let err = ring.try_receive().unwrap_err();
    assert_eq!(
        err,
        GpuError::Protocol(ProtocolError::CorruptIndex {
            ring: "device→host",
            index: "tail",
            observed: 1 << 40,
            min: 1,
            max: 1 + 1024
        })
    );
    assert_eq!(ring.phase(), RingPhase::Failed);
    drop(ring);

    // The host→device head, written by the device, runs past the tail.
    let mut ring =
        GpuRing::<Sample, Scaled>::emulated(handlers::transform, NoState::default(), quick_options()).unwrap();
    let full: Vec<Sample> = (0..1024).map(sample).collect();
    assert_eq!(
        ring.send_slice(&full).unwrap(),
        1024,
        "launched, not active: the ring fills"
    );
    corrupt(&ring, ControlBlock::IN_HEAD, 5000);
    let err = ring.send_slice(&[sample(1)]).unwrap_err();
    assert!(
        matches!(
            err,
            GpuError::Protocol(ProtocolError::CorruptIndex {
                index: "head",
                observed: 5000,
                ..
            })
        ),
        "{err}"
    );
    drop(ring);

    // The device distrusts the host too: a host→device tail beyond head +
    // capacity makes it fault instead of reading garbage.
    let mut ring =
        GpuRing::<Sample, Scaled>::emulated(handlers::transform, NoState::default(), quick_options()).unwrap();
    ring.activate().unwrap();
    corrupt(&ring, ControlBlock::IN_TAIL, u64::MAX);
    let err = ring.receive(LONG).unwrap_err();
    assert_eq!(err, GpuError::from(FaultCode::CorruptInputTail));
    // A corrupt status word is refused too.
    let mut ring =
        GpuRing::<Sample, Scaled>::emulated(handlers::transform, NoState::default(), quick_options()).unwrap();
    ring.activate().unwrap();
    ring.wait_acknowledged(LONG).unwrap();
    corrupt(&ring, ControlBlock::DEVICE_STATE, 77);
    let err = ring.counters().unwrap_err();
    assert!(matches!(
        err,
        GpuError::Protocol(ProtocolError::BadWord {
            field: "device_state",
            ..
        })
    ));
}

#[test]
fn two_kernels_linked_by_a_ring_keep_the_pipeline_on_the_device() {
    let mut p = GpuPipeline::<Sample, Scaled, Sample>::emulated(
        handlers::transform,
        NoState::default(),
        |i: &Scaled, o: &mut Sample, _: &mut NoState| {
            *o = Sample {
                seq: i.seq,
                value: i.squared,
                channel: i.channel + 100,
            }
        },
        NoState::default(),
        8,
        GpuRingOptions::default(),
    )
    .unwrap();
    p.activate().unwrap();
    let n = 10_000u64;
    let mut next = 0;
    for seq in 0..n {
        p.send(&sample(seq), LONG).unwrap();
        while next <= seq {
            // Keep at most a few in flight so `send` never waits long.
            if seq - next < 64 {
                break;
            }
            let r = p.receive(LONG).unwrap();
            let s = sample(next);
            assert_eq!((r.seq, r.value, r.channel), (next, s.value * s.value, s.channel + 100));
            next += 1;
        }
    }
    while next < n {
        let r = p.receive(LONG).unwrap();
        assert_eq!(r.seq, next);
        next += 1;
    }
    let (a, b) = p.counters().unwrap();
    assert_eq!((a.processed, b.processed), (n, n));
    p.terminate(LONG).unwrap();
}

#[test]
fn one_message_at_a_time_round_trips() {
    // Ping-pong: each message is sent only after the previous reply came
    // back, so every round trip crosses both rings and both threads.
    let mut ring =
        GpuRing::<Sample, Scaled>::emulated(handlers::transform, NoState::default(), GpuRingOptions::default())
            .unwrap();
    ring.activate().unwrap();
    let n = 20_000u64;
    let mut samples = Vec::with_capacity(n as usize);
    for seq in 0..n {
        let start = Instant::now();
        ring.send(&sample(seq), LONG).unwrap();
        let reply = ring.receive(LONG).unwrap();
        samples.push(start.elapsed());
        assert_eq!(reply, expected_scaled(&sample(seq)));
    }
    let c = ring.terminate(LONG).unwrap().counters;
    assert_eq!(
        (c.processed, c.batches),
        (n, n),
        "one message per batch when they come one at a time"
    );
    samples.sort_unstable();
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q) as usize];
    println!(
        "emulation ping-pong: {n} round trips, p50 {:?}, p99 {:?}, max {:?}",
        at(0.5),
        at(0.99),
        samples[samples.len() - 1]
    );
}
