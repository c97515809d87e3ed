//! `dm-bitset`: an array of little-endian `u64` words, bit `i` being bit `i % 64` of word
//! `i / 64`.

use byteorder::{ByteOrder, LittleEndian as LE};

use crate::pdata::error::{Error, Fault};
use crate::pdata::report::Severity;
use crate::pdata::walk::Walker;

/// Bytes per bitset word.
pub const WORD_SIZE: u32 = 8;

/// Words needed for `nr_bits` bits.
pub fn nr_words(nr_bits: u64) -> u64 {
    nr_bits.div_ceil(64)
}

/// Called for each run of words in order: `(walker, index of the first word, the words)`.
pub type WordsVisitor<'v, 'w> = dyn FnMut(&mut Walker<'w>, u64, &[u64]) + 'v;

impl<'w> Walker<'w> {
    /// Walks the bitset at `root` of `nr_bits` bits, handing its words to `visit` in order.
    /// Set bits at or past `nr_bits` are reported as non-fatal "stray bits" and cleared
    /// before `visit` sees them. Returns whether the whole bitset was read.
    pub fn walk_bitset(
        &mut self,
        structure: &str,
        root: u64,
        nr_bits: u64,
        counting: bool,
        visit: &mut WordsVisitor<'_, 'w>,
    ) -> bool {
        let total = nr_words(nr_bits);
        let mut words = Vec::with_capacity(512);
        self.walk_array(
            structure,
            root,
            WORD_SIZE,
            total,
            counting,
            &mut |w, first, bytes| {
                words.clear();
                words.extend(bytes.chunks_exact(8).map(LE::read_u64));
                let last = first + words.len() as u64;
                if nr_bits % 64 != 0 && last == total {
                    let mask = (1u64 << (nr_bits % 64)) - 1;
                    if let Some(word) = words.last_mut() {
                        if *word & !mask != 0 {
                            let e = Error::structure(
                                structure,
                                Fault::Invalid(format!("stray bits set past nr_bits {nr_bits}")),
                            );
                            w.report(Severity::Warning, e);
                            *word &= mask;
                        }
                    }
                }
                visit(w, first, &words);
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn word_counts() {
        assert_eq!(nr_words(0), 0);
        assert_eq!(nr_words(1), 1);
        assert_eq!(nr_words(64), 1);
        assert_eq!(nr_words(65), 2);
        assert_eq!(nr_words(1_000_000), 15_625);
    }
}
