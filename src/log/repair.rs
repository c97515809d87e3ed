//! The bit-level repairs of `log_repair` and the description of what a rewrite changes.

use std::ops::Range;

use super::edit::{set_bits, BitEdit};
use super::error::LogError;
use super::format::geometry::BITMAP_START;
use super::format::header::{Header, HEADER_SIZE};

/// Parses region ranges: comma-separated `BEGIN..END` (end exclusive) or single regions.
pub fn parse_ranges(s: &str) -> Result<Vec<Range<u64>>, LogError> {
    let bad = |part: &str, why: &str| LogError::Invalid(format!("range {part:?}: {why}"));
    let mut out = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let num = |t: &str| {
            t.trim()
                .parse::<u64>()
                .map_err(|_| bad(part, "not BEGIN..END or a region number"))
        };
        let r = match part.split_once("..") {
            Some((b, e)) => num(b)?..num(e)?,
            None => {
                let n = num(part)?;
                n..n.saturating_add(1)
            }
        };
        if r.start >= r.end {
            return Err(bad(part, "empty range (the end is exclusive)"));
        }
        out.push(r);
    }
    if out.is_empty() {
        return Err(LogError::Invalid("no region range given".into()));
    }
    Ok(out)
}

/// Ranges as `a..b, c..d`, at most `limit` of them.
pub fn format_ranges(ranges: &[Range<u64>], limit: usize) -> String {
    let mut s = ranges
        .iter()
        .take(limit)
        .map(|r| format!("{}..{}", r.start, r.end))
        .collect::<Vec<_>>()
        .join(", ");
    if ranges.len() > limit {
        s.push_str(&format!(", … ({} more ranges)", ranges.len() - limit));
    }
    s
}

/// Number of regions in `ranges`.
pub fn count(ranges: &[Range<u64>]) -> u64 {
    ranges.iter().map(|r| r.end - r.start).sum()
}

/// The bit-level repairs (those that need no mirror legs).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BitRepair {
    /// Keep the bits.
    KeepBits,
    /// Every region dirty, trailing bits clear.
    ForceResync,
    /// Clear the bits past the last region.
    ClearStrayBits,
    /// Mark these regions clean (unsafe unless the legs are known identical there). Applied
    /// to pieces of the bitmap, they must be ascending and disjoint: see [`BitRepair::merged`].
    MarkClean(Vec<Range<u64>>),
}

impl BitRepair {
    /// Checks the repair against a bitmap of `nr_regions` regions: a range to mark clean
    /// must lie within it.
    pub fn check(&self, nr_regions: u64) -> Result<(), LogError> {
        if let BitRepair::MarkClean(ranges) = self {
            if let Some(r) = ranges.iter().find(|r| r.end > nr_regions) {
                return Err(LogError::Invalid(format!(
                    "range {}..{} goes past the last region ({nr_regions} regions)",
                    r.start, r.end
                )));
            }
        }
        Ok(())
    }

    /// The same repair with the ranges to mark clean sorted and merged (overlapping or
    /// adjacent ones into one), as each piece of the bitmap looks up the few it meets.
    pub fn merged(self) -> BitRepair {
        let BitRepair::MarkClean(mut ranges) = self else {
            return self;
        };
        ranges.sort_by_key(|r| r.start);
        let mut out: Vec<Range<u64>> = Vec::with_capacity(ranges.len());
        for r in ranges {
            match out.last_mut() {
                Some(last) if r.start <= last.end => last.end = last.end.max(r.end),
                _ => out.push(r),
            }
        }
        BitRepair::MarkClean(out)
    }
}

impl BitEdit for BitRepair {
    fn apply(&self, nr_regions: u64, first: u64, bytes: &mut [u8]) {
        match self {
            BitRepair::KeepBits => {}
            // Every region dirty, and the bits past the last one clear.
            BitRepair::ForceResync => bytes.fill(0),
            BitRepair::ClearStrayBits => set_bits(bytes, first, nr_regions..u64::MAX, false),
            BitRepair::MarkClean(ranges) => {
                // Only the ranges that reach into this piece: a resync may mark millions.
                let end = first + bytes.len() as u64 * 8;
                let from = ranges.partition_point(|r| r.end <= first);
                for r in ranges[from..].iter().take_while(|r| r.start < end) {
                    set_bits(bytes, first, r.start..r.end.min(nr_regions), true);
                }
            }
        }
    }
}

/// Ranges of bits as they are found in ascending order, keeping only what a report shows:
/// how many bits, how many ranges, and the first [`SHOWN`] of them.
#[derive(Clone, Debug, Default)]
struct RangeTally {
    bits: u64,
    ranges: u64,
    shown: Vec<Range<u64>>,
    last: Option<Range<u64>>,
}

/// Ranges a change line lists before it counts the rest.
const SHOWN: usize = 32;

impl RangeTally {
    /// Adds the set bits of `mask`, bit `k` standing for bit `base + k`.
    fn add(&mut self, base: u64, mut mask: u64) {
        let mut k = 0u64;
        while mask != 0 {
            let zeros = u64::from(mask.trailing_zeros());
            mask >>= zeros;
            k += zeros;
            let ones = u64::from(mask.trailing_ones());
            self.push(base + k..base + k + ones);
            // A shift by 64 would overflow: the run reached the word's top bit.
            mask = mask
                .checked_shr(ones.try_into().unwrap_or(u32::MAX))
                .unwrap_or(0);
            k += ones;
        }
    }

    fn push(&mut self, r: Range<u64>) {
        self.bits += r.end - r.start;
        match self.last.as_mut() {
            Some(last) if last.end == r.start => last.end = r.end,
            _ => {
                self.close();
                self.last = Some(r);
            }
        }
    }

    fn close(&mut self) {
        if let Some(last) = self.last.take() {
            self.ranges += 1;
            if self.shown.len() < SHOWN {
                self.shown.push(last);
            }
        }
    }

    /// `a..b, c..d`, at most [`SHOWN`] of them, then how many more; `None` when empty.
    fn line(mut self) -> Option<(u64, String)> {
        self.close();
        if self.ranges == 0 {
            return None;
        }
        let mut s = format_ranges(&self.shown, SHOWN);
        if self.ranges > SHOWN as u64 {
            s.push_str(&format!(", … ({} more ranges)", self.ranges - SHOWN as u64));
        }
        Some((self.bits, s))
    }
}

/// What rewriting a log buffer changes, gathered one piece at a time (old and new bytes
/// from the same offset, pieces in order, each a whole number of 64-bit words past byte
/// 1024 except the last).
#[derive(Clone, Debug, Default)]
pub struct Changes {
    header: Vec<String>,
    padding: usize,
    cleaned: RangeTally,
    dirtied: RangeTally,
}

impl Changes {
    /// Adds the piece at `off`: `old` as it is, `new` as it will be.
    pub fn piece(&mut self, off: u64, old: &[u8], new: &[u8]) {
        if off == 0 {
            self.header = header_changes(old, new);
        }
        let end = off + old.len().min(new.len()) as u64;
        let at = |i: u64| crate::cast::index(i - off);
        let pad_end = (BITMAP_START as u64).min(end);
        let pad_start = (HEADER_SIZE as u64).max(off);
        if pad_start < pad_end {
            let (a, b) = (
                &old[at(pad_start)..at(pad_end)],
                &new[at(pad_start)..at(pad_end)],
            );
            self.padding += a.iter().zip(b).filter(|(x, y)| x != y).count();
        }
        let bits_start = (BITMAP_START as u64).max(off);
        if bits_start >= end {
            return;
        }
        let (a, b) = (&old[at(bits_start)..at(end)], &new[at(bits_start)..at(end)]);
        let mut base = (bits_start - BITMAP_START as u64) * 8;
        for (x, y) in a.chunks(8).zip(b.chunks(8)) {
            let (x, y) = (word(x), word(y));
            if x != y {
                self.cleaned.add(base, !x & y);
                self.dirtied.add(base, x & !y);
            }
            base += 64;
        }
    }

    /// One line per structure that changes; empty when nothing does.
    pub fn lines(&self) -> Vec<String> {
        let mut lines = self.header.clone();
        if self.padding > 0 {
            lines.push(format!(
                "header area: {} bytes of 16..1023 change",
                self.padding
            ));
        }
        if let Some((n, s)) = self.cleaned.clone().line() {
            lines.push(format!("clean bitmap: {n} bits set (now clean): {s}"));
        }
        if let Some((n, s)) = self.dirtied.clone().line() {
            lines.push(format!("clean bitmap: {n} bits cleared (now dirty): {s}"));
        }
        lines
    }
}

/// Up to 8 bytes as a little-endian word (missing bytes zero).
fn word(bytes: &[u8]) -> u64 {
    let mut w = [0u8; 8];
    w[..bytes.len()].copy_from_slice(bytes);
    u64::from_le_bytes(w)
}

/// The header fields that change.
fn header_changes(old: &[u8], new: &[u8]) -> Vec<String> {
    let mut lines = Vec::new();
    if let (Ok(a), Ok(b)) = (Header::unpack(old), Header::unpack(new)) {
        if a.magic != b.magic {
            lines.push(format!(
                "header: magic {:#010x} -> {:#010x}",
                a.magic, b.magic
            ));
        }
        if a.version != b.version {
            lines.push(format!("header: version {} -> {}", a.version, b.version));
        }
        if a.nr_regions != b.nr_regions {
            lines.push(format!(
                "header: nr_regions {} -> {}",
                a.nr_regions, b.nr_regions
            ));
        }
    }
    lines
}

/// What rewriting `old` with `new` (same length, both starting at offset 0) changes, one
/// line per structure; empty when nothing changes.
pub fn describe_changes(old: &[u8], new: &[u8]) -> Vec<String> {
    let mut c = Changes::default();
    c.piece(0, old, new);
    c.lines()
}

#[cfg(test)]
// A list holding one range of regions is a value under test here, not a mistaken
// `vec![a; n]`.
#[allow(clippy::single_range_in_vec_init)]
mod tests {
    use super::*;

    #[test]
    fn ranges_parse_end_exclusive() {
        assert_eq!(
            parse_ranges("0..8, 500..502,7").unwrap(),
            vec![0..8, 500..502, 7..8]
        );
        assert!(parse_ranges("5..5").is_err());
        assert!(parse_ranges("x").is_err());
        assert!(parse_ranges("").is_err());
        assert_eq!(format_ranges(&[0..8, 9..10], 1), "0..8, … (1 more ranges)");
    }

    #[test]
    fn bit_repairs_do_what_the_spec_says() {
        let bits = [0xF0, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF];
        let apply = |r: BitRepair| {
            let mut b = bits;
            r.check(12).map(|()| {
                r.apply(12, 0, &mut b);
                b
            })
        };
        assert_eq!(apply(BitRepair::KeepBits).unwrap(), bits);
        assert_eq!(apply(BitRepair::ForceResync).unwrap(), [0; 8]);
        assert_eq!(
            apply(BitRepair::ClearStrayBits).unwrap(),
            [0xF0, 0x0F, 0, 0, 0, 0, 0, 0]
        );
        let m = apply(BitRepair::MarkClean(vec![0..2])).unwrap();
        assert_eq!(m[0], 0xF3);
        let unsorted = BitRepair::MarkClean(vec![70..80, 1..3, 2..4, 4..5, 100..101]);
        assert_eq!(
            unsorted.merged(),
            BitRepair::MarkClean(vec![1..5, 70..80, 100..101])
        );
        // A piece of the bitmap from bit 64 on meets only the ranges that reach into it.
        let mut piece = [0u8; 2];
        BitRepair::MarkClean(vec![1..5, 60..66, 70..72, 90..100]).apply(200, 64, &mut piece);
        assert_eq!(piece, [0b1100_0011, 0]);
        assert!(apply(BitRepair::MarkClean(vec![0..13])).is_err());
    }

    #[test]
    fn changes_gathered_in_pieces_are_those_of_the_whole() {
        let mut old = vec![0u8; 1024 + 4096];
        Header::new(32768).pack(&mut old);
        let mut new = old.clone();
        // Runs across the pieces' edges, and more ranges than a line shows.
        for i in (1024..1024 + 4096).step_by(40) {
            new[i] = 0x0F;
        }
        new[2047] = 0xFF;
        new[2048] = 0xFF;
        let whole = describe_changes(&old, &new);
        let mut c = Changes::default();
        for off in (0..old.len()).step_by(1024) {
            c.piece(off as u64, &old[off..off + 1024], &new[off..off + 1024]);
        }
        assert_eq!(c.lines(), whole);
        assert!(whole[0].ends_with(", … (72 more ranges)"), "{whole:?}");
    }

    #[test]
    fn changes_are_described() {
        let mut old = vec![0u8; 1536];
        Header::new(16).pack(&mut old);
        old[1024] = 0xFF;
        let mut new = old.clone();
        new[4] = 3;
        new[1024] = 0x0F;
        new[1025] = 0x01;
        new[20] = 9;
        let d = describe_changes(&old, &new);
        assert_eq!(
            d,
            vec![
                "header: version 2 -> 3".to_string(),
                "header area: 1 bytes of 16..1023 change".to_string(),
                "clean bitmap: 1 bits set (now clean): 8..9".to_string(),
                "clean bitmap: 4 bits cleared (now dirty): 4..8".to_string(),
            ]
        );
        assert!(describe_changes(&old, &old).is_empty());
    }
}
