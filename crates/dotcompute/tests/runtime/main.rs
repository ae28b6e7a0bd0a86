//! Integration tests of the ring-kernel runtime (one binary, one module per topic).

mod calls;
mod common;
mod failure;
mod lifecycle;
mod messaging;
mod plain_threads;
mod receipts;
mod refusals;
mod registry;
mod telemetry;
mod thread_mode;
