//! Writing era XML as thin-provisioning-tools 1.3.3 does: two spaces per level, fixed
//! attribute order, no declaration, a newline before every element but the first; and, as
//! its 0.9 did, one at the end.

use std::io::{self, Write};

use super::super::sink::{EraSink, Summary};
use crate::text::{put_prefix, put_u64, Counter, Pieces};

/// Bytes gathered before they are handed to the underlying writer.
const CHUNK: usize = 1 << 16;
/// Words of a writeset formatted per piece (32,768 lines, about 1.3 MB).
const PIECE_WORDS: usize = 512;
/// Era-array values formatted per piece (about 1 MB).
const PIECE_ERAS: usize = 1 << 15;

const BIT: &[u8; 17] = b"\n    <bit block=\"";
/// The end of a `<bit>` line, clear and set, padded to one size.
const VALUE: [&[u8; 17]; 2] = [b"\" value=\"false\"/>", b"\" value=\"true\"/> "];
const VALUE_LEN: [usize; 2] = [17, 16];
const ERA: &[u8; 17] = b"\n    <era block=\"";

/// Appends the end of a `<bit>` line.
#[inline]
fn value(b: &mut Vec<u8>, set: bool) {
    put_prefix(b, VALUE[set as usize], VALUE_LEN[set as usize]);
}

/// Eras with a ready-made line end.
const ERA_ENDS_UP_TO: usize = 1000;

/// The end of an `<era>` line, `" era="E"/>`, for the eras below [`ERA_ENDS_UP_TO`] (nearly
/// all of them), padded to one size.
// Each digit is below 10 and fits its byte.
#[allow(clippy::cast_possible_truncation)]
static ERA_ENDS: [([u8; 16], usize); ERA_ENDS_UP_TO] = {
    let mut t = [([0u8; 16], 0usize); ERA_ENDS_UP_TO];
    let mut e = 0;
    while e < ERA_ENDS_UP_TO {
        let mut b = [0u8; 16];
        let head = b"\" era=\"";
        let mut i = 0;
        while i < head.len() {
            b[i] = head[i];
            i += 1;
        }
        if e >= 100 {
            b[i] = b'0' + (e / 100) as u8;
            i += 1;
        }
        if e >= 10 {
            b[i] = b'0' + (e / 10 % 10) as u8;
            i += 1;
        }
        b[i] = b'0' + (e % 10) as u8;
        b[i + 1] = b'"';
        b[i + 2] = b'/';
        b[i + 3] = b'>';
        t[e] = (b, i + 4);
        e += 1;
    }
    t
};

/// Appends the end of an `<era>` line.
#[inline]
fn era_end(b: &mut Vec<u8>, era: u32) {
    match ERA_ENDS.get(era as usize) {
        Some((bytes, len)) => put_prefix(b, bytes, *len),
        None => {
            b.extend_from_slice(b"\" era=\"");
            put_u64(b, era as u64);
            b.extend_from_slice(b"\"/>");
        }
    }
}

/// An [`EraSink`] that writes the XML of `era_dump`. A writeset prints one `<bit>` per
/// origin block (`nr_blocks` of the superblock), plus any set bit past `nr_blocks`.
///
/// Nearly all of the output is `<bit>` and `<era>` lines: they are gathered a batch at a
/// time and formatted on every core ([`Pieces`]), their block numbers counted up in ASCII.
pub struct XmlWriter<W: Write> {
    out: W,
    buf: Vec<u8>,
    nr_blocks: u64,
    /// The block of the first pending word's first bit.
    bit: u64,
    words: Vec<u64>,
    /// The block of the first pending era.
    era_index: u64,
    eras: Vec<u32>,
    pieces: Pieces,
}

/// `<bit>` lines for bits `first..` of `words`; past `nr_blocks`, only the set ones.
fn bit_lines(b: &mut Vec<u8>, first: u64, words: &[u64], nr_blocks: u64) {
    // Room for the lines of the origin's blocks; past it, lines only for the set bits.
    let inside = nr_blocks.saturating_sub(first).min(words.len() as u64 * 64);
    b.reserve(crate::cast::index(inside) * (BIT.len() + 16 + 17));
    let mut c = Counter::new(first);
    for (i, &w) in words.iter().enumerate() {
        let base = first + i as u64 * 64;
        if base + 64 <= nr_blocks {
            for j in 0..64 {
                b.extend_from_slice(BIT);
                c.put(b);
                value(b, w >> j & 1 != 0);
                c.incr();
            }
        } else {
            // The origin ends in this word or before it (fewer than 64 blocks left).
            let left = nr_blocks.saturating_sub(base);
            for j in 0..left {
                b.extend_from_slice(BIT);
                put_u64(b, base + j);
                value(b, w >> j & 1 != 0);
            }
            // A set bit at a time: a writeset longer than the origin (after a shrink, or a
            // damaged length) is mostly words of clear bits, which have no lines.
            let mut past = w >> left << left;
            while past != 0 {
                b.extend_from_slice(BIT);
                put_u64(b, base + u64::from(past.trailing_zeros()));
                value(b, true);
                past &= past - 1;
            }
        }
    }
}

/// `<bit … value="false"/>` lines for blocks `from..to`.
fn clear_lines(b: &mut Vec<u8>, from: u64, to: u64) {
    let mut c = Counter::new(from);
    for _ in from..to {
        b.extend_from_slice(BIT);
        c.put(b);
        value(b, false);
        c.incr();
    }
}

/// `<era>` lines for blocks `first..`.
fn era_lines(b: &mut Vec<u8>, first: u64, eras: &[u32]) {
    b.reserve(eras.len() * (ERA.len() + 16 + 7 + 20 + 3));
    let mut c = Counter::new(first);
    for &era in eras {
        b.extend_from_slice(ERA);
        c.put(b);
        era_end(b, era);
        c.incr();
    }
}

impl<W: Write> XmlWriter<W> {
    /// A writer into `out`.
    pub fn new(out: W) -> XmlWriter<W> {
        let mut pieces = Pieces::new();
        XmlWriter {
            out,
            buf: Vec::with_capacity(CHUNK + 256),
            nr_blocks: 0,
            bit: 0,
            words: Vec::with_capacity(PIECE_WORDS * pieces.batch()),
            era_index: 0,
            eras: Vec::with_capacity(PIECE_ERAS * pieces.batch()),
            pieces,
        }
    }

    /// Flushes what is buffered and returns the underlying writer.
    pub fn into_inner(mut self) -> io::Result<W> {
        self.spill()?;
        self.out.flush()?;
        Ok(self.out)
    }

    fn spill(&mut self) -> io::Result<()> {
        self.out.write_all(&self.buf)?;
        self.buf.clear();
        Ok(())
    }

    /// Adds the line `text` after the pending bits' or eras' lines, whose element it may
    /// close.
    fn line(&mut self, text: &[u8]) -> io::Result<()> {
        if !self.words.is_empty() {
            self.flush_words()?;
        }
        if !self.eras.is_empty() {
            self.flush_eras()?;
        }
        self.buf.push(b'\n');
        self.buf.extend_from_slice(text);
        Ok(())
    }

    /// Writes the pending words' lines.
    fn flush_words(&mut self) -> io::Result<()> {
        self.spill()?;
        let (words, first, nr_blocks) = (&self.words, self.bit, self.nr_blocks);
        let n = words.len().div_ceil(PIECE_WORDS);
        self.pieces.write(&mut self.out, n, &|i, b| {
            let w = &words[i * PIECE_WORDS..((i + 1) * PIECE_WORDS).min(words.len())];
            bit_lines(b, first + (i * PIECE_WORDS * 64) as u64, w, nr_blocks);
        })?;
        self.bit += words.len() as u64 * 64;
        self.words.clear();
        Ok(())
    }

    /// Adds `items` to the pending ones that `pending` selects, writing them with `flush`
    /// whenever they fill its capacity: the lines are written a buffer at a time, whatever
    /// the size of the pieces a reader hands over.
    fn pend<T: Copy>(
        &mut self,
        items: &[T],
        pending: fn(&mut Self) -> &mut Vec<T>,
        flush: fn(&mut Self) -> io::Result<()>,
    ) -> io::Result<()> {
        let mut rest = items;
        while !rest.is_empty() {
            let p = pending(self);
            let room = p.capacity() - p.len();
            let n = rest.len().min(room.max(1));
            p.extend_from_slice(&rest[..n]);
            rest = &rest[n..];
            if p.len() >= p.capacity() {
                flush(self)?;
            }
        }
        Ok(())
    }

    /// Writes the pending eras' lines.
    fn flush_eras(&mut self) -> io::Result<()> {
        self.spill()?;
        let (eras, first) = (&self.eras, self.era_index);
        let n = eras.len().div_ceil(PIECE_ERAS);
        self.pieces.write(&mut self.out, n, &|i, b| {
            let e = &eras[i * PIECE_ERAS..((i + 1) * PIECE_ERAS).min(eras.len())];
            era_lines(b, first + (i * PIECE_ERAS) as u64, e);
        })?;
        self.era_index += eras.len() as u64;
        self.eras.clear();
        Ok(())
    }
}

impl<W: Write> EraSink for XmlWriter<W> {
    fn superblock_begin(&mut self, h: &Summary) -> io::Result<()> {
        self.nr_blocks = h.nr_blocks as u64;
        self.buf
            .extend_from_slice(b"<superblock uuid=\"\" block_size=\"");
        put_u64(&mut self.buf, h.block_size as u64);
        self.buf.extend_from_slice(b"\" nr_blocks=\"");
        put_u64(&mut self.buf, h.nr_blocks as u64);
        self.buf.extend_from_slice(b"\" current_era=\"");
        put_u64(&mut self.buf, h.current_era as u64);
        self.buf.extend_from_slice(b"\">");
        Ok(())
    }

    fn writeset_begin(&mut self, era: u32, nr_bits: u32) -> io::Result<()> {
        self.buf.extend_from_slice(b"\n  <writeset era=\"");
        put_u64(&mut self.buf, era as u64);
        self.buf.extend_from_slice(b"\" nr_bits=\"");
        put_u64(&mut self.buf, nr_bits as u64);
        self.buf.extend_from_slice(b"\">");
        self.bit = 0;
        Ok(())
    }

    fn writeset_words(&mut self, words: &[u64]) -> io::Result<()> {
        self.pend(words, |w| &mut w.words, Self::flush_words)
    }

    fn writeset_end(&mut self) -> io::Result<()> {
        self.flush_words()?;
        // A writeset shorter than the origin (it predates a grow) has no bit past its end.
        let (from, to) = (self.bit, self.nr_blocks);
        if from < to {
            let per = (PIECE_WORDS * 64) as u64;
            let n = crate::cast::index((to - from).div_ceil(per));
            self.pieces.write(&mut self.out, n, &|i, b| {
                let start = from + i as u64 * per;
                clear_lines(b, start, (start + per).min(to));
            })?;
            self.bit = to;
        }
        self.line(b"  </writeset>")
    }

    fn era_array_begin(&mut self) -> io::Result<()> {
        self.line(b"  <era_array>")?;
        self.era_index = 0;
        Ok(())
    }

    fn eras(&mut self, eras: &[u32]) -> io::Result<()> {
        self.pend(eras, |w| &mut w.eras, Self::flush_eras)
    }

    fn era_array_end(&mut self) -> io::Result<()> {
        self.line(b"  </era_array>")
    }

    fn superblock_end(&mut self) -> io::Result<()> {
        self.line(b"</superblock>")?;
        // The document ends with a newline, as thin-provisioning-tools 0.9's did.
        self.buf.push(b'\n');
        self.spill()?;
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What [`bit_lines`] writes, a line at a time.
    fn plain_bit_lines(first: u64, words: &[u64], nr_blocks: u64) -> String {
        let mut s = String::new();
        for (i, &w) in words.iter().enumerate() {
            for j in 0..64 {
                let (block, set) = (first + i as u64 * 64 + j, w >> j & 1 != 0);
                if block < nr_blocks || set {
                    s += &format!("\n    <bit block=\"{block}\" value=\"{set}\"/>");
                }
            }
        }
        s
    }

    #[test]
    fn bit_lines_are_those_of_every_bit_before_the_end_and_of_set_bits_past_it() {
        let mut rng = crate::pdata::seeded::SplitMix(23);
        let words: Vec<u64> = (0..40)
            .map(|i| match i % 4 {
                0 => 0,
                1 => u64::MAX,
                _ => rng.next() & rng.next(),
            })
            .collect();
        for first in [0, 64, 99_999_936] {
            for end in [0, 1, 63, 64, 65, 640, 1000, 2559, 2560, 4000] {
                let nr_blocks = first + end;
                let mut b = Vec::new();
                bit_lines(&mut b, first, &words, nr_blocks);
                assert_eq!(
                    String::from_utf8(b).unwrap(),
                    plain_bit_lines(first, &words, nr_blocks),
                    "first {first}, nr_blocks {nr_blocks}"
                );
            }
        }
    }

    #[test]
    fn bits_past_nr_blocks_print_only_when_set_and_short_writesets_are_padded() {
        let mut x = XmlWriter::new(Vec::new());
        let h = Summary {
            block_size: 8,
            nr_blocks: 2,
            current_era: 1,
        };
        x.superblock_begin(&h).unwrap();
        x.writeset_begin(1, 3).unwrap();
        x.writeset_words(&[0b101]).unwrap();
        x.writeset_end().unwrap();
        x.writeset_begin(0, 1).unwrap();
        x.writeset_words(&[0]).unwrap();
        x.writeset_end().unwrap();
        x.era_array_begin().unwrap();
        x.eras(&[1, 0]).unwrap();
        x.era_array_end().unwrap();
        x.superblock_end().unwrap();
        let text = String::from_utf8(x.into_inner().unwrap()).unwrap();
        assert_eq!(
            text,
            "<superblock uuid=\"\" block_size=\"8\" nr_blocks=\"2\" current_era=\"1\">\n  \
             <writeset era=\"1\" nr_bits=\"3\">\n    <bit block=\"0\" value=\"true\"/>\n    \
             <bit block=\"1\" value=\"false\"/>\n    <bit block=\"2\" value=\"true\"/>\n  \
             </writeset>\n  <writeset era=\"0\" nr_bits=\"1\">\n    \
             <bit block=\"0\" value=\"false\"/>\n    <bit block=\"1\" value=\"false\"/>\n  \
             </writeset>\n  <era_array>\n    <era block=\"0\" era=\"1\"/>\n    \
             <era block=\"1\" era=\"0\"/>\n  </era_array>\n</superblock>\n"
        );
    }
}
