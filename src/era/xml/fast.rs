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
#[inline]
fn dec(b: &[u8]) -> Option<(u32, usize)> {
    let mut n: u64 = 0;
    let mut k = 0;
    while let Some(&d) = b.get(k) {
        let d = d.wrapping_sub(b'0');
        if d > 9 {
            break;
        }
        n = n * 10 + d as u64;
        if n > u32::MAX as u64 {
            return None;
        }
        k += 1;
    }
    (k > 0).then_some((n as u32, k))
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
#[inline]
pub fn line(buf: &[u8]) -> Option<(Line, usize, usize)> {
    let indent = buf
        .iter()
        .position(|&b| b != b' ' && b != b'\t')
        .unwrap_or(buf.len());
    let mut i = indent;
    let rest = &buf[i..];
    let l = if rest.starts_with(BIT) {
        i += BIT.len();
        let (block, n) = dec(&buf[i..])?;
        i += n;
        let rest = &buf[i..];
        let value = if rest.starts_with(TRUE) {
            i += TRUE.len();
            true
        } else if rest.starts_with(FALSE) {
            i += FALSE.len();
            false
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
    while let Some(b' ' | b'\t' | b'\r') = buf.get(i) {
        i += 1;
    }
    (buf.get(i) == Some(&b'\n')).then_some((l, i + 1, indent))
}

/// What a run of lines is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// Lines for the XML reader.
    Slow,
    /// `<bit>` lines.
    Bits {
        /// Where the blocks of the set bits are in [`Digest::set`].
        set: Range<usize>,
        /// The largest block of a set bit.
        max_set: Option<u32>,
        /// The largest block of a clear bit.
        max_clear: Option<u32>,
    },
    /// `<era>` lines.
    Eras {
        /// Where the eras are in [`Digest::eras`].
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

impl Digest {
    /// Reads the `<bit>` lines from `p` on into one run; returns where they end.
    fn bits(&mut self, buf: &[u8], base: usize, mut p: usize) -> usize {
        let (start, first) = (p, self.set.len());
        let (mut max_set, mut max_clear) = (None, None);
        let mut lines = 0;
        while let Some((Line::Bit { block, value }, len, _)) = line(&buf[p..]) {
            if value {
                self.set.push(block);
                max_set = Some(max_set.map_or(block, |m: u32| m.max(block)));
            } else {
                max_clear = Some(max_clear.map_or(block, |m: u32| m.max(block)));
            }
            lines += 1;
            p += len;
        }
        self.runs.push(Run {
            start: base + start,
            end: base + p,
            lines,
            kind: Kind::Bits {
                set: first..self.set.len(),
                max_set,
                max_clear,
            },
        });
        p
    }

    /// Reads the `<era>` lines from `p` on into one run; returns where they end.
    fn eras(&mut self, buf: &[u8], base: usize, mut p: usize, first: u32) -> usize {
        let (start, from) = (p, self.eras.len());
        let mut next = first as u64;
        let mut contiguous = true;
        let mut max_era = 0;
        let mut lines = 0;
        while let Some((Line::Era { block, era }, len, _)) = line(&buf[p..]) {
            contiguous &= block as u64 == next;
            next = block as u64 + 1;
            self.eras.push(era);
            max_era = max_era.max(era);
            lines += 1;
            p += len;
        }
        self.runs.push(Run {
            start: base + start,
            end: base + p,
            lines,
            kind: Kind::Eras {
                values: from..self.eras.len(),
                first,
                contiguous,
                max_era,
            },
        });
        p
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
