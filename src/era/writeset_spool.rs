//! The writesets of a restore, kept beside the era array's spool ([`super::spool`]) until
//! the whole input is known to be valid: one bit per origin block each, 256 MiB each at the
//! kernel's limit, which do not belong in memory either.
//!
//! The XML may give a writeset's bits in any order, so they are set in pages of a temporary
//! file through a small cache of pages in memory ([`SLOTS`] of [`PAGE_WORDS`] words, 4 MiB):
//! bits in order, as era_dump writes them, write each page once. The file is created only
//! when a page leaves the cache, in `$TMPDIR` (else `/tmp`), unlinked at once; a page never
//! written is a hole and reads back as zeros.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;

use crate::pdata::bitset::nr_words;

/// Words in a page: 16 KiB.
const PAGE_WORDS: usize = 2048;
/// Bytes in a page.
const PAGE_BYTES: usize = PAGE_WORDS * 8;
/// Pages kept in memory.
const SLOTS: usize = 256;

/// A page in memory: which one, whether it changed since it was read, its words.
struct Slot {
    page: u64,
    dirty: bool,
    words: Box<[u64; PAGE_WORDS]>,
}

/// The writesets so far, each a run of pages of the file.
pub struct WritesetSpool {
    file: Option<File>,
    dir: PathBuf,
    /// Each writeset's first page and its words.
    regions: Vec<(u64, u64)>,
    /// The first page of the next writeset.
    next_page: u64,
    /// Page `p` is cached in slot `p % SLOTS`; a slot is allocated when first used.
    slots: Vec<Option<Slot>>,
}

impl Default for WritesetSpool {
    fn default() -> WritesetSpool {
        WritesetSpool {
            file: None,
            dir: std::env::temp_dir(),
            regions: Vec::new(),
            next_page: 0,
            slots: (0..SLOTS).map(|_| None).collect(),
        }
    }
}

impl WritesetSpool {
    /// Adds a writeset of `nr_bits` bits, all clear; returns its index.
    pub fn begin(&mut self, nr_bits: u32) -> usize {
        let words = nr_words(u64::from(nr_bits));
        self.regions.push((self.next_page, words));
        self.next_page += words.div_ceil(PAGE_WORDS as u64);
        self.regions.len() - 1
    }

    /// Sets bit `bit` of writeset `ws`, which the caller checked is below its `nr_bits`.
    pub fn set(&mut self, ws: usize, bit: u32) -> io::Result<()> {
        self.or_word(ws, u64::from(bit / 64), 1 << (bit % 64))
    }

    /// Sets the bits `begin..end` of writeset `ws`, which the caller checked are below its
    /// `nr_bits`.
    pub fn set_range(&mut self, ws: usize, begin: u64, end: u64) -> io::Result<()> {
        let mut b = begin;
        while b < end {
            let bit = b % 64;
            let n = (64 - bit).min(end - b);
            let mask = if n == 64 {
                u64::MAX
            } else {
                ((1u64 << n) - 1) << bit
            };
            self.or_word(ws, b / 64, mask)?;
            b += n;
        }
        Ok(())
    }

    /// ORs `mask` into word `word` of writeset `ws`.
    fn or_word(&mut self, ws: usize, word: u64, mask: u64) -> io::Result<()> {
        let (first, _) = self.regions[ws];
        let page = first + word / PAGE_WORDS as u64;
        let slot = self.slot(page)?;
        slot.words[crate::cast::index(word % PAGE_WORDS as u64)] |= mask;
        slot.dirty = true;
        Ok(())
    }

    /// The slot holding page `page`, read in (and the page it held written out) if needed.
    fn slot(&mut self, page: u64) -> io::Result<&mut Slot> {
        let i = crate::cast::index(page % SLOTS as u64);
        let mut slot = match self.slots[i].take() {
            Some(s) if s.page == page => return Ok(self.slots[i].insert(s)),
            Some(s) => {
                if s.dirty {
                    self.write_page(s.page, &s.words)?;
                }
                s
            }
            None => Slot {
                page,
                dirty: false,
                words: Box::new([0; PAGE_WORDS]),
            },
        };
        self.read_page(page, &mut slot.words)?;
        slot.page = page;
        slot.dirty = false;
        Ok(self.slots[i].insert(slot))
    }

    /// Reads page `page` into `words`: zeros where nothing was written.
    fn read_page(&self, page: u64, words: &mut [u64; PAGE_WORDS]) -> io::Result<()> {
        words.fill(0);
        let Some(f) = &self.file else {
            return Ok(());
        };
        let mut bytes = [0u8; PAGE_BYTES];
        let mut got = 0;
        while got < bytes.len() {
            match f.read_at(&mut bytes[got..], page * PAGE_BYTES as u64 + got as u64) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(self.context(e)),
            }
        }
        for (w, b) in words.iter_mut().zip(bytes.chunks_exact(8)) {
            *w = u64::from_le_bytes(b.try_into().unwrap_or_default());
        }
        Ok(())
    }

    /// Writes `words` as page `page`, creating the file first if needed.
    fn write_page(&mut self, page: u64, words: &[u64; PAGE_WORDS]) -> io::Result<()> {
        if self.file.is_none() {
            let f = tempfile::tempfile_in(&self.dir).map_err(|e| self.context(e))?;
            self.file = Some(f);
        }
        let mut bytes = [0u8; PAGE_BYTES];
        for (b, w) in bytes.chunks_exact_mut(8).zip(words.iter()) {
            b.copy_from_slice(&w.to_le_bytes());
        }
        match &self.file {
            Some(f) => f
                .write_all_at(&bytes, page * PAGE_BYTES as u64)
                .map_err(|e| self.context(e)),
            None => Ok(()),
        }
    }

    /// Hands the words of writeset `ws` to `f` in order, a page at a time. A failure to read
    /// them back is `own`'s error, told apart from `f`'s.
    pub fn replay<E>(
        &self,
        ws: usize,
        own: fn(io::Error) -> E,
        f: &mut dyn FnMut(&[u64]) -> Result<(), E>,
    ) -> Result<(), E> {
        let (first, words) = self.regions[ws];
        let mut page_words = Box::new([0u64; PAGE_WORDS]);
        let mut done = 0u64;
        let mut page = first;
        while done < words {
            // At most PAGE_WORDS.
            let n = crate::cast::index((words - done).min(PAGE_WORDS as u64));
            let i = crate::cast::index(page % SLOTS as u64);
            match &self.slots[i] {
                Some(s) if s.page == page => f(&s.words[..n])?,
                _ => {
                    self.read_page(page, &mut page_words).map_err(own)?;
                    f(&page_words[..n])?;
                }
            }
            done += n as u64;
            page += 1;
        }
        Ok(())
    }

    fn context(&self, e: io::Error) -> io::Error {
        io::Error::new(
            e.kind(),
            format!(
                "temporary file in {} (the writesets wait there, one bit per block each; set \
                 TMPDIR to use another directory): {e}",
                self.dir.display()
            ),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words_of(s: &WritesetSpool, ws: usize) -> Vec<u64> {
        let mut got = Vec::new();
        s.replay(ws, |e| e, &mut |w| {
            got.extend_from_slice(w);
            Ok(())
        })
        .unwrap();
        got
    }

    #[test]
    fn bits_in_any_order_come_back_in_their_writesets_past_the_cache() {
        // Two writesets, each larger than the cache holds, so that pages leave it.
        let bits = u32::try_from(SLOTS * PAGE_WORDS * 64 + 1000).unwrap();
        let mut s = WritesetSpool::default();
        let a = s.begin(bits);
        let b = s.begin(100);
        let mut want_a = vec![0u64; crate::cast::index(nr_words(bits.into()))];
        let mut set = |s: &mut WritesetSpool, bit: u32| {
            s.set(a, bit).unwrap();
            want_a[(bit / 64) as usize] |= 1 << (bit % 64);
        };
        // Descending, then ascending, then jumping back and forth between far pages.
        for bit in (0..bits).rev().step_by(4099) {
            set(&mut s, bit);
        }
        for bit in (1..bits).step_by(7919) {
            set(&mut s, bit);
        }
        for k in 0..5000u32 {
            set(&mut s, k.wrapping_mul(2_654_435_761).wrapping_mul(k) % bits);
        }
        s.set(b, 99).unwrap();
        s.set_range(a, 70, 200).unwrap();
        for bit in 70..200u32 {
            want_a[(bit / 64) as usize] |= 1 << (bit % 64);
        }
        assert!(
            s.file.is_some(),
            "the cache never overflowed: the test tests nothing"
        );
        assert_eq!(words_of(&s, a), want_a);
        let mut want_b = vec![0u64; 2];
        want_b[1] = 1 << 35;
        assert_eq!(words_of(&s, b), want_b);
    }

    #[test]
    fn a_writeset_without_set_bits_is_zeros_and_takes_no_file() {
        let mut s = WritesetSpool::default();
        let a = s.begin(1_000_000);
        assert!(words_of(&s, a).iter().all(|&w| w == 0));
        assert_eq!(words_of(&s, a).len(), 15_625);
        assert!(s.file.is_none());
    }
}
