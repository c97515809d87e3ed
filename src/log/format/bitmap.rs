//! The clean bitmap: one bit per region from byte 1024, least significant bit first,
//! 1 = clean (in sync), 0 = dirty (must be resynchronised).

use std::ops::Range;

use super::geometry::{bitmap_bytes_used, bitset_bytes, BITMAP_OFFSET};
use crate::log::error::require_bytes;
use crate::log::LogError;

/// The clean bits of `nr_regions` regions, held in the kernel's layout (whole 64-bit words,
/// so the bits past the last region are kept as well).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bitmap {
    nr_regions: u64,
    bytes: Vec<u8>,
}

impl Bitmap {
    /// Every region clean (`clean`) or dirty, trailing bits clear, as the kernel leaves them.
    pub fn filled(nr_regions: u64, clean: bool) -> Bitmap {
        let mut b = Bitmap {
            nr_regions,
            bytes: vec![0; crate::cast::index(bitset_bytes(nr_regions))],
        };
        if clean {
            b.set_range(0..nr_regions, true);
        }
        b
    }

    /// Reads the bits of `nr_regions` regions from `bitmap` (the bytes from offset 1024 on).
    /// Only `ceil(nr_regions / 8)` bytes are required; the rest of the last 64-bit word is
    /// taken if present (a log written with 32-bit rounding may stop earlier).
    pub fn unpack(nr_regions: u64, bitmap: &[u8]) -> Result<Bitmap, LogError> {
        let used = bitmap_bytes_used(nr_regions);
        require_bytes(
            "clean bitmap",
            BITMAP_OFFSET + used,
            BITMAP_OFFSET + bitmap.len() as u64,
        )?;
        // At most 7 bytes past `bitmap`'s end.
        let full = crate::cast::index(bitset_bytes(nr_regions));
        let mut bytes = vec![0; full];
        let have = full.min(bitmap.len());
        bytes[..have].copy_from_slice(&bitmap[..have]);
        Ok(Bitmap { nr_regions, bytes })
    }

    /// Writes the bitmap into `bitmap` (the bytes from offset 1024 on), which must hold
    /// [`Bitmap::byte_len`] bytes.
    pub fn pack(&self, bitmap: &mut [u8]) {
        bitmap[..self.bytes.len()].copy_from_slice(&self.bytes);
    }

    /// Bytes the bitmap occupies on disk.
    pub fn byte_len(&self) -> usize {
        self.bytes.len()
    }

    /// Number of regions described.
    pub fn nr_regions(&self) -> u64 {
        self.nr_regions
    }

    /// Whether region `r` is clean; regions past the end read as dirty.
    pub fn is_clean(&self, r: u64) -> bool {
        r < self.nr_regions && self.bit(r)
    }

    fn bit(&self, i: u64) -> bool {
        self.bytes
            .get((i / 8) as usize)
            .is_some_and(|b| b & (1 << (i % 8)) != 0)
    }

    fn put(&mut self, i: u64, v: bool) {
        if let Some(b) = self.bytes.get_mut((i / 8) as usize) {
            if v {
                *b |= 1 << (i % 8);
            } else {
                *b &= !(1 << (i % 8));
            }
        }
    }

    /// Marks region `r` clean or dirty; regions past the end are ignored.
    pub fn set(&mut self, r: u64, clean: bool) {
        if r < self.nr_regions {
            self.put(r, clean);
        }
    }

    /// Marks the regions `range` clean or dirty (clipped to the region count).
    pub fn set_range(&mut self, range: Range<u64>, clean: bool) {
        let end = range.end.min(self.nr_regions);
        let mut i = range.start;
        while i < end {
            if i % 8 == 0 && end - i >= 8 {
                self.bytes[(i / 8) as usize] = if clean { 0xFF } else { 0 };
                i += 8;
            } else {
                self.put(i, clean);
                i += 1;
            }
        }
    }

    /// Number of clean regions.
    pub fn count_clean(&self) -> u64 {
        let whole = (self.nr_regions / 8) as usize;
        let mut n: u64 = self.bytes[..whole]
            .iter()
            .map(|b| u64::from(b.count_ones()))
            .sum();
        for i in (whole as u64 * 8)..self.nr_regions {
            n += u64::from(self.bit(i));
        }
        n
    }

    /// Number of dirty regions.
    pub fn count_dirty(&self) -> u64 {
        self.nr_regions - self.count_clean()
    }

    /// The dirty regions as ascending, maximal, end-exclusive ranges.
    pub fn dirty_ranges(&self) -> Vec<Range<u64>> {
        self.ranges(false)
    }

    fn ranges(&self, clean: bool) -> Vec<Range<u64>> {
        let mut out: Vec<Range<u64>> = Vec::new();
        let skip = if clean { 0x00 } else { 0xFF };
        let mut i = 0;
        while i < self.nr_regions {
            if i % 8 == 0 && self.nr_regions - i >= 8 && self.bytes[(i / 8) as usize] == skip {
                i += 8;
                continue;
            }
            if self.bit(i) == clean {
                match out.last_mut() {
                    Some(last) if last.end == i => last.end = i + 1,
                    _ => out.push(i..i + 1),
                }
            }
            i += 1;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bits_are_least_significant_first_and_one_means_clean() {
        // Region 0 clean, region 9 clean, everything else dirty.
        let mut raw = vec![0u8; 8];
        raw[0] = 0b0000_0001;
        raw[1] = 0b0000_0010;
        let b = Bitmap::unpack(16, &raw).unwrap();
        assert!(b.is_clean(0) && b.is_clean(9));
        assert!(!b.is_clean(1) && !b.is_clean(8));
        assert_eq!(b.count_clean(), 2);
        assert_eq!(b.dirty_ranges(), vec![1..9, 10..16]);
    }

    #[test]
    fn pack_unpack_round_trip_keeps_trailing_word_bits() {
        let mut raw = vec![0xFFu8; 8];
        raw[0] = 0x0F;
        let b = Bitmap::unpack(10, &raw).unwrap();
        assert_eq!(b.byte_len(), 8);
        assert_eq!(b.count_clean(), 6);
        let mut out = vec![0u8; 8];
        b.pack(&mut out);
        assert_eq!(out, raw);
    }

    #[test]
    fn only_the_used_bytes_are_required() {
        assert!(Bitmap::unpack(10, &[0xFF, 0x03]).is_ok());
        let e = Bitmap::unpack(17, &[0xFF, 0x03]).unwrap_err();
        assert!(e.to_string().starts_with("clean bitmap"));
    }

    #[test]
    fn ranges_can_be_set_and_counted() {
        let mut b = Bitmap::filled(100, true);
        assert_eq!(b.count_dirty(), 0);
        b.set_range(3..40, false);
        b.set(99, false);
        b.set(100, false);
        assert_eq!(b.dirty_ranges(), vec![3..40, 99..100]);
        assert_eq!(b.count_dirty(), 38);
        b.set_range(0..200, true);
        assert_eq!(b.count_dirty(), 0);
        assert_eq!(Bitmap::filled(0, true).dirty_ranges(), vec![]);
    }
}
