//! The log buffer read from its device in bounded pieces: a log of 2^32 - 1 regions has a
//! 512 MiB bitmap, and no reader needs it whole. The counts a report gives and the dirty
//! ranges are worked out piece by piece, with the same results as on the whole buffer.

use std::ops::Range;

use crate::pdata::io::{AlignedBuf, ByteIo};

use super::error::LogError;
use super::format::geometry::{bitset_bytes, BITMAP_OFFSET};

/// Bytes read at a time: a multiple of every logical block size (so that each piece is an
/// aligned `O_DIRECT` read) and of the bitmap's 64-bit words.
pub const PIECE_BYTES: u64 = 4 << 20;

/// What is done with each piece read: given its offset and its bytes.
pub type PieceFn<'f> = dyn FnMut(u64, &[u8]) -> Result<(), LogError> + 'f;

/// Reads the first `len` bytes of `io` in order, `PIECE_BYTES` at a time, and hands each
/// piece to `f` with its offset. Errors name the whole read, as one read of `len` bytes
/// would.
pub fn read_pieces(io: &dyn ByteIo, len: u64, f: &mut PieceFn<'_>) -> Result<(), LogError> {
    let mut buf = AlignedBuf::zeroed(crate::cast::index(len.min(PIECE_BYTES)));
    let mut off = 0;
    while off < len {
        let n = crate::cast::index((len - off).min(PIECE_BYTES));
        let piece = &mut buf.as_mut_slice()[..n];
        read_piece(io, len, piece, off)?;
        f(off, piece)?;
        off += n as u64;
    }
    Ok(())
}

fn read_piece(io: &dyn ByteIo, len: u64, piece: &mut [u8], off: u64) -> Result<(), LogError> {
    io.read_at(piece, off)
        .map_err(|e| LogError::io(format!("reading the first {len} bytes"), e))
}

/// What the bits of a log say besides its dirty ranges.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BitCounts {
    /// Clean regions.
    pub clean: u64,
    /// Set bits past the last region inside the bitmap's 64-bit words.
    pub stray: u64,
    /// Non-zero bytes after the bitmap's words and before `buf_size`.
    pub stale: u64,
}

/// Bits `[0, n)` of a word.
fn low_bits(n: u64) -> u64 {
    if n >= 64 {
        u64::MAX
    } else {
        (1 << n) - 1
    }
}

/// Counts the clean bits of `nr_regions` regions, the stray bits and the stale bytes in the
/// log's first `buf_size` bytes, one piece at a time.
pub fn count_bits(io: &dyn ByteIo, nr_regions: u64, buf_size: u64) -> Result<BitCounts, LogError> {
    let bits_end = BITMAP_OFFSET + bitset_bytes(nr_regions);
    let mut counts = BitCounts::default();
    read_pieces(io, buf_size, &mut |off, piece| {
        let end = off + piece.len() as u64;
        // Pieces start at multiples of 8 bytes, as the bitmap's words do.
        let (from, to) = (off.max(BITMAP_OFFSET), end.min(bits_end));
        if from < to {
            let words = &piece[crate::cast::index(from - off)..crate::cast::index(to - off)];
            let mut bit = (from - BITMAP_OFFSET) * 8;
            for w in words.chunks_exact(8) {
                let w = u64::from_le_bytes(w.try_into().unwrap_or_default());
                let regions = low_bits(nr_regions.saturating_sub(bit));
                counts.clean += u64::from((w & regions).count_ones());
                counts.stray += u64::from((w & !regions).count_ones());
                bit += 64;
            }
        }
        let stale_from = off.max(bits_end);
        if stale_from < end {
            let rest = &piece[crate::cast::index(stale_from - off)..];
            counts.stale += rest.iter().filter(|&&b| b != 0).count() as u64;
        }
        Ok(())
    })?;
    Ok(counts)
}

/// The dirty regions of a log on its device as ascending, maximal, end-exclusive ranges,
/// read one piece at a time. A read error ends the ranges; [`DirtyRanges::finish`] returns
/// it.
pub struct DirtyRanges<'a> {
    io: &'a dyn ByteIo,
    nr_regions: u64,
    /// `buf_size`: pieces end there at the latest (an aligned read) and errors name it.
    buf_size: u64,
    piece: AlignedBuf,
    /// Device offset and length of the piece held.
    held: Range<u64>,
    /// The next region to look at.
    next: u64,
    error: Option<LogError>,
}

impl<'a> DirtyRanges<'a> {
    /// The dirty ranges of the `nr_regions` regions of the log on `io`, whose buffer is
    /// `buf_size` bytes (checked to fit on the device).
    pub fn new(io: &'a dyn ByteIo, nr_regions: u64, buf_size: u64) -> DirtyRanges<'a> {
        DirtyRanges {
            io,
            nr_regions,
            buf_size,
            piece: AlignedBuf::zeroed(crate::cast::index(buf_size.min(PIECE_BYTES))),
            held: 0..0,
            next: 0,
            error: None,
        }
    }

    /// The read error that ended the ranges early, if any.
    pub fn finish(self) -> Result<(), LogError> {
        self.error.map_or(Ok(()), Err)
    }

    /// The 64-bit word holding region `r`'s bit, read from the device if need be.
    fn word(&mut self, r: u64) -> Result<u64, LogError> {
        let at = BITMAP_OFFSET + r / 64 * 8;
        if !self.held.contains(&at) {
            let start = at / PIECE_BYTES * PIECE_BYTES;
            let len = (self.buf_size - start).min(PIECE_BYTES);
            let piece = &mut self.piece.as_mut_slice()[..crate::cast::index(len)];
            read_piece(self.io, self.buf_size, piece, start)?;
            self.held = start..start + len;
        }
        let i = crate::cast::index(at - self.held.start);
        let bytes = &self.piece.as_slice()[i..i + 8];
        Ok(u64::from_le_bytes(bytes.try_into().unwrap_or_default()))
    }

    /// The first region at or after `self.next` whose bit is `clean`, or `nr_regions`.
    fn seek(&mut self, clean: bool) -> Result<u64, LogError> {
        while self.next < self.nr_regions {
            let w = self.word(self.next)?;
            let w = if clean { w } else { !w };
            let shift = self.next % 64;
            let found = (w >> shift).trailing_zeros();
            if u64::from(found) < 64 - shift {
                return Ok((self.next + u64::from(found)).min(self.nr_regions));
            }
            self.next += 64 - shift;
        }
        Ok(self.nr_regions)
    }

    fn next_range(&mut self) -> Result<Option<Range<u64>>, LogError> {
        let begin = self.seek(false)?;
        if begin >= self.nr_regions {
            self.next = self.nr_regions;
            return Ok(None);
        }
        self.next = begin;
        let end = self.seek(true)?;
        self.next = end;
        Ok(Some(begin..end))
    }
}

impl Iterator for DirtyRanges<'_> {
    type Item = Range<u64>;

    fn next(&mut self) -> Option<Range<u64>> {
        if self.error.is_some() {
            return None;
        }
        match self.next_range() {
            Ok(r) => r,
            Err(e) => {
                self.error = Some(e);
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::format::bitmap::Bitmap;
    use crate::pdata::io::MemIo;

    /// A log buffer of `nr` regions holding `bits`, padded to `len` bytes with `fill`.
    fn log_of(bits: &Bitmap, len: usize, fill: u8) -> MemIo {
        let mut raw = vec![fill; len];
        raw[..crate::cast::index(BITMAP_OFFSET)].fill(0);
        bits.pack(&mut raw[crate::cast::index(BITMAP_OFFSET)..]);
        MemIo::from_bytes(raw)
    }

    #[test]
    fn pieces_give_the_counts_and_ranges_of_the_whole_bitmap() {
        // Two pieces and a half of bits, dirty runs across the pieces' edges.
        let nr = PIECE_BYTES * 8 * 2 + PIECE_BYTES * 4 + 13;
        let mut bits = Bitmap::filled(nr, true);
        let edge = (PIECE_BYTES - BITMAP_OFFSET) * 8;
        for r in [
            0..1,
            5..70,
            edge - 3..edge + 100,
            2 * edge..2 * edge + 1,
            nr - 2..nr,
        ] {
            bits.set_range(r, false);
        }
        bits.set(edge * 2 + 64 * 5 + 1, false);
        let len = BITMAP_OFFSET + bits.byte_len() as u64 + 512;
        let io = log_of(&bits, crate::cast::index(len), 0);
        let mut ranges = DirtyRanges::new(&io, nr, len);
        assert_eq!(ranges.by_ref().collect::<Vec<_>>(), bits.dirty_ranges());
        ranges.finish().unwrap();
        let counts = count_bits(&io, nr, len).unwrap();
        assert_eq!(
            counts,
            BitCounts {
                clean: bits.count_clean(),
                stray: 0,
                stale: 0
            }
        );
    }

    #[test]
    fn stray_bits_and_stale_bytes_are_counted_apart_from_the_regions() {
        let mut raw = vec![0xFFu8; 8];
        raw[0] = 0xF0;
        let bits = Bitmap::unpack(12, &raw).unwrap();
        let io = log_of(&bits, 1536, 0x11);
        let counts = count_bits(&io, 12, 1536).unwrap();
        assert_eq!(
            counts,
            BitCounts {
                clean: bits.count_clean(),
                // Bits 12..64 of the only word.
                stray: 52,
                stale: 1536 - 1032
            }
        );
        let mut ranges = DirtyRanges::new(&io, 12, 1536);
        assert_eq!(ranges.by_ref().collect::<Vec<_>>(), vec![0..4]);
        ranges.finish().unwrap();
        let none = DirtyRanges::new(&io, 0, 1536).collect::<Vec<_>>();
        assert!(none.is_empty());
    }
}
