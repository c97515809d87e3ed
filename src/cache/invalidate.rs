//! Which cache blocks hold origin data written in given ranges: what a cache must drop after
//! the origin was rolled back under it (to a vendor snapshot, say), so that no read returns
//! what the cache kept of data the origin no longer holds.
//!
//! The written ranges come in ascending order (as dm-era lists them), in sectors, so era
//! blocks and cache blocks of different sizes meet without rounding: a cache block is marked
//! when any of its sectors was written, so an era block that straddles two cache blocks marks
//! both. The origin is taken a window of [`WINDOW_BLOCKS`] cache-sized blocks at a time: the
//! written ones are one bit each, and each window that holds any is matched against one pass
//! over the cache's mappings. Memory is that window and one bit per cache block, whatever the
//! size of the origin; a cache of 16 Mi blocks over an origin of up to 2^27 of its blocks is
//! read once.

use std::io::{self, Write};
use std::ops::Range;

use super::error::CacheError;
use super::reader::CacheMetadata;

/// Origin blocks (of the cache's block size) matched per pass over the mappings: 16 MiB of
/// bits.
pub const WINDOW_BLOCKS: u64 = 1 << 27;

/// Mappings matched at once against the window.
const BATCH: usize = 4096;

/// Bytes of text written at once.
const TEXT_BUFFER: usize = 1 << 16;

/// Ranges per `invalidate_cblocks` message: the kernel takes long messages, but their time
/// grows faster than their length (cache-metadata.md §10).
pub const MESSAGE_RANGES: usize = 1000;

/// What a cache must invalidate, and how much of what was written it held.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalidation {
    /// One bit per cache block: set where the block must be invalidated.
    marked: Vec<u64>,
    nr_cache_blocks: u64,
    /// Cache block size in sectors.
    pub cache_block_sectors: u32,
    /// Origin blocks of the cache's block size that hold written sectors.
    pub written_blocks: u64,
    /// How many of them a cache block holds: as many cache blocks are to be invalidated.
    pub cached_blocks: u64,
}

impl Invalidation {
    /// The cache blocks to invalidate as maximal half-open ranges, ascending (the ranges
    /// `invalidate_cblocks` takes, whose end is exclusive too).
    pub fn ranges(&self) -> impl Iterator<Item = Range<u64>> + '_ {
        let mut b = 0;
        std::iter::from_fn(move || {
            let begin = self.next_with(b, true)?;
            let end = self.next_with(begin, false).unwrap_or(self.nr_cache_blocks);
            b = end;
            Some(begin..end)
        })
    }

    /// The first cache block from `from` on whose mark is `set`, a word at a time (a cache
    /// is mostly kept, or mostly invalidated); `None` when there is none.
    fn next_with(&self, from: u64, set: bool) -> Option<u64> {
        let flip = if set { 0 } else { u64::MAX };
        let mut w = from / 64;
        let mut word = (self.marked.get(crate::cast::index(w))? ^ flip) & (u64::MAX << (from % 64));
        while word == 0 {
            w += 1;
            word = self.marked.get(crate::cast::index(w))? ^ flip;
        }
        // The bits past the last cache block are clear: flipped, they stop the search there.
        let b = w * 64 + u64::from(word.trailing_zeros());
        (b < self.nr_cache_blocks).then_some(b)
    }

    /// Written origin blocks (of the cache's block size) that no cache block held: nothing
    /// to invalidate for them.
    pub fn not_cached_blocks(&self) -> u64 {
        self.written_blocks - self.cached_blocks
    }

    /// Writes the ranges, one `BEGIN END` line each (end exclusive).
    pub fn write_text(&self, out: &mut dyn Write) -> io::Result<()> {
        self.write_ranges(out, b"", b" ", b"\n", b"")
    }

    /// Writes each range as `before`, its begin, `between`, its end and `after`, the
    /// ranges separated by `separator`, through a buffer (millions of ranges, each a few
    /// bytes).
    fn write_ranges(
        &self,
        out: &mut dyn Write,
        before: &[u8],
        between: &[u8],
        after: &[u8],
        separator: &[u8],
    ) -> io::Result<()> {
        let mut buf = Vec::with_capacity(TEXT_BUFFER + 128);
        for (i, r) in self.ranges().enumerate() {
            if i > 0 {
                buf.extend_from_slice(separator);
            }
            buf.extend_from_slice(before);
            crate::text::put_u64_pair(&mut buf, r.start, between, r.end);
            buf.extend_from_slice(after);
            if buf.len() >= TEXT_BUFFER {
                out.write_all(&buf)?;
                buf.clear();
            }
        }
        out.write_all(&buf)
    }

    /// The messages that invalidate the blocks, at most [`MESSAGE_RANGES`] ranges each, as
    /// the cache target takes them: `invalidate_cblocks 0-5 9 12-20` (a range's end is
    /// exclusive there too; a single block is its number). None when there is nothing to
    /// invalidate.
    pub fn messages(&self) -> impl Iterator<Item = String> + '_ {
        let mut ranges = self.ranges().peekable();
        std::iter::from_fn(move || {
            ranges.peek()?;
            let mut line = String::from("invalidate_cblocks");
            for r in ranges.by_ref().take(MESSAGE_RANGES) {
                match r.end - r.start {
                    1 => line.push_str(&format!(" {}", r.start)),
                    _ => line.push_str(&format!(" {}-{}", r.start, r.end)),
                }
            }
            Some(line)
        })
    }

    /// Writes the [`messages`](Self::messages), one a line, for `dmsetup message CACHE 0`.
    pub fn write_messages(&self, out: &mut dyn Write) -> io::Result<()> {
        for line in self.messages() {
            writeln!(out, "{line}")?;
        }
        Ok(())
    }

    /// How many cache blocks are to be invalidated.
    pub fn count(&self) -> u64 {
        self.ranges().map(|r| r.end - r.start).sum()
    }

    /// Writes the JSON object that tells what to invalidate in the cache `source` names
    /// (`("metadata", path)`, or `("device", name)` for a live cache): its block size and
    /// blocks, the ranges, how many blocks, and how many of the written origin blocks (of
    /// the cache's block size) it held and did not; `more` adds fields before the ranges.
    pub fn write_json(
        &self,
        out: &mut dyn Write,
        source: (&str, &str),
        more: impl FnOnce(&mut crate::json::Object) -> io::Result<()>,
    ) -> io::Result<()> {
        let mut o = crate::json::Object::begin(out)?;
        o.field(source.0, source.1)?
            .field("block_size_sectors", self.cache_block_sectors)?
            .field("cache_blocks", self.nr_cache_blocks)?
            .field("invalidated", self.count())?
            .field("written_origin_blocks", self.written_blocks)?
            .field("not_cached", self.not_cached_blocks())?;
        more(&mut o)?;
        o.raw("ranges", |w| {
            // As crate::json::Range writes each, at the speed of the text form.
            w.write_all(b"[")?;
            self.write_ranges(w, b"{\"begin\":", b",\"end\":", b"}", b",")?;
            w.write_all(b"]")
        })?
        .end()
    }
}

/// Takes the written ranges one by one and matches each window of them against the cache.
pub struct Matcher<'c> {
    cache: &'c CacheMetadata,
    sectors: u64,
    /// The first origin block of the window, and its written blocks (bit `b - first`).
    first: u64,
    window: Vec<u64>,
    /// The words of `window` set since it was last cleared.
    touched: Range<usize>,
    /// The last origin block marked written.
    last: Option<u64>,
    /// The sector after the last range handed in, below which no range may start.
    after: u64,
    out: Invalidation,
}

impl<'c> Matcher<'c> {
    /// A matcher for `cache`, nothing written yet.
    pub fn new(cache: &'c CacheMetadata) -> Matcher<'c> {
        let sb = cache.superblock();
        let n = u64::from(sb.cache_blocks);
        Matcher {
            cache,
            sectors: u64::from(sb.data_block_size),
            first: 0,
            window: Vec::new(),
            touched: 0..0,
            last: None,
            after: 0,
            out: Invalidation {
                marked: vec![0; crate::cast::index(n.div_ceil(64))],
                nr_cache_blocks: n,
                cache_block_sectors: sb.data_block_size,
                written_blocks: 0,
                cached_blocks: 0,
            },
        }
    }

    /// Origin sectors `written` were written. Ranges come in ascending order (else an
    /// error: the part below the last would be left out); they may touch or share a cache
    /// block with the one before.
    pub fn written(&mut self, written: Range<u64>) -> Result<(), CacheError> {
        if written.is_empty() {
            return Ok(());
        }
        if written.start < self.after {
            return Err(CacheError::Unordered {
                start: written.start,
                end: written.end,
                after: self.after,
            });
        }
        self.after = written.end;
        let mut begin = written.start / self.sectors;
        let end = written.end.div_ceil(self.sectors);
        if let Some(last) = self.last {
            // A cache block shared with the range before is already marked.
            begin = begin.max(last + 1);
        }
        while begin < end {
            if begin >= self.first + WINDOW_BLOCKS {
                self.match_window()?;
                self.first = begin - begin % WINDOW_BLOCKS;
            }
            let stop = end.min(self.first + WINDOW_BLOCKS);
            self.mark(begin - self.first, stop - self.first);
            begin = stop;
        }
        self.last = Some(end - 1);
        Ok(())
    }

    /// Marks window bits `begin..end` written.
    fn mark(&mut self, begin: u64, end: u64) {
        if self.window.is_empty() {
            self.window = vec![0; crate::cast::index(WINDOW_BLOCKS / 64)];
        }
        let (first, last) = (begin / 64, (end - 1) / 64);
        for w in first..=last {
            let lo = if w == first { begin % 64 } else { 0 };
            let hi = if w == last { (end - 1) % 64 } else { 63 };
            let mask = (u64::MAX >> (63 - hi)) & (u64::MAX << lo);
            self.window[crate::cast::index(w)] |= mask;
        }
        let (first, last) = (crate::cast::index(first), crate::cast::index(last));
        self.touched = match self.touched.is_empty() {
            true => first..last + 1,
            false => self.touched.start.min(first)..self.touched.end.max(last + 1),
        };
        self.out.written_blocks += end - begin;
    }

    /// Marks the cache blocks that hold a written block of the window, and clears it.
    fn match_window(&mut self) -> Result<(), CacheError> {
        if self.touched.is_empty() {
            return Ok(());
        }
        let mut mappings = self.cache.mappings()?;
        let mut block = Vec::new();
        let mut batch = Vec::with_capacity(BATCH);
        while mappings.next_block(&mut block)? {
            for m in block.drain(..) {
                let in_window = m.oblock.checked_sub(self.first);
                if let Some(b) = in_window.filter(|&b| b < WINDOW_BLOCKS) {
                    batch.push((m.cblock, b));
                }
            }
            if batch.len() >= BATCH {
                self.match_batch(&batch);
                batch.clear();
            }
        }
        self.match_batch(&batch);
        self.window[self.touched.clone()].fill(0);
        self.touched = 0..0;
        Ok(())
    }

    /// Marks the cache blocks of `batch` (cache block, window bit) whose window bit is set.
    /// A cache's origin blocks are scattered over the window, so each look-up is likely a
    /// cache miss: without a branch on its outcome, the processor has many in flight at
    /// once (more than twice as fast as a branch per mapping, at 16 Mi cache blocks).
    fn match_batch(&mut self, batch: &[(u64, u64)]) {
        for &(c, b) in batch {
            let hit = self.window[crate::cast::index(b / 64)] >> (b % 64) & 1;
            self.out.marked[crate::cast::index(c / 64)] |= hit << (c % 64);
            self.out.cached_blocks += hit;
        }
    }

    /// What the cache must invalidate, once every written range was given.
    pub fn finish(mut self) -> Result<Invalidation, CacheError> {
        self.match_window()?;
        Ok(self.out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::example::Synthetic;
    use crate::cache::format::superblock::CLEAN_SHUTDOWN;
    use crate::pdata::io::MemIo;

    /// A cache of blocks of 64 sectors whose block `c` holds origin block `oblocks[c]`
    /// (`None`: unmapped).
    fn cache(oblocks: &[Option<u64>]) -> CacheMetadata {
        let s = Synthetic {
            version: 2,
            flags: CLEAN_SHUTDOWN,
            data_block_size: 64,
            cache_blocks: u32::try_from(oblocks.len()).unwrap(),
            origin_sectors: None,
        };
        let io = MemIo::new(64);
        s.write(&io, &|c| oblocks[crate::cast::index(c)].map(|o| (o, false)))
            .unwrap();
        CacheMetadata::from_io(Box::new(io)).unwrap()
    }

    /// The ranges of `inv` as pairs, begin and end.
    fn pairs(inv: &Invalidation) -> Vec<(u64, u64)> {
        inv.ranges().map(|r| (r.start, r.end)).collect()
    }

    fn invalidate(c: &CacheMetadata, written: &[Range<u64>]) -> Invalidation {
        let mut m = Matcher::new(c);
        for r in written {
            m.written(r.clone()).unwrap();
        }
        m.finish().unwrap()
    }

    #[test]
    fn a_cache_block_is_invalidated_when_any_of_its_sectors_was_written() {
        // Cache blocks 0..6 hold origin blocks 10, 3, -, 4, 11, 700 (64 sectors each).
        let c = cache(&[Some(10), Some(3), None, Some(4), Some(11), Some(700)]);
        // An era block of 8 sectors at the end of origin block 3; era block 29 of 24
        // sectors, which straddles origin blocks 10 and 11; one sector of origin block 99
        // (not cached).
        let inv = invalidate(&c, &[248..256, 696..720, 6336..6337]);
        assert_eq!(pairs(&inv), [(0, 2), (4, 5)]);
        assert_eq!((inv.written_blocks, inv.cached_blocks), (4, 3));
        assert_eq!(inv.not_cached_blocks(), 1);
        assert_eq!(inv.cache_block_sectors, 64);
    }

    #[test]
    fn nothing_written_invalidates_nothing_and_ranges_sharing_a_block_count_it_once() {
        let c = cache(&[Some(0), Some(1)]);
        assert_eq!(invalidate(&c, &[]).ranges().count(), 0);
        let inv = invalidate(&c, &[0..8, 8..16, 56..72]);
        assert_eq!(pairs(&inv), [(0, 2)]);
        assert_eq!((inv.written_blocks, inv.cached_blocks), (2, 2));
    }

    #[test]
    fn ranges_out_of_order_are_refused_rather_than_left_out() {
        let c = cache(&[Some(0), Some(1), Some(2)]);
        let mut m = Matcher::new(&c);
        m.written(64..80).unwrap();
        // Touching the range before is in order; starting inside it or below it is not.
        m.written(80..96).unwrap();
        let e = m.written(90..200).unwrap_err();
        assert_eq!(
            e.to_string(),
            "era list: written sectors 90 to 200 come after sectors up to 96: the ranges \
             must ascend (a bug: please report it)"
        );
        assert!(matches!(
            m.written(0..8),
            Err(CacheError::Unordered { after: 96, .. })
        ));
    }

    #[test]
    fn the_forms_of_the_list_say_the_same_ranges() {
        let c = cache(&[Some(0), Some(1), None, Some(3), Some(5)]);
        let inv = invalidate(&c, &[0..128, 192..193, 320..321]);
        let mut text = Vec::new();
        inv.write_text(&mut text).unwrap();
        assert_eq!(String::from_utf8(text).unwrap(), "0 2\n3 5\n");
        let mut msg = Vec::new();
        inv.write_messages(&mut msg).unwrap();
        assert_eq!(
            String::from_utf8(msg).unwrap(),
            "invalidate_cblocks 0-2 3-5\n"
        );
        let mut json = Vec::new();
        inv.write_json(&mut json, ("metadata", "m"), |_| Ok(()))
            .unwrap();
        assert_eq!(
            String::from_utf8(json).unwrap(),
            "{\"metadata\":\"m\",\"block_size_sectors\":64,\"cache_blocks\":5,\
             \"invalidated\":4,\"written_origin_blocks\":4,\"not_cached\":0,\
             \"ranges\":[{\"begin\":0,\"end\":2},{\"begin\":3,\"end\":5}]}"
        );
    }

    #[test]
    fn messages_are_cut_into_batches_and_a_single_block_is_its_number() {
        // Every other cache block holds a written origin block: one range each.
        let n = MESSAGE_RANGES * 2 + 3;
        let oblocks: Vec<Option<u64>> = (0..2 * n as u64)
            .map(|c| (c % 2 == 0).then_some(c))
            .collect();
        let c = cache(&oblocks);
        let everything = 0..(2 * n as u64) * 64;
        let inv = invalidate(&c, std::slice::from_ref(&everything));
        let mut msg = Vec::new();
        inv.write_messages(&mut msg).unwrap();
        let msg = String::from_utf8(msg).unwrap();
        let lines: Vec<&str> = msg.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(
            lines[0].starts_with("invalidate_cblocks 0 2 4 "),
            "{}",
            lines[0]
        );
        assert_eq!(lines[0].split(' ').count(), MESSAGE_RANGES + 1);
        assert_eq!(lines[2], "invalidate_cblocks 4000 4002 4004");
    }

    #[test]
    fn ranges_run_across_words_and_to_the_last_cache_block() {
        // 200 cache blocks, each holding its own number: blocks 3..130 and 190..200 written.
        let oblocks: Vec<Option<u64>> = (0..200).map(Some).collect();
        let c = cache(&oblocks);
        let inv = invalidate(&c, &[3 * 64..130 * 64, 190 * 64..200 * 64]);
        assert_eq!(pairs(&inv), [(3, 130), (190, 200)]);
        // Ends on a word's last block, and a single block at a word's first.
        let inv = invalidate(&c, &[0..64 * 64, 128 * 64..128 * 64 + 1]);
        assert_eq!(pairs(&inv), [(0, 64), (128, 129)]);
    }

    #[test]
    fn windows_far_apart_are_each_matched() {
        let far = 3 * WINDOW_BLOCKS + 5;
        let c = cache(&[
            Some(far),
            Some(1),
            Some(WINDOW_BLOCKS - 1),
            Some(WINDOW_BLOCKS),
        ]);
        let sectors = |b: u64| b * 64..b * 64 + 1;
        let written = [sectors(1), sectors(WINDOW_BLOCKS - 1), sectors(far)];
        let inv = invalidate(&c, &written);
        assert_eq!(pairs(&inv), [(0, 3)]);
        assert_eq!((inv.written_blocks, inv.cached_blocks), (3, 3));
        // One range across a window's edge marks both sides.
        let across = (WINDOW_BLOCKS - 1) * 64..(WINDOW_BLOCKS + 1) * 64;
        let inv = invalidate(&c, &[across]);
        assert_eq!(pairs(&inv), [(2, 4)]);
    }
}
