//! Progress bars for long runs, shown only when stdout is a terminal.

use std::io::IsTerminal;

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

/// A spinner labelled `label` on stderr for a step of unknown length (a
/// load, a solve), ticking on its own; hidden when stderr is not a terminal.
pub fn spinner(label: &str) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let style =
        ProgressStyle::with_template("{spinner} {msg} {elapsed}").unwrap_or_else(|_| ProgressStyle::default_spinner());
    let bar = ProgressBar::new_spinner().with_style(style);
    bar.set_message(label.to_string());
    bar.enable_steady_tick(std::time::Duration::from_millis(120));
    bar
}
