//! # dotcompute
//!
//! Ring kernels: persistent actors that are launched once, then activated,
//! deactivated and terminated, and that exchange typed messages through
//! bounded, prioritised queues.
//!
//! The crate is organised one concept per module:
//! - [`message`]: the [`Message`] trait, headers, priorities, and the wire [`codec`].
//! - [`queue`]: [`MessageQueue`], the bounded MPMC queue with priority bands and backpressure.

// Lets the derive macros' `::dotcompute::...` paths resolve inside this crate too.
extern crate self as dotcompute;

pub mod message;
pub mod queue;
pub mod ring;

pub use dotcompute_macros::Message;
pub use message::codec;
pub use message::{Message, MessageHeader, PriorityBand, DEFAULT_PRIORITY};
