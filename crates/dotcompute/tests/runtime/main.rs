//! Integration tests of the ring-kernel runtime (one binary, one module per topic).

mod common;
mod failure;
mod lifecycle;
mod messaging;
mod receipts;
mod registry;
mod telemetry;
mod thread_mode;
