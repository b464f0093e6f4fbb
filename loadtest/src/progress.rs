//! Progress bars on stderr (indicatif hides them when stderr is not a terminal, so logs and
//! `--json` output stay clean in scripts).

use indicatif::{ProgressBar, ProgressStyle};

/// A bar counting `len` items of a setup phase, labelled `phase`.
pub fn counter(len: u64, phase: &'static str) -> ProgressBar {
    let bar = ProgressBar::new(len);
    bar.set_style(
        ProgressStyle::with_template(
            "{prefix:>9} [{bar:40.cyan/blue}] {human_pos}/{human_len} {per_sec:>12} eta {eta}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    bar.set_prefix(phase);
    bar
}

/// The bar of the timed phase: seconds elapsed out of `seconds`, live figures as the message.
pub fn timed(seconds: u64) -> ProgressBar {
    let bar = ProgressBar::new(seconds);
    bar.set_style(
        ProgressStyle::with_template("{prefix:>9} [{bar:40.green/blue}] {pos}/{len}s {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_prefix("load");
    bar
}
