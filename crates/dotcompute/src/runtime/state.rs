//! The kernel lifecycle as a pure state machine.
//!
//! Invariant: [`KernelState::apply`] is the only place that decides whether an
//! operation is legal in a state; the runtime asks it before acting and never
//! moves a kernel along an edge this table does not contain.
//!
//! ```text
//! Created ─launch→ Launched ─activate→ Active ⇄ Deactivated
//!                      │                 │   (deactivate / reactivate)
//!                      └──── terminate ──┴──→ Terminating → Terminated
//!            any running state ── handler error/panic, no restart left ──→ Failed
//! ```
//!
//! ```
//! use dotcompute::{KernelState, Operation};
//!
//! assert_eq!(KernelState::Launched.apply("k", Operation::Activate), Ok(KernelState::Active));
//! let err = KernelState::Launched.apply("k", Operation::Reactivate).unwrap_err();
//! assert_eq!(err.to_string(), "cannot reactivate kernel 'k' in state Launched");
//! ```

use std::fmt;

use serde::Serialize;

/// Where a kernel is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
pub enum KernelState {
    /// Defined, no resources yet.
    Created,
    /// Queues exist; the handler is not running.
    Launched,
    /// The handler runs and messages are delivered.
    Active,
    /// The handler is parked: no message is delivered, new ones stay queued.
    Deactivated,
    /// Termination is in progress.
    Terminating,
    /// The handler has finished.
    Terminated,
    /// The handler returned an error or panicked and no restart is left.
    Failed,
}

impl KernelState {
    /// All states, for exhaustive tests and tables.
    pub const ALL: [KernelState; 7] = [
        KernelState::Created,
        KernelState::Launched,
        KernelState::Active,
        KernelState::Deactivated,
        KernelState::Terminating,
        KernelState::Terminated,
        KernelState::Failed,
    ];

    /// The state after `operation`, or the error that forbids it.
    ///
    /// `Send` and `Receive` do not change the state. `Receive` is allowed in
    /// `Terminated` and `Failed` so the host can drain replies that were
    /// produced before the end; the runtime then reports why the stream ended.
    pub fn apply(self, kernel: &str, operation: Operation) -> Result<KernelState, KernelStateError> {
        use KernelState::*;
        use Operation::*;
        let next = match (self, operation) {
            (Created, Launch) => Some(Launched),
            (Launched, Activate) => Some(Active),
            (Active, Deactivate) => Some(Deactivated),
            (Deactivated, Reactivate) => Some(Active),
            (Created, Terminate) => Some(Terminated),
            (Launched | Active | Deactivated | Failed, Terminate) => Some(Terminating),
            (Terminated, Terminate) => Some(Terminated),
            (Active | Deactivated, Send) => Some(self),
            (Active | Deactivated | Terminated | Failed, Receive) => Some(self),
            _ => None,
        };
        next.ok_or_else(|| KernelStateError {
            kernel: kernel.to_string(),
            state: self,
            operation,
        })
    }

    /// True while the handler may be running (Active or Deactivated).
    pub const fn is_running(self) -> bool {
        matches!(self, KernelState::Active | KernelState::Deactivated)
    }

    /// True once the kernel can never run again.
    pub const fn is_final(self) -> bool {
        matches!(self, KernelState::Terminated | KernelState::Failed)
    }
}

impl fmt::Display for KernelState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// An operation a host can ask of a kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum Operation {
    /// Allocate queues.
    Launch,
    /// Start the handler.
    Activate,
    /// Pause delivery.
    Deactivate,
    /// Resume delivery.
    Reactivate,
    /// Stop the kernel.
    Terminate,
    /// Send a message to the kernel.
    Send,
    /// Receive a message from the kernel.
    Receive,
}

impl Operation {
    /// All operations, for exhaustive tests and tables.
    pub const ALL: [Operation; 7] = [
        Operation::Launch,
        Operation::Activate,
        Operation::Deactivate,
        Operation::Reactivate,
        Operation::Terminate,
        Operation::Send,
        Operation::Receive,
    ];

    /// Lower-case verb.
    pub const fn verb(self) -> &'static str {
        match self {
            Operation::Launch => "launch",
            Operation::Activate => "activate",
            Operation::Deactivate => "deactivate",
            Operation::Reactivate => "reactivate",
            Operation::Terminate => "terminate",
            Operation::Send => "send to",
            Operation::Receive => "receive from",
        }
    }
}

/// An operation that the kernel's state forbids.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot {} kernel '{kernel}' in state {state}", operation.verb())]
pub struct KernelStateError {
    /// The kernel's id.
    pub kernel: String,
    /// Its state when the operation was asked.
    pub state: KernelState,
    /// The operation.
    pub operation: Operation,
}

#[cfg(test)]
mod tests {
    use super::*;
    use KernelState::*;
    use Operation::*;

    /// The full matrix, written out independently of `apply`'s match.
    fn expected(state: KernelState, op: Operation) -> Option<KernelState> {
        let row: [Option<KernelState>; 7] = match state {
            //        launch          activate      deactivate         reactivate    terminate          send               receive
            Created => [Some(Launched), None, None, None, Some(Terminated), None, None],
            Launched => [None, Some(Active), None, None, Some(Terminating), None, None],
            Active => [
                None,
                None,
                Some(Deactivated),
                None,
                Some(Terminating),
                Some(Active),
                Some(Active),
            ],
            Deactivated => [
                None,
                None,
                None,
                Some(Active),
                Some(Terminating),
                Some(Deactivated),
                Some(Deactivated),
            ],
            Terminating => [None, None, None, None, None, None, None],
            Terminated => [None, None, None, None, Some(Terminated), None, Some(Terminated)],
            Failed => [None, None, None, None, Some(Terminating), None, Some(Failed)],
        };
        let col = Operation::ALL.iter().position(|o| *o == op).unwrap();
        row[col]
    }

    #[test]
    fn full_transition_matrix() {
        let mut legal = 0;
        for state in KernelState::ALL {
            for op in Operation::ALL {
                let got = state.apply("k", op);
                match expected(state, op) {
                    Some(next) => {
                        assert_eq!(got, Ok(next), "{state:?} --{op:?}-->");
                        legal += 1;
                    }
                    None => assert_eq!(
                        got,
                        Err(KernelStateError {
                            kernel: "k".into(),
                            state,
                            operation: op
                        }),
                        "{state:?} --{op:?}--> must be refused"
                    ),
                }
            }
        }
        assert_eq!(legal, 16, "number of legal edges changed");
    }

    #[test]
    fn error_message_names_kernel_state_and_operation() {
        let err = Terminating.apply("worker", Send).unwrap_err();
        assert_eq!(err.to_string(), "cannot send to kernel 'worker' in state Terminating");
    }

    #[test]
    fn running_and_final_predicates() {
        assert!(Active.is_running() && Deactivated.is_running());
        assert!(!Launched.is_running() && !Terminated.is_running());
        assert!(Terminated.is_final() && Failed.is_final());
        assert!(!Terminating.is_final());
    }
}
