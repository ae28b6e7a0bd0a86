//! Progress bars for long runs, shown only when stdout is a terminal.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressStyle};

/// How many messages pass between two progress updates (keeps the bar off
/// the measured path).
pub const UPDATE_EVERY: u64 = 1024;

/// A bar of `len` steps labelled `label`; hidden when stdout is not a
/// terminal (the report is being piped or captured).
pub fn bar(len: u64, label: &str) -> ProgressBar {
    if !std::io::stdout().is_terminal() {
        return ProgressBar::hidden();
    }
    let style = ProgressStyle::with_template(
        "{prefix:<44} [{bar:30}] {percent:>3}% {per_sec:>14} eta {eta}",
    )
    .map(|s| s.progress_chars("=> "))
    .unwrap_or_else(|_| ProgressStyle::default_bar());
    let bar = ProgressBar::new(len).with_style(style);
    bar.set_prefix(label.to_string());
    bar
}
