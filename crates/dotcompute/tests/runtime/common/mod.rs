//! Message types and handlers shared by the runtime tests.
#![allow(dead_code)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use dotcompute::{BlockingContext, Error, KernelContext, Message, MessageHeader};

#[derive(Debug, Clone, PartialEq, Message)]
pub struct Num {
    pub n: i64,
    pub header: MessageHeader,
}

impl Num {
    pub fn new(n: i64) -> Self {
        Num {
            n,
            header: MessageHeader::new(),
        }
    }

    pub fn with_priority(n: i64, p: u8) -> Self {
        Num {
            n,
            header: MessageHeader::with_priority(p),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Message)]
pub struct Text {
    pub s: String,
    pub header: MessageHeader,
}

impl Text {
    pub fn new(s: &str) -> Self {
        Text {
            s: s.to_string(),
            header: MessageHeader::new(),
        }
    }
}

/// Replies to every `Num` with `n * 10`, correlated.
pub async fn times_ten(mut ctx: KernelContext<Num, Num>) -> Result<(), Error> {
    loop {
        let m = ctx.receive().await?;
        let reply = m.reply(Num::new(m.n * 10));
        ctx.send(reply).await?;
    }
}

/// [`times_ten`] for a kernel on its own thread (`Thread` and `Spin` modes).
pub fn blocking_times_ten(mut ctx: BlockingContext<Num, Num>) -> Result<(), Error> {
    loop {
        let m = ctx.receive()?;
        ctx.send(m.reply(Num::new(m.n * 10)))?;
    }
}

/// Counts messages into a shared counter and never replies.
pub fn counting(
    counter: Arc<AtomicUsize>,
) -> impl Fn(KernelContext<Num, Num>) -> futures_like::BoxFut + Send + Sync + 'static {
    move |mut ctx: KernelContext<Num, Num>| {
        let counter = counter.clone();
        Box::pin(async move {
            loop {
                ctx.receive().await?;
                counter.fetch_add(1, Ordering::SeqCst);
            }
        })
    }
}

pub mod futures_like {
    pub type BoxFut = std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), dotcompute::Error>> + Send>>;
}

/// A handler that waits in `receive` until terminated and counts in `ended`
/// when its future is dropped.
pub fn watched(
    ended: Arc<AtomicUsize>,
) -> impl Fn(KernelContext<Num, Num>) -> futures_like::BoxFut + Send + Sync + 'static {
    move |mut ctx: KernelContext<Num, Num>| {
        let guard = DropFlag(ended.clone());
        Box::pin(async move {
            let _guard = guard;
            loop {
                ctx.receive().await?;
            }
        })
    }
}

/// Sets a flag when dropped: shows that a handler's future was dropped.
pub struct DropFlag(pub Arc<AtomicUsize>);

impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}
