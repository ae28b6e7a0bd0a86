//! The quick start: one ring kernel that sums the values it is sent.
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
async fn compute_actor(mut ctx: KernelContext<ComputeRequest, ComputeResponse>) -> Result<(), Error> {
    loop {
        let msg = ctx.receive().await?;
        let result = msg.values.iter().sum();
        ctx.send(msg.reply(ComputeResponse {
            result,
            header: MessageHeader::new(),
        }))
        .await?;
    }
}

/// Launches the kernel, sends one request, returns the result, shuts down.
pub async fn run() -> Result<f64, Error> {
    RingKernelRuntime::scope(|runtime| async move {
        runtime.launch("compute")?;
        runtime.activate("compute")?;
        let request = ComputeRequest {
            values: vec![1.0, 2.0, 3.0],
            header: MessageHeader::new(),
        };
        runtime.send("compute", request).await?;
        let response: ComputeResponse = runtime.receive("compute").await?;
        Ok(response.result)
    })
    .await
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let result = run().await?;
    println!("Result: {result}");
    Ok(())
}
