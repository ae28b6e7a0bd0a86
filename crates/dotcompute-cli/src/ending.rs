//! How a command ends: its exit code, and what is printed about an error.
//!
//! Exit codes (the same for every command; `--help` lists them):
//!
//! | code | meaning |
//! |---|---|
//! | 0 | success; also when standard output was closed by its reader (`\| head`) |
//! | 1 | a runtime error (unreadable or malformed input, a device failure, a full disk, ...) |
//! | 2 | a usage error: an unknown or malformed option, a value out of range, options that do not go together |
//! | 3 | `pagerank`: the iteration did not converge within `--max-iter` (the ranks are still written) |
//!
//! Invariant: an error is printed once, as `error: ...` followed by the
//! causes that its own text does not already contain, one per line; never as
//! Rust `Debug` text and never as a panic. Commands return a
//! [`BoxError`](crate::BoxError); [`usage`] and [`NotConverged`] mark the two
//! kinds that do not exit with 1.

use std::process::ExitCode;

use crate::BoxError;

/// Exit code of a runtime error.
pub const EXIT_FAILURE: u8 = 1;
/// Exit code of a usage error (as clap's own).
pub const EXIT_USAGE: u8 = 2;
/// Exit code of a PageRank run that did not converge.
pub const EXIT_NOT_CONVERGED: u8 = 3;

/// The exit codes, as `--help` shows them.
pub const EXIT_CODES_HELP: &str =
    "Exit status: 0 success (also when standard output is closed early, as by `| head`), \
1 runtime error, 2 usage error, 3 PageRank did not converge (the results are still written).";

/// A usage error: the command line asks for something impossible (exit 2).
#[derive(Debug)]
pub struct UsageError(pub String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// A usage error with this message, as a [`BoxError`].
pub fn usage(message: impl Into<String>) -> BoxError {
    Box::new(UsageError(message.into()))
}

/// The iteration stopped at its limit without converging (exit 3).
#[derive(Debug)]
pub struct NotConverged {
    /// Iterations performed.
    pub iterations: u32,
    /// The last residual.
    pub residual: f64,
    /// The tolerance asked for.
    pub tolerance: f64,
}

impl std::fmt::Display for NotConverged {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "not converged: residual {:.3e} after {} iterations is above the tolerance {:e} (raise --max-iter or --tol)",
            self.residual, self.iterations, self.tolerance
        )
    }
}

impl std::error::Error for NotConverged {}

/// Whether `e` (or a cause of it) is a usage error: ours, or a library
/// option refused for being out of range (the options come from the
/// command line).
fn is_usage(e: &(dyn std::error::Error + 'static)) -> bool {
    use dotcompute_workloads::anomaly::AnomalyError;
    use dotcompute_workloads::graph::GraphError;
    use dotcompute_workloads::pagerank::PagerankError;
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if err.is::<UsageError>()
            || matches!(
                err.downcast_ref::<AnomalyError>(),
                Some(AnomalyError::InvalidOption { .. })
            )
            || matches!(
                err.downcast_ref::<PagerankError>(),
                Some(PagerankError::InvalidOption { .. })
            )
            || matches!(
                err.downcast_ref::<GraphError>(),
                Some(GraphError::InvalidParameter { .. })
            )
        {
            return true;
        }
        cur = err.source();
    }
    false
}

/// The lines `error: ...` and `  caused by: ...` for `e`, leaving out a
/// cause whose text the lines before already contain (an error that says
/// "cannot read x: permission denied" is not followed by "caused by:
/// permission denied").
pub fn error_lines(e: &(dyn std::error::Error + 'static)) -> Vec<String> {
    let mut shown = e.to_string();
    let mut lines = vec![format!("error: {shown}")];
    let mut cause = e.source();
    while let Some(c) = cause {
        let text = c.to_string();
        if !text.is_empty() && !shown.contains(&text) {
            lines.push(format!("  caused by: {text}"));
            shown.push('\n');
            shown.push_str(&text);
        }
        cause = c.source();
    }
    lines
}

/// Ends the process for a command's result: prints the error (if any) on
/// stderr and returns the exit code. A closed standard output is a quiet
/// success; a failed one (a full disk) a runtime error.
pub fn finish(result: Result<(), BoxError>) -> ExitCode {
    let stdout = crate::stdout::finish();
    match (result, stdout) {
        // A reader that stopped early (`| head`) is not an error.
        (_, Err(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        (Err(e), _) if is_broken_pipe(e.as_ref()) => ExitCode::SUCCESS,
        (Ok(()), Ok(())) => ExitCode::SUCCESS,
        (Ok(()), Err(e)) => {
            eprintln!("error: cannot write to standard output: {e}");
            ExitCode::from(EXIT_FAILURE)
        }
        (Err(e), _) => {
            for line in error_lines(e.as_ref()) {
                eprintln!("{line}");
            }
            if e.is::<NotConverged>() {
                ExitCode::from(EXIT_NOT_CONVERGED)
            } else if is_usage(e.as_ref()) {
                eprintln!("\nFor more information, try '--help'.");
                ExitCode::from(EXIT_USAGE)
            } else {
                ExitCode::from(EXIT_FAILURE)
            }
        }
    }
}

/// Whether a cause of `e` is a broken pipe (standard output or another
/// pipe the command wrote to was closed by its reader).
fn is_broken_pipe(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if err
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
        {
            return true;
        }
        cur = err.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Outer(std::io::Error, bool);
    impl std::fmt::Display for Outer {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            if self.1 {
                write!(f, "cannot read x: {}", self.0)
            } else {
                write!(f, "cannot read x")
            }
        }
    }
    impl std::error::Error for Outer {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn each_cause_is_printed_once() {
        let io = || std::io::Error::new(std::io::ErrorKind::NotFound, "no such file");
        assert_eq!(error_lines(&Outer(io(), true)), ["error: cannot read x: no such file"]);
        assert_eq!(
            error_lines(&Outer(io(), false)),
            ["error: cannot read x", "  caused by: no such file"]
        );
    }

    #[test]
    fn usage_errors_are_recognised_through_the_chain() {
        let e = usage("give --input or --generate");
        assert!(is_usage(e.as_ref()));
        let lib: BoxError = Box::new(dotcompute_workloads::pagerank::PagerankError::InvalidOption {
            parameter: "damping",
            value: "2".into(),
            reason: "must be in [0, 1]".into(),
        });
        assert!(is_usage(lib.as_ref()));
        let io: BoxError = Box::new(std::io::Error::other("disk"));
        assert!(!is_usage(io.as_ref()));
        let pipe: BoxError = Box::new(Outer(std::io::Error::from(std::io::ErrorKind::BrokenPipe), true));
        assert!(is_broken_pipe(pipe.as_ref()));
    }
}
