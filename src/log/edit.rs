//! A new log buffer described as edits of the one on the device: a header, and bits set or
//! cleared; every other byte kept. Applied one piece at a time, so a writer compares the
//! old buffer with the new, and checksums both, without holding either: it holds only the
//! buffer it finally writes.

use crate::pdata::io::{AlignedBuf, ByteIo};

use super::device::read_prefix;
use super::error::LogError;
use super::format::geometry::{bitset_bytes, BITMAP_OFFSET};
use super::format::header::{Header, HEADER_SIZE};
use super::repair::Changes;
use super::stream::{read_pieces, PIECE_BYTES};

/// Sets (`clean`) or clears the bits `range` of a bitmap of which `bytes` holds the bytes
/// from bit `first` on (`first` a multiple of 8); bits outside `bytes` are left alone.
pub fn set_bits(bytes: &mut [u8], first: u64, range: std::ops::Range<u64>, clean: bool) {
    let end_bit = first + bytes.len() as u64 * 8;
    let (begin, end) = (range.start.max(first), range.end.min(end_bit));
    let mut i = begin;
    while i < end {
        let k = crate::cast::index((i - first) / 8);
        if i % 8 == 0 && end - i >= 8 {
            // Whole bytes at once: a full resync sets every byte of a 512 MiB bitmap.
            let whole = crate::cast::index((end - i) / 8);
            bytes[k..k + whole].fill(if clean { 0xFF } else { 0 });
            i += whole as u64 * 8;
            continue;
        }
        let bit = 1 << (i % 8);
        if clean {
            bytes[k] |= bit;
        } else {
            bytes[k] &= !bit;
        }
        i += 1;
    }
}

/// How the bits change: applied to the bitmap's bytes from bit `first` on (`first` a
/// multiple of 64), for a bitmap of `nr_regions` regions.
pub trait BitEdit {
    /// Edits `bytes` in place.
    fn apply(&self, nr_regions: u64, first: u64, bytes: &mut [u8]);
}

/// The log buffer a writer makes: `header`, and `edit` on the bitmap of `nr_regions`
/// regions (its 64-bit words; the bytes after them are kept).
pub struct NewLog<'e> {
    /// The header to write.
    pub header: Header,
    /// The region count the bitmap has.
    pub nr_regions: u64,
    /// What happens to the bits.
    pub edit: &'e dyn BitEdit,
}

impl NewLog<'_> {
    /// Turns `bytes`, the old buffer's bytes from offset `off`, into the new buffer's.
    pub fn piece(&self, off: u64, bytes: &mut [u8]) {
        let end = off + bytes.len() as u64;
        let head = HEADER_SIZE as u64;
        if off < head {
            let mut packed = [0u8; HEADER_SIZE];
            self.header.pack(&mut packed);
            let n = crate::cast::index(head.min(end) - off);
            bytes[..n].copy_from_slice(&packed[crate::cast::index(off)..][..n]);
        }
        let bits_end = BITMAP_OFFSET + bitset_bytes(self.nr_regions);
        let (from, to) = (off.max(BITMAP_OFFSET), end.min(bits_end));
        if from < to {
            let bits = &mut bytes[crate::cast::index(from - off)..crate::cast::index(to - off)];
            self.edit
                .apply(self.nr_regions, (from - BITMAP_OFFSET) * 8, bits);
        }
    }
}

/// What replacing the log's first `len` bytes by a [`NewLog`] changes.
pub struct Diff {
    /// The changes, for the report.
    pub changes: Changes,
    /// The first 16 bytes on the device: the header the new bits go out under first.
    pub old_header: [u8; HEADER_SIZE],
    /// Whether a byte past the header changes.
    pub rest_changes: bool,
    /// crc32c of the old buffer.
    pub old_crc: u32,
    /// crc32c of the new buffer.
    pub new_crc: u32,
}

/// Compares the log's first `len` bytes with the buffer `new` makes of them, one piece at
/// a time.
pub fn diff(io: &dyn ByteIo, len: u64, new: &NewLog<'_>) -> Result<Diff, LogError> {
    let mut d = Diff {
        changes: Changes::default(),
        old_header: [0; HEADER_SIZE],
        rest_changes: false,
        old_crc: 0,
        new_crc: 0,
    };
    let mut made = vec![0u8; crate::cast::index(len.min(PIECE_BYTES))];
    read_pieces(io, len, &mut |off, old| {
        let made = &mut made[..old.len()];
        made.copy_from_slice(old);
        new.piece(off, made);
        if off == 0 {
            let n = HEADER_SIZE.min(old.len());
            d.old_header[..n].copy_from_slice(&old[..n]);
        }
        let skip = crate::cast::index((HEADER_SIZE as u64).saturating_sub(off)).min(old.len());
        d.rest_changes |= old[skip..] != made[skip..];
        d.changes.piece(off, old, made);
        d.old_crc = crc32c::crc32c_append(d.old_crc, old);
        d.new_crc = crc32c::crc32c_append(d.new_crc, made);
        Ok(())
    })?;
    Ok(d)
}

/// Reads the log's first `len` bytes and makes them the new buffer, in place: the one
/// buffer a writer holds. The bytes read must be those [`diff`] compared (`old_crc`): the
/// report, the backup and the order of the writes were worked out from them.
pub fn build(
    io: &dyn ByteIo,
    len: u64,
    new: &NewLog<'_>,
    old_crc: u32,
) -> Result<AlignedBuf, LogError> {
    let mut buf = read_prefix(io, len)?;
    if crc32c::crc32c(buf.as_slice()) != old_crc {
        return Err(LogError::Changed);
    }
    let piece = crate::cast::index(PIECE_BYTES);
    for (k, bytes) in buf.as_mut_slice().chunks_mut(piece).enumerate() {
        new.piece((k * piece) as u64, bytes);
    }
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::repair::BitRepair;
    use crate::pdata::io::MemIo;

    #[test]
    fn the_comparison_says_what_the_write_needs_and_the_buffer_is_made_from_it() {
        let mut raw = vec![0xA5u8; 1536];
        Header::new(100).pack(&mut raw);
        raw[1024..1040].fill(0xFF);
        let io = MemIo::from_bytes(raw.clone());
        let keep = BitRepair::KeepBits;
        let same = NewLog {
            header: Header::new(100),
            nr_regions: 100,
            edit: &keep,
        };
        let d = diff(&io, 1536, &same).unwrap();
        assert!(!d.rest_changes && d.changes.lines().is_empty());
        assert_eq!(d.old_crc, crc32c::crc32c(&raw));
        let resync = BitRepair::ForceResync;
        let new = NewLog {
            edit: &resync,
            ..same
        };
        let d = diff(&io, 1536, &new).unwrap();
        assert!(d.rest_changes);
        assert_eq!(&d.old_header[..], &raw[..HEADER_SIZE]);
        let built = build(&io, 1536, &new, d.old_crc).unwrap();
        assert_eq!(crc32c::crc32c(built.as_slice()), d.new_crc);
        // Regions 0..100 and the rest of their two words dirty; the rest kept.
        assert!(built.as_slice()[1024..1040].iter().all(|&b| b == 0));
        assert_eq!(&built.as_slice()[1040..], &raw[1040..]);
        // Bytes other than those compared are never made into a buffer to write.
        assert!(matches!(
            build(&io, 1536, &new, d.old_crc ^ 1),
            Err(LogError::Changed)
        ));
    }

    #[test]
    fn bits_are_set_within_the_piece_only() {
        let mut b = [0u8; 4];
        set_bits(&mut b, 64, 60..70, true);
        assert_eq!(b, [0b0011_1111, 0, 0, 0]);
        set_bits(&mut b, 64, 66..100, true);
        assert_eq!(b, [0xFF, 0xFF, 0xFF, 0xFF]);
        set_bits(&mut b, 64, 65..66, false);
        assert_eq!(b, [0xFD, 0xFF, 0xFF, 0xFF]);
        set_bits(&mut b, 64, 0..64, false);
        assert_eq!(b, [0xFD, 0xFF, 0xFF, 0xFF]);
    }
}
