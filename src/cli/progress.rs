//! Progress bars: on a terminal only, never with `-q`, one style for every tool.

use std::io;

/// A progress bar of `len` bytes on stderr, or a hidden one when stderr is not a terminal
/// (scripts, logs) or the tool was asked to be quiet.
pub fn byte_progress(len: u64, quiet: bool) -> indicatif::ProgressBar {
    if quiet || !stderr_is_tty() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(len);
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{msg} {wide_bar} {binary_bytes}/{binary_total_bytes} {binary_bytes_per_sec} eta {eta}",
    ) {
        bar.set_style(style);
    }
    bar
}

/// Whether stderr is a terminal, i.e. whether progress bars make sense.
pub fn stderr_is_tty() -> bool {
    use std::io::IsTerminal;
    io::stderr().is_terminal()
}
