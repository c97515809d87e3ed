//! The stream of era metadata that readers produce and writers consume: the superblock's
//! fields, then each writeset's words in ascending era, then the era array.
//!
//! The XML writer and the binary builder both consume it, so a dump, a restore, a repair and
//! the synthetic generator all go through the same two writers.

use std::io;

/// What a stream of era metadata starts with: the superblock fields the XML carries (its
/// geometry and current era).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    /// Origin block size in sectors.
    pub block_size: u32,
    /// Origin blocks: the era array's length.
    pub nr_blocks: u32,
    /// The current era.
    pub current_era: u32,
}

/// Consumes era metadata in order: `superblock_begin`, then for each writeset (ascending,
/// distinct eras) `writeset_begin`, its words in order and `writeset_end`, then
/// `era_array_begin`, the eras in order, `era_array_end`, and `superblock_end`.
pub trait EraSink {
    /// Starts the metadata.
    fn superblock_begin(&mut self, header: &Summary) -> io::Result<()>;
    /// Starts a writeset of `nr_bits` bits.
    fn writeset_begin(&mut self, era: u32, nr_bits: u32) -> io::Result<()>;
    /// The next words of the current writeset; together, exactly `ceil(nr_bits / 64)`
    /// words, with no bit set at or past `nr_bits`.
    fn writeset_words(&mut self, words: &[u64]) -> io::Result<()>;
    /// Ends the current writeset.
    fn writeset_end(&mut self) -> io::Result<()>;
    /// Starts the era array.
    fn era_array_begin(&mut self) -> io::Result<()>;
    /// The next values of the era array; together, exactly `nr_blocks` values.
    fn eras(&mut self, eras: &[u32]) -> io::Result<()>;
    /// Ends the era array.
    fn era_array_end(&mut self) -> io::Result<()>;
    /// Ends the metadata.
    fn superblock_end(&mut self) -> io::Result<()>;
}
