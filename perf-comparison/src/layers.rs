//! The async tier taken apart: the hand-written tokio actor again, first
//! carrying dotcompute's messages, then on two of dotcompute's
//! `MessageQueue`s instead of `mpsc` channels. Between the tokio actor, these
//! two and the async tier itself, each step adds one layer, so the
//! difference between neighbours is what that layer costs:
//!
//! 1. `tokio mpsc actor` (peers): 72-byte messages, no identity;
//! 2. `+ dotcompute messages`: the same actor moving `DcPing`s (120 bytes,
//!    a `MessageHeader` minted for every request and every reply);
//! 3. `+ MessageQueue`: the same actor, its mailbox and reply channel two
//!    `MessageQueue`s as a kernel's are made (capacity 4096, `Block`, four
//!    priority bands, exact counts, one wait stamp in 8) — no runtime;
//! 4. the async tier: the runtime around those queues (lifecycle checks,
//!    ports, the handler's context, per-kernel telemetry).
//!
//! Layers, not peers: excluded from the "best peer" of every ratio. They
//! run the round trip, one-way and pipelined echo (a `MessageQueue` has no
//! public batch send; the tier's `send_batch` is the runtime's).

use std::sync::Arc;

use dotcompute::queue::{Backpressure, MessageQueue, QueueConfig};
use tokio::sync::mpsc;

use crate::dc::{answers, flush_answer};
use crate::harness::{err, AsyncPeer, Role, Traffic, R};
use crate::msg::{DcPing, FLUSH};

/// The tokio actor's and the kernel's queue capacity.
const CAPACITY: usize = 4096;

/// The echo's and the sink's answer to `m` after `count` one-way messages,
/// as the tier's kernel answers (`None`: a one-way message, counted).
fn answer(role: Role, m: &DcPing, count: &mut u64) -> Option<DcPing> {
    if role == Role::Echo {
        return Some(m.answer());
    }
    if !answers(role, m) {
        *count += 1;
        return None;
    }
    Some(flush_answer(m, *count))
}

/// Layer 2: the tokio mpsc actor moving dotcompute's messages.
pub struct TokioActorDc {
    tx: mpsc::Sender<DcPing>,
    rx: mpsc::Receiver<DcPing>,
    task: tokio::task::JoinHandle<()>,
}

impl AsyncPeer for TokioActorDc {
    type Req = DcPing;

    async fn start(role: Role) -> R<Self> {
        let (tx, mut inbox) = mpsc::channel::<DcPing>(CAPACITY);
        let (out, rx) = mpsc::channel::<DcPing>(CAPACITY);
        let task = tokio::spawn(async move {
            let mut count = 0u64;
            while let Some(m) = inbox.recv().await {
                if let Some(reply) = answer(role, &m, &mut count) {
                    if out.send(reply).await.is_err() {
                        return;
                    }
                }
            }
        });
        Ok(TokioActorDc { tx, rx, task })
    }

    fn request(seq: u64) -> DcPing {
        DcPing::new(seq)
    }

    async fn round_trip(&mut self, req: DcPing) -> R<u64> {
        self.tx.send(req).await.map_err(err)?;
        Ok(self.rx.recv().await.ok_or("actor gone")?.seq)
    }

    async fn tell(&mut self, seq: u64) -> R<()> {
        self.tx.send(DcPing::new(seq)).await.map_err(err)
    }

    async fn tell_batch(&mut self, _first: u64, _n: usize) -> R<()> {
        Err("layers run no batches".into())
    }

    async fn flush(&mut self, _expected: u64) -> R<u64> {
        self.tx.send(DcPing::new(FLUSH)).await.map_err(err)?;
        Ok(self.rx.recv().await.ok_or("actor gone")?.seq)
    }

    async fn pipelined(&mut self, n: u64, _window: usize) -> R<()> {
        let tx = self.tx.clone();
        let sender = tokio::spawn(async move {
            for i in 0..n {
                tx.send(DcPing::new(i)).await.map_err(err)?;
            }
            Ok::<(), String>(())
        });
        for i in 0..n {
            let r = self.rx.recv().await.ok_or("actor gone")?;
            if r.seq != i {
                return Err(format!("reply {} out of order at {i}", r.seq));
            }
        }
        sender.await.map_err(err)?
    }

    async fn stop(self, _t: Traffic) -> R<Option<bool>> {
        drop(self.tx);
        self.task.await.map_err(err)?;
        Ok(None)
    }
}

/// Layer 3: the same actor on two `MessageQueue`s.
pub struct QueueActor {
    inbox: Arc<MessageQueue<DcPing>>,
    out: Arc<MessageQueue<DcPing>>,
    task: tokio::task::JoinHandle<()>,
}

fn kernel_queue() -> R<Arc<MessageQueue<DcPing>>> {
    let mut config = QueueConfig::new(CAPACITY).with_backpressure(Backpressure::Block);
    config.wait_sample_every = dotcompute::runtime::config::DEFAULT_LATENCY_SAMPLE_EVERY;
    MessageQueue::new(config).map(Arc::new).map_err(err)
}

impl AsyncPeer for QueueActor {
    type Req = DcPing;

    async fn start(role: Role) -> R<Self> {
        let (inbox, out) = (kernel_queue()?, kernel_queue()?);
        let (input, output) = (Arc::clone(&inbox), Arc::clone(&out));
        let task = tokio::spawn(async move {
            let mut count = 0u64;
            while let Ok(m) = input.recv().await {
                if let Some(reply) = answer(role, &m, &mut count) {
                    if output.send(reply).await.is_err() {
                        return;
                    }
                }
            }
        });
        Ok(QueueActor { inbox, out, task })
    }

    fn request(seq: u64) -> DcPing {
        DcPing::new(seq)
    }

    async fn round_trip(&mut self, req: DcPing) -> R<u64> {
        self.inbox.send(req).await.map_err(err)?;
        Ok(self.out.recv().await.map_err(err)?.seq)
    }

    async fn tell(&mut self, seq: u64) -> R<()> {
        self.inbox.send(DcPing::new(seq)).await.map_err(err)
    }

    async fn tell_batch(&mut self, _first: u64, _n: usize) -> R<()> {
        Err("layers run no batches".into())
    }

    async fn flush(&mut self, _expected: u64) -> R<u64> {
        self.inbox.send(DcPing::new(FLUSH)).await.map_err(err)?;
        Ok(self.out.recv().await.map_err(err)?.seq)
    }

    async fn pipelined(&mut self, n: u64, _window: usize) -> R<()> {
        let inbox = Arc::clone(&self.inbox);
        let sender = tokio::spawn(async move {
            for i in 0..n {
                inbox.send(DcPing::new(i)).await.map_err(err)?;
            }
            Ok::<(), String>(())
        });
        for i in 0..n {
            let r = self.out.recv().await.map_err(err)?;
            if r.seq != i {
                return Err(format!("reply {} out of order at {i}", r.seq));
            }
        }
        sender.await.map_err(err)?
    }

    /// Fails the run unless the queues counted exactly the traffic (the
    /// goals' telemetry check is about the tiers, so this reports no row).
    async fn stop(self, t: Traffic) -> R<Option<bool>> {
        self.inbox.close();
        self.task.await.map_err(err)?;
        let (i, o) = (self.inbox.stats(), self.out.stats());
        let exact = i.enqueued == t.requests
            && i.dequeued == t.requests
            && o.enqueued == t.replies
            && o.dequeued == t.replies
            && i.is_consistent()
            && o.is_consistent();
        if exact {
            Ok(None)
        } else {
            Err(format!(
                "queue counts not exact: expected {t:?}, got in {i:?} out {o:?}"
            ))
        }
    }
}
