//! The fast path of the era XML reader: the `<bit>` and `<era>` lines that are nearly all
//! of a dump, recognised a line at a time by a small grammar instead of the XML reader,
//! and chunks of the input digested on every core.
//!
//! A line takes the fast path only when it is exactly what `era_dump` writes: indentation,
//! one `<bit block="N" value="true|false"/>` or `<era block="N" era="E"/>`, optional
//! trailing white space and `\n`, numbers that fit in 32 bits. Everything else (another
//! attribute order, quotes, a comment, a number too large) is left to the XML reader,
//! which reads it with all the rules and reports it; the two agree on every line the fast
//! path takes, since such a line means the same to both.

use std::ops::Range;

use rayon::prelude::*;

/// What a fast line holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Line {
    /// `<bit block="N" value="…"/>`.
    Bit {
        /// The block.
        block: u32,
        /// Whether the bit is set.
        value: bool,
    },
    /// `<era block="N" era="E"/>`.
    Era {
        /// The block.
        block: u32,
        /// Its era.
        era: u32,
    },
}

/// A decimal `u32` at the start of `b`: its value and its length; `None` without a digit
/// or past 32 bits.
#[inline(always)]
fn dec(b: &[u8]) -> Option<(u32, usize)> {
    let mut n: u64 = 0;
    let mut k = 0;
    while let Some(&d) = b.get(k) {
        let d = d.wrapping_sub(b'0');
        if d > 9 {
            break;
        }
        // Bounded below: at most ten times u32::MAX plus nine.
        n = n.wrapping_mul(10).wrapping_add(d as u64);
        k += 1;
        // Nine digits always fit; past that, each one is checked (leading zeros are
        // allowed, as the XML reader allows them).
        if k >= 9 && n > u32::MAX as u64 {
            return None;
        }
    }
    // At most u32::MAX, checked above from the tenth digit on.
    #[allow(clippy::cast_possible_truncation)]
    let n = n as u32;
    (k > 0).then_some((n, k))
}

const BIT: &[u8] = b"<bit block=\"";
const ERA: &[u8] = b"<era block=\"";
const TRUE: &[u8] = b"\" value=\"true\"/>";
const FALSE: &[u8] = b"\" value=\"false\"/>";
const ERA_MID: &[u8] = b"\" era=\"";
const END: &[u8] = b"\"/>";

/// Reads the fast line at the start of `buf`: what it holds, its length with its `\n`, and
/// the width of its indentation. `None` if the line is not one.
///
/// Written out by hand rather than with nom's combinators: this runs once per line of a
/// dump, and nom's input methods are not inlined across crates, which cost a third of
/// the reader's time.
#[inline(always)]
pub fn line(buf: &[u8]) -> Option<(Line, usize, usize)> {
    let mut indent = 0;
    while buf.get(indent..indent + 4) == Some(b"    ") {
        indent += 4;
    }
    while let Some(b' ' | b'\t') = buf.get(indent) {
        indent += 1;
    }
    let mut i = indent;
    let rest = &buf[i..];
    let l = if rest.starts_with(BIT) {
        i += BIT.len();
        let (block, n) = dec(&buf[i..])?;
        i += n;
        let rest = &buf[i..];
        let value = if rest.starts_with(FALSE) {
            i += FALSE.len();
            false
        } else if rest.starts_with(TRUE) {
            i += TRUE.len();
            true
        } else {
            return None;
        };
        Line::Bit { block, value }
    } else if rest.starts_with(ERA) {
        i += ERA.len();
        let (block, n) = dec(&buf[i..])?;
        i += n;
        if !buf[i..].starts_with(ERA_MID) {
            return None;
        }
        i += ERA_MID.len();
        let (era, n) = dec(&buf[i..])?;
        i += n;
        if !buf[i..].starts_with(END) {
            return None;
        }
        i += END.len();
        Line::Era { block, era }
    } else {
        return None;
    };
    if buf.get(i) != Some(&b'\n') {
        while let Some(b' ' | b'\t' | b'\r') = buf.get(i) {
            i += 1;
        }
        if buf.get(i) != Some(&b'\n') {
            return None;
        }
    }
    Some((l, i + 1, indent))
}

/// What a run of lines is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// Lines for the XML reader.
    Slow,
    /// `<bit>` lines.
    Bits {
        /// Where the blocks of the set bits are in the digest's `set`.
        set: Range<usize>,
        /// The largest block of a set bit.
        max_set: Option<u32>,
        /// The largest block of a clear bit.
        max_clear: Option<u32>,
    },
    /// `<era>` lines.
    Eras {
        /// Where the eras are in the digest's `eras`.
        values: Range<usize>,
        /// The block of the first line.
        first: u32,
        /// Whether the blocks are `first, first + 1, …`.
        contiguous: bool,
        /// The largest era.
        max_era: u32,
    },
}

/// Consecutive lines of one kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run {
    /// Where the run starts, in the chunk.
    pub start: usize,
    /// Where it ends (after a `\n`, except at the end of a chunk).
    pub end: usize,
    /// How many lines a fast run holds (not counted for slow runs).
    pub lines: u64,
    /// What the lines are.
    pub kind: Kind,
}

/// A piece of a chunk, read: its runs in order, and the values they refer to.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Digest {
    /// The runs.
    pub runs: Vec<Run>,
    /// Blocks of set bits.
    pub set: Vec<u32>,
    /// Eras.
    pub eras: Vec<u32>,
}

/// Bytes of a line compared at once by [`Expect`].
const WINDOW: usize = 48;

/// How era_dump writes the lines of one element: what comes before the block's number, and
/// the next attribute up to its value.
#[derive(Clone, Copy)]
struct Pattern {
    head: &'static [u8; 16],
    tail: &'static [u8],
}

const BIT_LINE: Pattern = Pattern {
    head: b"    <bit block=\"",
    tail: b"\" value=\"",
};
const ERA_LINE: Pattern = Pattern {
    head: b"    <era block=\"",
    tail: b"\" era=\"",
};

/// How the line after the one just read starts when era_dump wrote it: four spaces, the
/// element, the next block's number and the next attribute up to its value, as in
/// `    <bit block="1235" value="`. A line that starts so is read by comparing bytes
/// instead of parsing its number: nearly every line of a dump.
///
/// The bytes where the number is (16 to 32) are two words of their own, counted up with
/// shifts so that they can stay in registers: a byte stored alone and then read back in a
/// wider load would stall the processor on every line.
struct Expect {
    /// Bytes 0..16 and 32..48 (as words 0, 1, 4 and 5).
    words: [u64; WINDOW / 8],
    /// Bytes 16..24 and 24..32.
    mid: (u64, u64),
    mask: [u64; WINDOW / 8],
    /// Bytes of the expected start.
    len: usize,
    /// Digits of the block number.
    digits: usize,
    block: u32,
    pattern: Pattern,
}

/// The 8 bytes of `w` from `o`, little-endian.
#[inline(always)]
fn word(w: &[u8; WINDOW], o: usize) -> u64 {
    u64::from_le_bytes([
        w[o],
        w[o + 1],
        w[o + 2],
        w[o + 3],
        w[o + 4],
        w[o + 5],
        w[o + 6],
        w[o + 7],
    ])
}

impl Expect {
    /// The expected start of the line for `block`.
    fn new(pattern: Pattern, block: u32) -> Expect {
        let Pattern { head, tail } = pattern;
        let mut bytes = [0u8; WINDOW];
        bytes[..16].copy_from_slice(head);
        let mut digits = [0u8; 10];
        let mut k = digits.len();
        let mut v = block;
        loop {
            k -= 1;
            digits[k] = b'0' + (v % 10) as u8;
            v /= 10;
            if v == 0 {
                break;
            }
        }
        let n = digits.len() - k;
        bytes[16..16 + n].copy_from_slice(&digits[k..]);
        bytes[16 + n..16 + n + tail.len()].copy_from_slice(tail);
        let len = 16 + n + tail.len();
        let mut words = [0u64; WINDOW / 8];
        let mut mask = [0u64; WINDOW / 8];
        for j in 0..WINDOW / 8 {
            words[j] = word(&bytes, 8 * j);
            let inside = len.saturating_sub(8 * j).min(8);
            mask[j] = if inside == 8 {
                u64::MAX
            } else {
                (1u64 << (8 * inside)) - 1
            };
        }
        Expect {
            words,
            mid: (words[2], words[3]),
            mask,
            len,
            digits: n,
            block,
            pattern,
        }
    }

    /// The expectation for the line after the one for `block`, if there is a next block.
    fn after(pattern: Pattern, block: u32) -> Option<Expect> {
        Some(Expect::new(pattern, block.checked_add(1)?))
    }

    /// Whether `buf` starts as expected.
    #[inline(always)]
    fn matches(&self, buf: &[u8]) -> bool {
        let Some(w) = buf.get(..WINDOW) else {
            return false;
        };
        let Ok(w) = <&[u8; WINDOW]>::try_from(w) else {
            return false;
        };
        let m = &self.mask;
        let fixed = ((word(w, 0) ^ self.words[0]) & m[0])
            | ((word(w, 8) ^ self.words[1]) & m[1])
            | ((word(w, 32) ^ self.words[4]) & m[4])
            | ((word(w, 40) ^ self.words[5]) & m[5]);
        let number = ((word(w, 16) ^ self.mid.0) & m[2]) | ((word(w, 24) ^ self.mid.1) & m[3]);
        fixed | number == 0
    }

    /// Moves on to the next block; `false` past the last one.
    #[inline(always)]
    fn advance(&mut self) -> bool {
        let Some(next) = self.block.checked_add(1) else {
            return false;
        };
        self.block = next;
        let mut i = self.digits;
        while i > 0 {
            i -= 1;
            let w = if i < 8 {
                &mut self.mid.0
            } else {
                &mut self.mid.1
            };
            let shift = 8 * (i % 8);
            if (*w >> shift) & 0xff == b'9' as u64 {
                // '9' - '0' = 9: back to '0', carry on.
                *w -= 9 << shift;
            } else {
                *w += 1 << shift;
                return true;
            }
        }
        // 99…9 + 1: one digit more.
        *self = Expect::new(self.pattern, next);
        true
    }
}

/// Moves `e` on to the next block, or drops it past the last one.
#[inline(always)]
fn advance(e: &mut Option<Expect>) {
    if let Some(x) = e {
        if !x.advance() {
            *e = None;
        }
    }
}

/// What follows the block's attribute in a line of `<era>` (`ERA`) or `<bit>` (not `ERA`),
/// read from `t` when [`Expect`] matched the line up to it: the value (an era, or 1 for a
/// set bit and 0 for a clear one) and how many bytes of the line are left with its `\n`.
#[inline(always)]
fn value<const ERA: bool>(t: &[u8]) -> Option<(u32, usize)> {
    if ERA {
        let (era, n) = dec(t)?;
        t[n..].starts_with(b"\"/>\n").then_some((era, n + 4))
    } else if t.starts_with(b"false\"/>\n") {
        Some((0, 9))
    } else if t.starts_with(b"true\"/>\n") {
        Some((1, 8))
    } else {
        None
    }
}

/// The next line of a run of `<era>` (`ERA`) or `<bit>` lines at the start of `rest`: its
/// block, its value (as [`value`] gives it) and its length. `expect` is tried first, then the
/// line is parsed, and `expect` is set for the line after. Generic and inlined so that each
/// run keeps its own copy of the loop with nothing called through a pointer: this is the
/// inner loop of the reader.
#[inline(always)]
fn next_line<const ERA: bool>(
    rest: &[u8],
    expect: &mut Option<Expect>,
) -> Option<(u32, u32, usize)> {
    if let Some(e) = expect {
        if e.matches(rest) {
            if let Some((v, n)) = value::<ERA>(&rest[e.len..]) {
                let hit = (e.block, v, e.len + n);
                advance(expect);
                return Some(hit);
            }
        }
    }
    let (l, len, indent) = line(rest)?;
    let (block, v, pattern) = match l {
        Line::Era { block, era } if ERA => (block, era, ERA_LINE),
        Line::Bit { block, value } if !ERA => (block, u32::from(value), BIT_LINE),
        _ => return None,
    };
    *expect = Expect::after(pattern, block).filter(|_| indent == 4);
    Some((block, v, len))
}

impl Digest {
    /// Reads the `<bit>` lines from `p` on into one run; returns where they end.
    fn bits(&mut self, buf: &[u8], base: usize, p: usize) -> usize {
        let first = self.set.len();
        let (mut max_set, mut max_clear) = (None, None);
        let (end, lines) = self.lines::<false>(buf, p, |d, block, value| {
            let max = if value == 1 {
                d.set.push(block);
                &mut max_set
            } else {
                &mut max_clear
            };
            *max = Some(max.map_or(block, |m: u32| m.max(block)));
        });
        let set = first..self.set.len();
        let kind = Kind::Bits {
            set,
            max_set,
            max_clear,
        };
        self.push(base, p..end, lines, kind)
    }

    /// Reads the `<era>` lines from `p` on into one run; returns where they end.
    fn eras(&mut self, buf: &[u8], base: usize, p: usize, first: u32) -> usize {
        let from = self.eras.len();
        let mut next = first as u64;
        let (mut contiguous, mut max_era) = (true, 0);
        let (end, lines) = self.lines::<true>(buf, p, |d, block, era| {
            contiguous &= block as u64 == next;
            next = block as u64 + 1;
            d.eras.push(era);
            max_era = max_era.max(era);
        });
        let values = from..self.eras.len();
        let kind = Kind::Eras {
            values,
            first,
            contiguous,
            max_era,
        };
        self.push(base, p..end, lines, kind)
    }

    /// Reads the lines of `<era>` (`ERA`) or `<bit>` from `p` on, each block and value handed
    /// to `each` with the digest; returns where they end and how many there were.
    #[inline(always)]
    fn lines<const ERA: bool>(
        &mut self,
        buf: &[u8],
        mut p: usize,
        mut each: impl FnMut(&mut Self, u32, u32),
    ) -> (usize, u64) {
        let mut lines = 0;
        let mut expect = None;
        while let Some((block, value, len)) = next_line::<ERA>(&buf[p..], &mut expect) {
            each(self, block, value);
            lines += 1;
            p += len;
        }
        (p, lines)
    }

    /// Adds the run of `lines` lines at `at` (from `base`) of kind `kind`; returns where it
    /// ends.
    fn push(&mut self, base: usize, at: Range<usize>, lines: u64, kind: Kind) -> usize {
        self.runs.push(Run {
            start: base + at.start,
            end: base + at.end,
            lines,
            kind,
        });
        at.end
    }

    /// Adds the line `start..end` to the slow run at the end, or starts one.
    fn slow(&mut self, base: usize, start: usize, end: usize) {
        match self.runs.last_mut() {
            Some(r) if r.kind == Kind::Slow => r.end = base + end,
            _ => self.runs.push(Run {
                start: base + start,
                end: base + end,
                lines: 0,
                kind: Kind::Slow,
            }),
        }
    }
}

/// Reads `buf`, which starts at `base` in its chunk and at a line start unless
/// `mid_line` (then its first line is left to the XML reader).
pub fn digest(buf: &[u8], base: usize, mid_line: bool) -> Digest {
    let mut d = Digest::default();
    let line_end = |p: usize| memchr::memchr(b'\n', &buf[p..]).map_or(buf.len(), |i| p + i + 1);
    let mut p = 0;
    if mid_line && !buf.is_empty() {
        p = line_end(0);
        d.slow(base, 0, p);
    }
    while p < buf.len() {
        p = match line(&buf[p..]) {
            Some((Line::Bit { .. }, _, _)) => d.bits(buf, base, p),
            Some((Line::Era { block, .. }, _, _)) => d.eras(buf, base, p, block),
            None => {
                let e = line_end(p);
                d.slow(base, p, e);
                e
            }
        };
    }
    d
}

/// Smallest piece of a chunk worth a task of its own.
const MIN_PIECE: usize = 1 << 16;

/// Reads a chunk on every core: pieces split at line ends, digested in parallel, in order.
pub fn digest_chunk(buf: &[u8], mid_line: bool) -> Vec<Digest> {
    let pieces = (rayon::current_num_threads() * 4).clamp(1, buf.len() / MIN_PIECE + 1);
    let mut bounds = vec![0];
    for k in 1..pieces {
        let at = (buf.len() * k / pieces).max(*bounds.last().unwrap_or(&0));
        let cut = memchr::memchr(b'\n', &buf[at..]).map_or(buf.len(), |i| at + i + 1);
        if cut < buf.len() && cut > *bounds.last().unwrap_or(&0) {
            bounds.push(cut);
        }
    }
    bounds.push(buf.len());
    bounds
        .par_windows(2)
        .map(|w| digest(&buf[w[0]..w[1]], w[0], mid_line && w[0] == 0))
        .collect()
}

#[cfg(test)]
// Tests build their fixtures with casts of small, known values.
#[allow(clippy::cast_possible_truncation)]
mod tests {
    use super::*;

    #[test]
    fn lines_as_era_dump_writes_them() {
        assert_eq!(
            line(b"    <bit block=\"12\" value=\"true\"/>\nx"),
            Some((
                Line::Bit {
                    block: 12,
                    value: true
                },
                35,
                4
            ))
        );
        assert_eq!(
            line(b"\t<era block=\"4294967295\" era=\"007\"/> \r\n"),
            Some((
                Line::Era {
                    block: u32::MAX,
                    era: 7
                },
                39,
                1
            ))
        );
        for other in [
            &b"<bit block=\"1\" value=\"true\"/>"[..],
            b"<bit block=\"4294967296\" value=\"true\"/>\n",
            b"<bit block=\"\" value=\"true\"/>\n",
            b"<bit value=\"true\" block=\"1\"/>\n",
            b"<bit block='1' value='true'/>\n",
            b"<bit block=\"1\" value=\"true\"/><bit block=\"2\" value=\"true\"/>\n",
            b"<bit block=\"1\" value=\"True\"/>\n",
            b"<bit block=\"-1\" value=\"true\"/>\n",
            b"<era block=\"1\" era=\"2\" />\n",
            b"<!-- <era block=\"1\" era=\"2\"/> -->\n",
        ] {
            assert_eq!(line(other), None, "{}", String::from_utf8_lossy(other));
        }
    }

    /// The bytes compared by [`Expect`] read as [`line`] reads them, whatever the
    /// number of digits, on both sides of every change of it.
    #[test]
    fn expected_lines_read_as_parsed_lines() {
        let mut doc = Vec::new();
        let mut want = Vec::new();
        let blocks: Vec<u32> = [0u32, 8, 98, 998, 99_998, 9_999_998, 999_999_998]
            .iter()
            .flat_map(|&b| b..b + 4)
            .chain([4_294_967_293, 4_294_967_294, 4_294_967_295])
            .collect();
        for (i, &b) in blocks.iter().enumerate() {
            let v = i % 3 == 0;
            doc.extend_from_slice(format!("    <bit block=\"{b}\" value=\"{v}\"/>\n").as_bytes());
            want.push(Line::Bit { block: b, value: v });
        }
        // One that breaks the sequence and one written another way.
        doc.extend_from_slice(
            b"    <bit block=\"7\" value=\"true\"/>\n  <bit block=\"8\" value=\"true\"/>\n",
        );
        want.push(Line::Bit {
            block: 7,
            value: true,
        });
        want.push(Line::Bit {
            block: 8,
            value: true,
        });
        for (i, &b) in blocks.iter().enumerate() {
            doc.extend_from_slice(
                format!("    <era block=\"{b}\" era=\"{}\"/>\n", i * 37).as_bytes(),
            );
            want.push(Line::Era {
                block: b,
                era: i as u32 * 37,
            });
        }
        doc.extend_from_slice(b"    <era block=\"1\" era=\"4294967296\"/>\n");
        let d = digest(&doc, 0, false);
        let mut got = Vec::new();
        let (mut s, mut e) = (0, 0);
        for r in &d.runs {
            match &r.kind {
                Kind::Bits { .. } => {
                    for l in doc[r.start..r.end].split_inclusive(|&b| b == b'\n') {
                        got.push(line(l).map(|x| x.0));
                    }
                    s += r.lines;
                }
                Kind::Eras { values, .. } => {
                    for (l, &era) in doc[r.start..r.end]
                        .split_inclusive(|&b| b == b'\n')
                        .zip(&d.eras[values.clone()])
                    {
                        let parsed = line(l).map(|x| x.0);
                        assert!(matches!(parsed, Some(Line::Era { era: x, .. }) if x == era));
                        got.push(parsed);
                    }
                    e += r.lines;
                }
                Kind::Slow => {}
            }
        }
        assert_eq!(got, want.iter().map(|&l| Some(l)).collect::<Vec<_>>());
        assert_eq!((s, e), (blocks.len() as u64 + 2, blocks.len() as u64));
        let set: Vec<u32> = want
            .iter()
            .filter_map(|l| match l {
                Line::Bit { block, value: true } => Some(*block),
                _ => None,
            })
            .collect();
        assert_eq!(d.set, set);
        assert_eq!(d.runs.last().map(|r| &r.kind), Some(&Kind::Slow));
    }

    #[test]
    fn runs_group_lines_and_keep_what_is_checked() {
        let doc = b"<writeset era=\"1\" nr_bits=\"8\">\n  <bit block=\"0\" value=\"false\"/>\n  \
                    <bit block=\"5\" value=\"true\"/>\n  <bit block=\"2\" value=\"true\"/>\n\
                    </writeset>\n<era block=\"3\" era=\"9\"/>\n<era block=\"4\" era=\"2\"/>\n\
                    <era block=\"6\" era=\"1\"/>\n";
        let d = digest(doc, 100, false);
        let kinds: Vec<_> = d.runs.iter().map(|r| (r.kind.clone(), r.lines)).collect();
        assert_eq!(
            kinds,
            vec![
                (Kind::Slow, 0),
                (
                    Kind::Bits {
                        set: 0..2,
                        max_set: Some(5),
                        max_clear: Some(0)
                    },
                    3
                ),
                (Kind::Slow, 0),
                (
                    Kind::Eras {
                        values: 0..3,
                        first: 3,
                        contiguous: false,
                        max_era: 9
                    },
                    3
                ),
            ]
        );
        assert_eq!(d.set, vec![5, 2]);
        assert_eq!(d.eras, vec![9, 2, 1]);
        assert_eq!(d.runs[0].start, 100);
        assert_eq!(d.runs.last().unwrap().end, 100 + doc.len());
        assert!(d.runs.windows(2).all(|w| w[0].end == w[1].start));
        let mid = digest(&doc[40..], 0, true);
        assert_eq!(mid.runs[0].kind, Kind::Slow);
    }

    #[test]
    fn a_chunk_splits_at_line_ends_into_pieces_that_cover_it() {
        let mut doc = Vec::new();
        for b in 0..200_000u32 {
            doc.extend_from_slice(
                format!("    <era block=\"{b}\" era=\"{}\"/>\n", b % 7).as_bytes(),
            );
        }
        let ds = digest_chunk(&doc, false);
        let runs: Vec<&Run> = ds.iter().flat_map(|d| d.runs.iter()).collect();
        assert_eq!(runs.first().unwrap().start, 0);
        assert_eq!(runs.last().unwrap().end, doc.len());
        assert!(runs.windows(2).all(|w| w[0].end == w[1].start));
        let lines: u64 = runs.iter().map(|r| r.lines).sum();
        assert_eq!(lines, 200_000);
        assert!(runs.iter().all(|r| matches!(
            r.kind,
            Kind::Eras {
                contiguous: true,
                ..
            }
        )));
    }
}
