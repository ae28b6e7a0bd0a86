//! The peers: a hand-written tokio mpsc actor, actix 0.13, kameo 0.22,
//! ractor 0.16 and xtra 0.6, each used the way its documentation shows.
//!
//! - request/reply: the framework's ask (`Addr::send`, `ask`, `call`,
//!   `Address::send`); the tokio actor has an input and an output channel,
//!   as a dotcompute kernel has;
//! - one-way: the framework's tell (`do_send`, `tell`, `cast`,
//!   `send(..).detach()`);
//! - batched: one message carrying a `Vec` of `batch` items (what a user of
//!   these frameworks does to batch);
//! - pipelined echo: `window` asks in flight (`FuturesOrdered`), the tokio
//!   actor a sender task and a receiver task.
//!
//! Mailboxes are bounded at 4096 where the framework bounds them (the size
//! of dotcompute's default queues); ractor's are unbounded.

use futures::stream::{FuturesOrdered, StreamExt};
use tokio::sync::mpsc;

use crate::harness::{err, AsyncPeer, Role, Traffic, R};
use crate::msg::{Ping, Pong};

const MAILBOX: usize = 4096;

/// Drives `n` asks with at most `window` in flight, checking reply order.
async fn windowed<F, Fut>(n: u64, window: usize, mut ask: F) -> R<()>
where
    F: FnMut(u64) -> Fut,
    Fut: std::future::Future<Output = R<u64>>,
{
    let mut inflight = FuturesOrdered::new();
    let mut next = 0u64;
    let mut done = 0u64;
    while done < n {
        while next < n && inflight.len() < window {
            inflight.push_back(ask(next));
            next += 1;
        }
        match inflight.next().await {
            Some(r) => {
                let seq = r?;
                if seq != done {
                    return Err(format!("reply {seq} out of order at {done}"));
                }
                done += 1;
            }
            None => return Err("no reply".into()),
        }
    }
    Ok(())
}

// ---- hand-written tokio mpsc actor ----------------------------------------

enum TokioReq {
    Echo(Ping),
    Tell(Ping),
    Batch(Vec<Ping>),
    Flush,
}

pub struct TokioActor {
    tx: mpsc::Sender<TokioReq>,
    rx: mpsc::Receiver<Pong>,
    task: tokio::task::JoinHandle<()>,
}

impl AsyncPeer for TokioActor {
    type Req = Ping;

    async fn start(_role: Role) -> R<Self> {
        let (tx, mut inbox) = mpsc::channel::<TokioReq>(MAILBOX);
        let (out, rx) = mpsc::channel::<Pong>(MAILBOX);
        let task = tokio::spawn(async move {
            let mut count = 0u64;
            while let Some(req) = inbox.recv().await {
                let reply = match req {
                    TokioReq::Echo(p) => p.answer(),
                    TokioReq::Tell(p) => {
                        std::hint::black_box(p);
                        count += 1;
                        continue;
                    }
                    TokioReq::Batch(v) => {
                        count += std::hint::black_box(v).len() as u64;
                        continue;
                    }
                    TokioReq::Flush => Pong {
                        seq: count,
                        payload: [0; 64],
                    },
                };
                if out.send(reply).await.is_err() {
                    return;
                }
            }
        });
        Ok(TokioActor { tx, rx, task })
    }

    fn request(seq: u64) -> Ping {
        Ping::new(seq)
    }

    async fn round_trip(&mut self, req: Ping) -> R<u64> {
        self.tx.send(TokioReq::Echo(req)).await.map_err(err)?;
        Ok(self.rx.recv().await.ok_or("actor gone")?.seq)
    }

    async fn tell(&mut self, seq: u64) -> R<()> {
        self.tx.send(TokioReq::Tell(Ping::new(seq))).await.map_err(err)
    }

    async fn tell_batch(&mut self, first: u64, n: usize) -> R<()> {
        let v = (first..first + n as u64).map(Ping::new).collect();
        self.tx.send(TokioReq::Batch(v)).await.map_err(err)
    }

    async fn flush(&mut self, _expected: u64) -> R<u64> {
        self.tx.send(TokioReq::Flush).await.map_err(err)?;
        Ok(self.rx.recv().await.ok_or("actor gone")?.seq)
    }

    async fn pipelined(&mut self, n: u64, _window: usize) -> R<()> {
        let tx = self.tx.clone();
        let sender = tokio::spawn(async move {
            for i in 0..n {
                tx.send(TokioReq::Echo(Ping::new(i))).await.map_err(err)?;
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

// ---- kameo ------------------------------------------------------------------

mod kameo_peer {
    use kameo::actor::{ActorRef, Spawn};
    use kameo::message::{Context, Message};
    use kameo::{Actor, Reply};

    use super::*;

    #[derive(Actor, Default)]
    pub struct Echo {
        count: u64,
    }

    #[derive(Reply)]
    pub struct KPong(pub Pong);

    pub struct Tell(pub Ping);
    pub struct Batch(pub Vec<Ping>);
    pub struct Flush;

    impl Message<Ping> for Echo {
        type Reply = KPong;
        async fn handle(&mut self, msg: Ping, _ctx: &mut Context<Self, Self::Reply>) -> KPong {
            KPong(msg.answer())
        }
    }

    impl Message<Tell> for Echo {
        type Reply = ();
        async fn handle(&mut self, msg: Tell, _ctx: &mut Context<Self, Self::Reply>) {
            std::hint::black_box(msg.0);
            self.count += 1;
        }
    }

    impl Message<Batch> for Echo {
        type Reply = ();
        async fn handle(&mut self, msg: Batch, _ctx: &mut Context<Self, Self::Reply>) {
            self.count += std::hint::black_box(msg.0).len() as u64;
        }
    }

    impl Message<Flush> for Echo {
        type Reply = u64;
        async fn handle(&mut self, _msg: Flush, _ctx: &mut Context<Self, Self::Reply>) -> u64 {
            self.count
        }
    }

    pub struct Kameo(ActorRef<Echo>);

    impl AsyncPeer for Kameo {
        type Req = Ping;

        async fn start(_role: Role) -> R<Self> {
            Ok(Kameo(Echo::spawn_with_mailbox(
                Echo::default(),
                kameo::mailbox::bounded(MAILBOX),
            )))
        }

        fn request(seq: u64) -> Ping {
            Ping::new(seq)
        }

        async fn round_trip(&mut self, req: Ping) -> R<u64> {
            Ok(self.0.ask(req).await.map_err(err)?.0.seq)
        }

        async fn tell(&mut self, seq: u64) -> R<()> {
            self.0.tell(Tell(Ping::new(seq))).await.map_err(err)
        }

        async fn tell_batch(&mut self, first: u64, n: usize) -> R<()> {
            let v = (first..first + n as u64).map(Ping::new).collect();
            self.0.tell(Batch(v)).await.map_err(err)
        }

        async fn flush(&mut self, _expected: u64) -> R<u64> {
            self.0.ask(Flush).await.map_err(err)
        }

        async fn pipelined(&mut self, n: u64, window: usize) -> R<()> {
            let actor = &self.0;
            windowed(n, window, |i| async move { Ok(actor.ask(Ping::new(i)).await.map_err(err)?.0.seq) }).await
        }

        async fn stop(self, _t: Traffic) -> R<Option<bool>> {
            self.0.stop_gracefully().await.map_err(err)?;
            self.0.wait_for_shutdown().await;
            Ok(None)
        }
    }
}
pub use kameo_peer::Kameo;

// ---- ractor -----------------------------------------------------------------

mod ractor_peer {
    use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};

    use super::*;

    pub enum Msg {
        Echo(Ping, RpcReplyPort<Pong>),
        Tell(Ping),
        Batch(Vec<Ping>),
        Flush(RpcReplyPort<u64>),
    }

    pub struct Echo;

    impl Actor for Echo {
        type Msg = Msg;
        type State = u64;
        type Arguments = ();

        async fn pre_start(&self, _me: ActorRef<Msg>, _args: ()) -> Result<u64, ActorProcessingErr> {
            Ok(0)
        }

        async fn handle(&self, _me: ActorRef<Msg>, msg: Msg, count: &mut u64) -> Result<(), ActorProcessingErr> {
            match msg {
                Msg::Echo(p, reply) => {
                    let _ = reply.send(p.answer());
                }
                Msg::Tell(p) => {
                    std::hint::black_box(p);
                    *count += 1;
                }
                Msg::Batch(v) => *count += std::hint::black_box(v).len() as u64,
                Msg::Flush(reply) => {
                    let _ = reply.send(*count);
                }
            }
            Ok(())
        }
    }

    pub struct Ractor {
        actor: ActorRef<Msg>,
        handle: tokio::task::JoinHandle<()>,
    }

    fn value<T>(r: ractor::rpc::CallResult<T>) -> R<T> {
        match r {
            ractor::rpc::CallResult::Success(v) => Ok(v),
            _ => Err("ractor call failed".into()),
        }
    }

    impl AsyncPeer for Ractor {
        type Req = Ping;

        async fn start(_role: Role) -> R<Self> {
            let (actor, handle) = Actor::spawn(None, Echo, ()).await.map_err(err)?;
            Ok(Ractor { actor, handle })
        }

        fn request(seq: u64) -> Ping {
            Ping::new(seq)
        }

        async fn round_trip(&mut self, req: Ping) -> R<u64> {
            let r = self.actor.call(|tx| Msg::Echo(req, tx), None).await.map_err(err)?;
            Ok(value(r)?.seq)
        }

        async fn tell(&mut self, seq: u64) -> R<()> {
            self.actor.cast(Msg::Tell(Ping::new(seq))).map_err(err)
        }

        async fn tell_batch(&mut self, first: u64, n: usize) -> R<()> {
            let v = (first..first + n as u64).map(Ping::new).collect();
            self.actor.cast(Msg::Batch(v)).map_err(err)
        }

        async fn flush(&mut self, _expected: u64) -> R<u64> {
            value(self.actor.call(Msg::Flush, None).await.map_err(err)?)
        }

        async fn pipelined(&mut self, n: u64, window: usize) -> R<()> {
            let actor = &self.actor;
            windowed(n, window, |i| async move {
                let r = actor.call(|tx| Msg::Echo(Ping::new(i), tx), None).await.map_err(err)?;
                Ok(value(r)?.seq)
            })
            .await
        }

        async fn stop(self, _t: Traffic) -> R<Option<bool>> {
            self.actor.stop(None);
            self.handle.await.map_err(err)?;
            Ok(None)
        }
    }
}
pub use ractor_peer::Ractor;

// ---- xtra -------------------------------------------------------------------

mod xtra_peer {
    use xtra::{Actor, Address, Context, Handler, Mailbox};

    use super::*;

    #[derive(Default)]
    pub struct Echo {
        count: u64,
    }

    impl Actor for Echo {
        type Stop = ();
        async fn stopped(self) {}
    }

    pub struct Tell(pub Ping);
    pub struct Batch(pub Vec<Ping>);
    pub struct Flush;

    impl Handler<Ping> for Echo {
        type Return = Pong;
        async fn handle(&mut self, msg: Ping, _ctx: &mut Context<Self>) -> Pong {
            msg.answer()
        }
    }

    impl Handler<Tell> for Echo {
        type Return = ();
        async fn handle(&mut self, msg: Tell, _ctx: &mut Context<Self>) {
            std::hint::black_box(msg.0);
            self.count += 1;
        }
    }

    impl Handler<Batch> for Echo {
        type Return = ();
        async fn handle(&mut self, msg: Batch, _ctx: &mut Context<Self>) {
            self.count += std::hint::black_box(msg.0).len() as u64;
        }
    }

    impl Handler<Flush> for Echo {
        type Return = u64;
        async fn handle(&mut self, _msg: Flush, _ctx: &mut Context<Self>) -> u64 {
            self.count
        }
    }

    pub struct Xtra(Address<Echo>);

    impl AsyncPeer for Xtra {
        type Req = Ping;

        async fn start(_role: Role) -> R<Self> {
            Ok(Xtra(xtra::spawn_tokio(Echo::default(), Mailbox::bounded(MAILBOX))))
        }

        fn request(seq: u64) -> Ping {
            Ping::new(seq)
        }

        async fn round_trip(&mut self, req: Ping) -> R<u64> {
            Ok(self.0.send(req).await.map_err(err)?.seq)
        }

        async fn tell(&mut self, seq: u64) -> R<()> {
            self.0.send(Tell(Ping::new(seq))).detach().await.map(drop).map_err(err)
        }

        async fn tell_batch(&mut self, first: u64, n: usize) -> R<()> {
            let v = (first..first + n as u64).map(Ping::new).collect();
            self.0.send(Batch(v)).detach().await.map(drop).map_err(err)
        }

        async fn flush(&mut self, expected: u64) -> R<u64> {
            // xtra's mailbox is a priority heap, not FIFO among equal
            // priorities: the flush can overtake the messages before it.
            loop {
                let n = self.0.send(Flush).await.map_err(err)?;
                if n >= expected {
                    return Ok(n);
                }
                tokio::task::yield_now().await;
            }
        }

        async fn pipelined(&mut self, n: u64, window: usize) -> R<()> {
            let addr = &self.0;
            windowed(n, window, |i| async move { Ok(addr.send(Ping::new(i)).await.map_err(err)?.seq) }).await
        }

        async fn stop(self, _t: Traffic) -> R<Option<bool>> {
            drop(self.0);
            Ok(None)
        }
    }
}
pub use xtra_peer::Xtra;

// ---- actix ------------------------------------------------------------------

mod actix_peer {
    use actix::prelude::*;

    use super::*;
    use crate::harness::{run_async, Outcome, Params, Workload};

    #[derive(Default)]
    pub struct Echo {
        count: u64,
    }

    impl Actor for Echo {
        type Context = Context<Self>;
        fn started(&mut self, ctx: &mut Self::Context) {
            ctx.set_mailbox_capacity(MAILBOX);
        }
    }

    pub struct APing(pub Ping);
    impl actix::Message for APing {
        type Result = APong;
    }
    #[derive(MessageResponse)]
    pub struct APong(pub Pong);

    pub struct Tell(pub Ping);
    impl actix::Message for Tell {
        type Result = ();
    }
    pub struct Batch(pub Vec<Ping>);
    impl actix::Message for Batch {
        type Result = ();
    }
    pub struct Flush;
    impl actix::Message for Flush {
        type Result = u64;
    }

    impl Handler<APing> for Echo {
        type Result = APong;
        fn handle(&mut self, msg: APing, _ctx: &mut Context<Self>) -> APong {
            APong(msg.0.answer())
        }
    }

    impl Handler<Tell> for Echo {
        type Result = ();
        fn handle(&mut self, msg: Tell, _ctx: &mut Context<Self>) {
            std::hint::black_box(msg.0);
            self.count += 1;
        }
    }

    impl Handler<Batch> for Echo {
        type Result = ();
        fn handle(&mut self, msg: Batch, _ctx: &mut Context<Self>) {
            self.count += std::hint::black_box(msg.0).len() as u64;
        }
    }

    impl Handler<Flush> for Echo {
        type Result = u64;
        fn handle(&mut self, _msg: Flush, _ctx: &mut Context<Self>) -> u64 {
            self.count
        }
    }

    pub struct Actix(Addr<Echo>);

    impl AsyncPeer for Actix {
        type Req = APing;

        async fn start(_role: Role) -> R<Self> {
            Ok(Actix(Echo::default().start()))
        }

        fn request(seq: u64) -> APing {
            APing(Ping::new(seq))
        }

        async fn round_trip(&mut self, req: APing) -> R<u64> {
            Ok(self.0.send(req).await.map_err(err)?.0.seq)
        }

        async fn tell(&mut self, seq: u64) -> R<()> {
            self.0.do_send(Tell(Ping::new(seq)));
            Ok(())
        }

        async fn tell_batch(&mut self, first: u64, n: usize) -> R<()> {
            let v = (first..first + n as u64).map(Ping::new).collect();
            self.0.do_send(Batch(v));
            Ok(())
        }

        async fn flush(&mut self, _expected: u64) -> R<u64> {
            self.0.send(Flush).await.map_err(err)
        }

        async fn pipelined(&mut self, n: u64, window: usize) -> R<()> {
            let addr = &self.0;
            windowed(n, window, |i| async move { Ok(addr.send(APing(Ping::new(i))).await.map_err(err)?.0.seq) }).await
        }

        async fn stop(self, _t: Traffic) -> R<Option<bool>> {
            drop(self.0);
            Ok(None)
        }
    }

    /// actix runs its own single-threaded system (one arbiter).
    pub fn run(w: Workload, p: &Params) -> R<Outcome> {
        let p = *p;
        let sys = actix::System::new();
        let out = sys.block_on(run_async::<Actix>(w, p));
        drop(sys);
        out
    }
}
pub use actix_peer::run as run_actix;
