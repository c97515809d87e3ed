//! Progress bars: on a terminal only, never with `-q`, one style for every tool.

use std::io;

use crate::pdata::io::{Block, BlockIo};

/// A progress bar of `len` bytes on stderr, or a hidden one when stderr is not a terminal
/// (scripts, logs) or the tool was asked to be quiet.
pub fn byte_progress(len: u64, quiet: bool) -> indicatif::ProgressBar {
    styled(
        len,
        quiet,
        "{msg} {wide_bar} {binary_bytes}/{binary_total_bytes} {binary_bytes_per_sec} eta {eta}",
    )
}

/// A counter of bytes read from a stream of unknown length (a pipe), labelled `phase`;
/// hidden as [`byte_progress`] is.
pub fn stream_progress(phase: &str, quiet: bool) -> indicatif::ProgressBar {
    let bar = styled(
        0,
        quiet,
        "{msg} {spinner} {binary_bytes} {binary_bytes_per_sec}",
    );
    bar.set_message(phase.to_string());
    bar
}

/// The style of a bar of metadata blocks.
const BLOCKS: &str = "{msg} {wide_bar} {human_pos}/{human_len} blocks eta {eta}";

/// A bar of `len` units in `template`, hidden when stderr is not a terminal or with `-q`.
fn styled(len: u64, quiet: bool, template: &str) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::with_draw_target(
        Some(len),
        indicatif::ProgressDrawTarget::hidden(),
    );
    if let Ok(style) = indicatif::ProgressStyle::with_template(template) {
        bar.set_style(style);
    }
    reveal(&bar, quiet);
    bar
}

/// Shows `bar` on stderr, unless stderr is not a terminal or the tool is quiet.
fn reveal(bar: &indicatif::ProgressBar, quiet: bool) {
    if !quiet && stderr_is_tty() {
        bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
    }
}

/// A bar of metadata blocks for a phase whose length is known only later: hidden until
/// [`start_blocks_bar`].
pub fn pending_blocks_bar(phase: &str) -> indicatif::ProgressBar {
    let bar = styled(0, true, BLOCKS);
    bar.set_message(phase.to_string());
    bar
}

/// Starts a bar of [`pending_blocks_bar`] at `len` blocks, shown as [`byte_progress`] is.
pub fn start_blocks_bar(bar: &indicatif::ProgressBar, len: u64, quiet: bool) {
    bar.set_length(len);
    reveal(bar, quiet);
}

/// Whether stderr is a terminal, i.e. whether progress bars make sense.
pub fn stderr_is_tty() -> bool {
    use std::io::IsTerminal;
    io::stderr().is_terminal()
}

/// A progress bar of metadata blocks on stderr, labelled with what the tool is doing, or a
/// hidden one (not a terminal, or `-q`). Its length, `len`, is asked only for a bar that
/// shows (it may cost a read).
pub fn blocks_bar(len: impl FnOnce() -> u64, phase: &str, quiet: bool) -> indicatif::ProgressBar {
    if quiet || !stderr_is_tty() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = styled(len(), quiet, BLOCKS);
    bar.set_message(phase.to_string());
    bar
}

/// A device whose every block read or written moves a progress bar on.
pub struct Counted<'a> {
    inner: &'a dyn BlockIo,
    bar: &'a indicatif::ProgressBar,
}

impl<'a> Counted<'a> {
    /// Counts the blocks moved through `inner` on `bar`.
    pub fn new(inner: &'a dyn BlockIo, bar: &'a indicatif::ProgressBar) -> Counted<'a> {
        Counted { inner, bar }
    }
}

impl BlockIo for Counted<'_> {
    fn nr_blocks(&self) -> u64 {
        self.inner.nr_blocks()
    }

    fn read(&self, loc: u64, buf: &mut Block) -> io::Result<()> {
        self.bar.inc(1);
        self.inner.read(loc, buf)
    }

    fn write(&self, loc: u64, buf: &Block) -> io::Result<()> {
        self.bar.inc(1);
        self.inner.write(loc, buf)
    }

    fn read_run(&self, first: u64, bufs: &mut [Box<Block>]) -> io::Result<()> {
        self.bar.inc(bufs.len() as u64);
        self.inner.read_run(first, bufs)
    }

    fn concurrent_reads(&self) -> bool {
        self.inner.concurrent_reads()
    }

    fn flush(&self) -> io::Result<()> {
        self.inner.flush()
    }
}
