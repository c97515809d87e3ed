//! The bit-level repairs of `log_repair` and the description of what a rewrite changes.

use std::ops::Range;

use super::error::LogError;
use super::format::bitmap::Bitmap;
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
    /// Mark these regions clean (unsafe unless the legs are known identical there).
    MarkClean(Vec<Range<u64>>),
}

impl BitRepair {
    /// The bitmap of `nr_regions` regions after the repair of `bits` (read for the same
    /// count).
    pub fn apply(&self, bits: &Bitmap) -> Result<Bitmap, LogError> {
        let n = bits.nr_regions();
        Ok(match self {
            BitRepair::KeepBits => bits.clone(),
            BitRepair::ForceResync => Bitmap::filled(n, false),
            BitRepair::ClearStrayBits => {
                let mut b = bits.clone();
                b.clear_stray_bits();
                b
            }
            BitRepair::MarkClean(ranges) => {
                let mut b = bits.clone();
                for r in ranges {
                    if r.end > n {
                        return Err(LogError::Invalid(format!(
                            "range {}..{} goes past the last region ({n} regions)",
                            r.start, r.end
                        )));
                    }
                    b.set_range(r.clone(), true);
                }
                b
            }
        })
    }
}

fn bit(bytes: &[u8], i: usize) -> bool {
    bytes.get(i / 8).is_some_and(|b| b & (1 << (i % 8)) != 0)
}

fn push(ranges: &mut Vec<Range<u64>>, i: u64) {
    match ranges.last_mut() {
        Some(last) if last.end == i => last.end = i + 1,
        _ => ranges.push(i..i + 1),
    }
}

/// What rewriting `old` with `new` (same length, both starting at offset 0) changes, one
/// line per structure; empty when nothing changes.
pub fn describe_changes(old: &[u8], new: &[u8]) -> Vec<String> {
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
    let end = old.len().min(new.len());
    let pad = BITMAP_START;
    let padding_changed = (HEADER_SIZE..pad.min(end))
        .filter(|&i| old[i] != new[i])
        .count();
    if padding_changed > 0 {
        lines.push(format!(
            "header area: {padding_changed} bytes of 16..1023 change"
        ));
    }
    if end > pad {
        let (a, b) = (&old[pad..end], &new[pad..end]);
        let mut cleaned = Vec::new();
        let mut dirtied = Vec::new();
        for (k, (x, y)) in a.iter().zip(b).enumerate() {
            if x == y {
                continue;
            }
            for j in 0..8 {
                let i = k * 8 + j;
                match (bit(a, i), bit(b, i)) {
                    (false, true) => push(&mut cleaned, i as u64),
                    (true, false) => push(&mut dirtied, i as u64),
                    _ => {}
                }
            }
        }
        if !cleaned.is_empty() {
            lines.push(format!(
                "clean bitmap: {} bits set (now clean): {}",
                count(&cleaned),
                format_ranges(&cleaned, 32)
            ));
        }
        if !dirtied.is_empty() {
            lines.push(format!(
                "clean bitmap: {} bits cleared (now dirty): {}",
                count(&dirtied),
                format_ranges(&dirtied, 32)
            ));
        }
    }
    lines
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
        let mut raw = vec![0xFFu8; 8];
        raw[0] = 0xF0;
        let bits = Bitmap::unpack(12, &raw).unwrap();
        assert_eq!(BitRepair::KeepBits.apply(&bits).unwrap(), bits);
        let f = BitRepair::ForceResync.apply(&bits).unwrap();
        assert_eq!((f.count_dirty(), f.stray_bits()), (12, 0));
        let c = BitRepair::ClearStrayBits.apply(&bits).unwrap();
        assert_eq!((c.count_clean(), c.stray_bits()), (bits.count_clean(), 0));
        let m = BitRepair::MarkClean(vec![0..2]).apply(&bits).unwrap();
        assert_eq!(m.dirty_ranges(), vec![2..4]);
        assert!(BitRepair::MarkClean(vec![0..13]).apply(&bits).is_err());
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
