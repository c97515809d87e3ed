//! Progress bars: on a terminal only, never with `-q`, one style for every tool.

use std::io;

use crate::era::superblock::{Superblock, SUPERBLOCK_LOCATION};
use crate::pdata::io::{Block, BlockIo};

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

/// A progress bar of metadata blocks on stderr, labelled with what the tool is doing, or a
/// hidden one (not a terminal, or `-q`). Its length is what the space map of `io` says is
/// in use, as near as a bar needs to be to how many blocks a walk reads.
pub fn block_progress(io: &dyn BlockIo, phase: &str, quiet: bool) -> indicatif::ProgressBar {
    if quiet || !stderr_is_tty() {
        return indicatif::ProgressBar::hidden();
    }
    let in_use = io
        .read_new(SUPERBLOCK_LOCATION)
        .ok()
        .map(|b| Superblock::unpack(&b).sm_root.nr_allocated)
        .filter(|&n| n > 0 && n <= io.nr_blocks())
        .unwrap_or(io.nr_blocks());
    let bar = indicatif::ProgressBar::new(in_use);
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{msg} {wide_bar} {human_pos}/{human_len} blocks eta {eta}",
    ) {
        bar.set_style(style);
    }
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

    fn flush(&self) -> io::Result<()> {
        self.inner.flush()
    }
}
