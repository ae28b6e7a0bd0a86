//! Floors for the plain-thread tiers, round trip only: what the same
//! exchange costs with no runtime at all.
//!
//! - two bare `SpscRing`s, both sides busy-polling (the spin tier's floor);
//! - two `crossbeam-channel`s with blocking receives (a spin-then-park
//!   channel: the thread tier's floor);
//! - `ipc::ProcessChannel::call` to a child process (the process tier's floor);
//! - the same behind a relay thread, the host talking to the relay through
//!   two `crossbeam-channel`s: the process tier's shape (host → pump thread →
//!   process → pump thread → host) with no runtime, i.e. the floor of any
//!   design that keeps a relay thread between the host and the process.

use std::thread::JoinHandle;

use dotcompute::ipc::{IpcConfig, ProcessChannel, SpawnCommand};
use dotcompute::ring::spsc::{Consumer, Producer, SpscRing};

use crate::harness::{err, Role, SyncPeer, Traffic, R};
use crate::msg::DcPing;

const STOP: u64 = u64::MAX;

fn only_round_trip<T>() -> R<T> {
    Err("baselines measure the round trip only".into())
}

/// The workloads a floor does not run: it is measured on round trips only.
macro_rules! round_trip_only {
    () => {
        fn tell(&mut self, _: u64) -> R<()> {
            only_round_trip()
        }
        fn tell_batch(&mut self, _: u64, _: usize) -> R<()> {
            only_round_trip()
        }
        fn flush(&mut self, _expected: u64) -> R<u64> {
            only_round_trip()
        }
        fn pipelined(&mut self, _: u64) -> R<()> {
            only_round_trip()
        }
    };
}

/// Polls like a spin kernel: spin, then yield (never parks).
fn snooze(spins: &mut u32) {
    if *spins < 2_000 {
        *spins += 1;
        std::hint::spin_loop();
    } else {
        std::thread::yield_now();
    }
}

pub struct RawRings {
    tx: Producer<DcPing>,
    rx: Consumer<DcPing>,
    echo: Option<JoinHandle<()>>,
}

impl SyncPeer for RawRings {
    type Req = DcPing;

    fn start(_role: Role) -> R<Self> {
        let (tx, mut req_rx) = SpscRing::<DcPing>::new(1024).map_err(err)?;
        let (mut rep_tx, rx) = SpscRing::<DcPing>::new(1024).map_err(err)?;
        let echo = std::thread::spawn(move || {
            let mut spins = 0;
            loop {
                match req_rx.pop() {
                    Ok(m) if m.seq == STOP => return,
                    Ok(m) => {
                        spins = 0;
                        let mut r = m.answer();
                        while let Err(e) = rep_tx.push(r) {
                            r = e.into_inner();
                            std::hint::spin_loop();
                        }
                    }
                    Err(_) => snooze(&mut spins),
                }
            }
        });
        Ok(RawRings { tx, rx, echo: Some(echo) })
    }

    fn request(seq: u64) -> DcPing {
        DcPing::new(seq)
    }

    fn round_trip(&mut self, req: DcPing) -> R<u64> {
        self.tx.push(req).map_err(|_| "ring full")?;
        let mut spins = 0;
        loop {
            match self.rx.pop() {
                Ok(r) => return Ok(r.seq),
                Err(_) => snooze(&mut spins),
            }
        }
    }

    round_trip_only!();

    fn stop(mut self, _t: Traffic) -> R<Option<bool>> {
        let mut stop = DcPing::new(STOP);
        while let Err(e) = self.tx.push(stop) {
            stop = e.into_inner();
            std::thread::yield_now();
        }
        if let Some(echo) = self.echo.take() {
            echo.join().map_err(|_| "echo thread panicked")?;
        }
        Ok(None)
    }
}

pub struct Crossbeam {
    tx: crossbeam_channel::Sender<DcPing>,
    rx: crossbeam_channel::Receiver<DcPing>,
    echo: Option<JoinHandle<()>>,
}

impl SyncPeer for Crossbeam {
    type Req = DcPing;

    fn start(_role: Role) -> R<Self> {
        let (tx, req_rx) = crossbeam_channel::bounded::<DcPing>(4096);
        let (rep_tx, rx) = crossbeam_channel::bounded::<DcPing>(4096);
        let echo = std::thread::spawn(move || {
            while let Ok(m) = req_rx.recv() {
                if rep_tx.send(m.answer()).is_err() {
                    return;
                }
            }
        });
        Ok(Crossbeam { tx, rx, echo: Some(echo) })
    }

    fn request(seq: u64) -> DcPing {
        DcPing::new(seq)
    }

    fn round_trip(&mut self, req: DcPing) -> R<u64> {
        self.tx.send(req).map_err(err)?;
        Ok(self.rx.recv().map_err(err)?.seq)
    }

    round_trip_only!();

    fn stop(mut self, _t: Traffic) -> R<Option<bool>> {
        let Crossbeam { tx, rx, echo } = &mut self;
        drop(std::mem::replace(tx, crossbeam_channel::bounded(1).0));
        drop(std::mem::replace(rx, crossbeam_channel::bounded(1).1));
        if let Some(echo) = echo.take() {
            echo.join().map_err(|_| "echo thread panicked")?;
        }
        Ok(None)
    }
}

pub struct IpcChannel(Option<ProcessChannel<DcPing, DcPing>>);

impl SyncPeer for IpcChannel {
    type Req = DcPing;

    fn start(_role: Role) -> R<Self> {
        let exe = std::env::current_exe().map_err(err)?;
        let chan = ProcessChannel::<DcPing, DcPing>::spawn(
            SpawnCommand::new(exe).args(["__ipc-serve"]),
            &IpcConfig::default(),
        )
        .map_err(err)?;
        Ok(IpcChannel(Some(chan)))
    }

    fn request(seq: u64) -> DcPing {
        DcPing::new(seq)
    }

    fn round_trip(&mut self, req: DcPing) -> R<u64> {
        let chan = self.0.as_mut().ok_or("closed")?;
        Ok(chan.call(&req).map_err(err)?.seq)
    }

    round_trip_only!();

    fn stop(mut self, _t: Traffic) -> R<Option<bool>> {
        if let Some(chan) = self.0.take() {
            let (exit, _) = chan.terminate(true);
            if !exit.clean {
                return Err(format!("the serving process did not exit cleanly: {exit:?}"));
            }
        }
        Ok(None)
    }
}

pub struct IpcRelay {
    tx: Option<crossbeam_channel::Sender<DcPing>>,
    rx: crossbeam_channel::Receiver<DcPing>,
    relay: Option<JoinHandle<Result<(), String>>>,
}

impl SyncPeer for IpcRelay {
    type Req = DcPing;

    fn start(_role: Role) -> R<Self> {
        let exe = std::env::current_exe().map_err(err)?;
        let mut chan = ProcessChannel::<DcPing, DcPing>::spawn(
            SpawnCommand::new(exe).args(["__ipc-serve"]),
            &IpcConfig::default(),
        )
        .map_err(err)?;
        let (tx, req_rx) = crossbeam_channel::bounded::<DcPing>(4096);
        let (rep_tx, rx) = crossbeam_channel::bounded::<DcPing>(4096);
        let relay = std::thread::spawn(move || {
            while let Ok(m) = req_rx.recv() {
                let reply = chan.call(&m).map_err(err)?;
                if rep_tx.send(reply).is_err() {
                    break;
                }
            }
            let (exit, _) = chan.terminate(true);
            if exit.clean {
                Ok(())
            } else {
                Err(format!("the serving process did not exit cleanly: {exit:?}"))
            }
        });
        Ok(IpcRelay {
            tx: Some(tx),
            rx,
            relay: Some(relay),
        })
    }

    fn request(seq: u64) -> DcPing {
        DcPing::new(seq)
    }

    fn round_trip(&mut self, req: DcPing) -> R<u64> {
        self.tx.as_ref().ok_or("closed")?.send(req).map_err(err)?;
        Ok(self.rx.recv().map_err(err)?.seq)
    }

    round_trip_only!();

    fn stop(mut self, _t: Traffic) -> R<Option<bool>> {
        drop(self.tx.take());
        if let Some(relay) = self.relay.take() {
            relay.join().map_err(|_| "relay thread panicked")??;
        }
        Ok(None)
    }
}
