//! Progress bars for long runs, shown only when stdout is a terminal.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use dotcompute_workloads::limits::fmt_bytes;
use dotcompute_workloads::progress::{Phase, Progress};
use indicatif::{ProgressBar, ProgressState, ProgressStyle};

use crate::output::fmt_rate;

/// How many messages pass between two progress updates (keeps the bar off
/// the measured path).
pub const UPDATE_EVERY: u64 = 1024;

/// A bar of `len` steps labelled `label`; hidden when stdout is not a
/// terminal (the report is being piped or captured).
pub fn bar(len: u64, label: &str) -> ProgressBar {
    if !std::io::stdout().is_terminal() {
        return ProgressBar::hidden();
    }
    let template = "{prefix:<44} [{bar:30}] {percent:>3}% {rate:>10} eta {eta}";
    let style = ProgressStyle::with_template(template)
        .map(|s| s.progress_chars("=> ").with_key("rate", rate))
        .unwrap_or_else(|_| ProgressStyle::default_bar());
    let bar = ProgressBar::new(len).with_style(style);
    bar.set_prefix(label.to_string());
    bar
}

/// `1.08M/s`: indicatif's own `{per_sec}` prints every decimal.
fn rate(state: &ProgressState, w: &mut dyn std::fmt::Write) {
    let _ = write!(w, "{}/s", fmt_rate(state.per_sec()));
}

/// Shows a PageRank run's [`Progress`] on stderr until dropped: a bar of the
/// bytes read (a spinner with the count for standard input), then the
/// build step, then a bar of iterations with the residual; nothing when
/// stderr is not a terminal. A thread polls the record every 100 ms; the
/// run itself only stores into atomics.
pub struct PagerankWatch {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl PagerankWatch {
    /// Starts showing `progress`.
    pub fn start(progress: Progress) -> PagerankWatch {
        let stop = Arc::new(AtomicBool::new(false));
        if !std::io::stderr().is_terminal() {
            return PagerankWatch { stop, thread: None };
        }
        let flag = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("pagerank-progress".into())
            .spawn(move || show(&progress, &flag))
            .ok();
        PagerankWatch { stop, thread }
    }
}

impl Drop for PagerankWatch {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template)
        .map(|s| s.progress_chars("=> "))
        .unwrap_or_else(|_| ProgressStyle::default_bar())
}

fn show(progress: &Progress, stop: &AtomicBool) {
    let bar = ProgressBar::new(0);
    let mut shown: Option<(Phase, bool)> = None;
    while !stop.load(Ordering::Relaxed) {
        let s = progress.snapshot();
        let key = (s.phase, s.bytes_total.is_some());
        if shown != Some(key) {
            shown = Some(key);
            match key {
                (Phase::Reading, true) => {
                    bar.set_length(s.bytes_total.unwrap_or(0));
                    bar.set_position(s.bytes_read);
                    bar.set_style(style(
                        "reading   [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
                    ));
                }
                (Phase::Solving, _) => {
                    bar.set_length(u64::from(s.max_iterations));
                    bar.set_position(u64::from(s.iteration));
                    bar.set_style(style("solving   [{bar:30}] iteration {pos}/{len} {msg} {elapsed}"));
                }
                _ => bar.set_style(style("{spinner} {msg} {elapsed}")),
            }
            bar.set_message("");
            bar.reset_elapsed();
        }
        match s.phase {
            Phase::Reading => match s.bytes_total {
                Some(total) => {
                    bar.set_length(total);
                    bar.set_position(s.bytes_read);
                }
                None => bar.set_message(format!("reading standard input: {}", fmt_bytes(s.bytes_read))),
            },
            Phase::Solving => {
                bar.set_length(u64::from(s.max_iterations));
                bar.set_position(u64::from(s.iteration));
                if s.residual.is_finite() {
                    bar.set_message(format!("residual {:.3e}", s.residual));
                }
            }
            Phase::Done => break,
            other => bar.set_message(other.to_string()),
        }
        bar.tick();
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    bar.finish_and_clear();
}
