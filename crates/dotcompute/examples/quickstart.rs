//! The quick start of the README, the same program: one ring kernel that
//! sums the values it is sent, one `call`.
//!
//! Run with `cargo run -p dotcompute --example quickstart`; it prints
//! `Result: 6` and exits at once (shutdown wakes the kernel blocked in
//! `receive` instead of waiting out a poll timeout).

use dotcompute::{ring_kernel, Error, KernelContext, Message, MessageHeader, RingKernelRuntime};

#[derive(Debug, Message)]
pub struct ComputeRequest {
    pub values: Vec<f64>,
    pub header: MessageHeader,
}

#[derive(Debug, Message)]
pub struct ComputeResponse {
    pub result: f64,
    pub header: MessageHeader,
}

#[ring_kernel(id = "compute", input = ComputeRequest, output = ComputeResponse)]
async fn compute(mut ctx: KernelContext<ComputeRequest, ComputeResponse>) -> Result<(), Error> {
    loop {
        let msg = ctx.receive().await?; // returns Err(Terminating) on terminate: `?` ends cleanly
        let result = msg.values.iter().sum();
        ctx.send(msg.reply(ComputeResponse {
            result,
            header: MessageHeader::new(),
        }))
        .await?;
    }
}

/// Launches the kernel, makes one call, returns its result.
pub async fn run() -> Result<f64, Error> {
    RingKernelRuntime::scope(|rt| async move {
        rt.launch("compute")?; // phase 1: queues exist
        rt.activate("compute")?; // phase 2: the handler runs
        let req = ComputeRequest {
            values: vec![1.0, 2.0, 3.0],
            header: MessageHeader::new(),
        };
        let resp: ComputeResponse = rt.call("compute", req).await?;
        Ok(resp.result)
    })
    .await // scope shuts the runtime down
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let result = run().await?;
    println!("Result: {result}"); // Result: 6
    Ok(())
}
