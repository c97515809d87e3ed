//! `dm-bitset`: an array of little-endian `u64` words, bit `i` being bit `i % 64` of word
//! `i / 64`.

use crate::pdata::error::{Error, Fault};
use crate::pdata::report::Severity;
use crate::pdata::unpack::Unpack;
use crate::pdata::walk::{Parent, Walker};

/// Bytes per bitset word.
pub const WORD_SIZE: u32 = <u64 as Unpack>::DISK_SIZE;

/// Words needed for `nr_bits` bits.
pub fn nr_words(nr_bits: u64) -> u64 {
    nr_bits.div_ceil(64)
}

/// Called for each run of words in order: `(walker, index of the first word, the words)`.
/// Runs never overlap, never go back, and end at the bitset's last word at the latest.
pub type WordsVisitor<'v, 'w> = dyn FnMut(&mut Walker<'w>, u64, &[u64]) + 'v;

impl<'w> Walker<'w> {
    /// Walks the bitset at `root` (a pointer held by `parent`) of `nr_bits` bits, handing
    /// its words to `visit` in order. Set bits at or past `nr_bits` are reported as
    /// non-fatal "stray bits" and cleared before `visit` sees them. Returns whether the
    /// whole bitset was read.
    pub fn walk_bitset(
        &mut self,
        structure: &str,
        root: u64,
        nr_bits: u64,
        parent: Parent,
        visit: &mut WordsVisitor<'_, 'w>,
    ) -> bool {
        let total = nr_words(nr_bits);
        let tail_bits = nr_bits % 64;
        let mut visit_masked = |w: &mut Walker<'w>, first: u64, words: &[u64]| {
            let last = first + words.len() as u64;
            let stray = match words.last() {
                Some(&word) if tail_bits != 0 && last == total => word >> tail_bits != 0,
                _ => false,
            };
            if !stray {
                return visit(w, first, words);
            }
            let f = Fault::Invalid(format!("stray bits set past nr_bits {nr_bits}"));
            w.report(Severity::Warning, Error::structure(structure, f));
            let mut masked = words.to_vec();
            if let Some(word) = masked.last_mut() {
                *word &= (1u64 << tail_bits) - 1;
            }
            visit(w, first, &masked);
        };
        self.walk_array_shaped(structure, root, total, nr_bits, parent, &mut visit_masked)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn word_counts() {
        for (bits, words) in [(0, 0), (1, 1), (64, 1), (65, 2), (1_000_000, 15_625)] {
            assert_eq!(nr_words(bits), words, "{bits} bits");
        }
    }
}
