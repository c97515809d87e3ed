//! Reading era metadata as a stream for a dump or a repair: the writesets in ascending era,
//! then the era array, optionally folded (`--logical`) or salvaged (`--repair`).

use std::io;

use super::feed::{feed, Feed, WORD_CHUNK};
use super::format::superblock::{check_data_block_size, MAX_NR_BLOCKS};
use super::sink::{EraSink, Summary};
use super::view::{View, WritesetRef};
use crate::pdata::bitset::nr_words;
use crate::pdata::checksum::BlockKind;
use crate::pdata::error::{Error, Fault};
use crate::pdata::io::BlockIo;
use crate::pdata::report::{Problems, Severity};
use crate::pdata::walk::Walker;

/// Words handed to a sink at a time when filling a gap.
const FILL_CHUNK: u64 = 512;

/// How to read the metadata.
#[derive(Debug, Clone, Copy, Default)]
pub struct DumpOptions {
    /// Fold the writesets into the era array and print no writeset.
    pub logical: bool,
    /// Skip what cannot be read instead of failing, and make the result restorable.
    pub repair: bool,
    /// Read the held metadata snapshot instead of block 0.
    pub metadata_snap: bool,
}

/// Why a dump stopped.
#[derive(Debug, thiserror::Error)]
pub enum DumpError {
    /// The metadata is damaged (without `repair`), or its superblock is unusable.
    #[error(transparent)]
    Metadata(Error),
    /// Writing the output failed.
    #[error("{0}")]
    Io(#[from] io::Error),
}

fn invalid(structure: &str, msg: String) -> Error {
    Error::structure(structure, Fault::Invalid(msg))
}

/// Era metadata opened for reading in order.
///
/// In repair mode, what cannot be read is filled in on the safe side for every consumer
/// of era data (listing a block too many is harmless, missing one is not): lost bitset
/// words read as all the origin's blocks in them written in that era (bits past the origin
/// count for nothing), lost era-array entries as the current era. Writesets that cannot be
/// restored (a repeated era, an era above the current one, an impossible length) are
/// dropped; one longer than the origin whose bitset's root cannot be read is cut to the
/// origin's length. Each such decision is recorded as a problem.
pub struct Stream<'a> {
    view: View,
    writesets: Vec<WritesetRef>,
    walker: Walker<'a>,
    repair: bool,
}

impl<'a> Stream<'a> {
    /// Reads the superblock (block 0, or the held snapshot) and the writeset tree.
    pub fn open(io: &'a dyn BlockIo, opts: &DumpOptions) -> Result<Stream<'a>, DumpError> {
        let view = View::open(io, opts.metadata_snap).map_err(DumpError::Metadata)?;
        let sb_name = if opts.metadata_snap {
            "metadata snapshot"
        } else {
            "superblock"
        };
        if opts.repair {
            // Nothing says what the block size should have been: the table line given to
            // the kernel must match it, so guessing would only move the failure there.
            check_data_block_size(view.sb.data_block_size)
                .map_err(|f| DumpError::Metadata(Error::structure(sb_name, f)))?;
        }
        let mut walker = view.walker(io);
        let top = walker.top();
        let writesets = view.writesets(&mut walker, top);
        let mut src = Stream {
            view,
            writesets,
            walker,
            repair: opts.repair,
        };
        src.fail_on_fatal()?;
        src.screen_writesets()?;
        Ok(src)
    }

    /// The superblock fields of the view.
    pub fn header(&self) -> Summary {
        Summary {
            block_size: self.view.sb.data_block_size,
            nr_blocks: self.view.sb.nr_blocks,
            current_era: self.view.sb.current_era,
        }
    }

    /// The lengths of the writesets that will be streamed, in order.
    pub fn writeset_nr_bits(&self) -> Vec<u32> {
        self.writesets.iter().map(|w| w.disk.nr_bits).collect()
    }

    /// What was found wrong (and, in repair mode, what was done about it).
    pub fn problems(&self) -> &Problems {
        self.walker.problems()
    }

    /// What was found wrong, handed over; in repair mode, as salvaged (no finding is then
    /// an error: the output replaced what was lost).
    pub fn into_problems(self) -> Problems {
        let problems = self.walker.into_problems();
        if self.repair {
            problems.salvaged()
        } else {
            problems
        }
    }

    fn fail_on_fatal(&self) -> Result<(), DumpError> {
        fail_on_fatal(&self.walker, self.repair)
    }

    fn drop_note(&mut self, name: &str, why: String) {
        self.walker.report(
            Severity::Warning,
            invalid(name, format!("{why}; writeset left out")),
        );
    }

    /// Rejects (or, repairing, drops) writesets that no reader could use.
    fn screen_writesets(&mut self) -> Result<(), DumpError> {
        let era = self.view.sb.current_era;
        let mut kept: Vec<WritesetRef> = Vec::with_capacity(self.writesets.len());
        for ws in std::mem::take(&mut self.writesets) {
            let why = if ws.disk.nr_bits as u64 >= MAX_NR_BLOCKS {
                Some(format!("nr_bits {} is 2^31 or more", ws.disk.nr_bits))
            } else if ws.disk.root == 0 {
                Some("bitset root is 0".to_string())
            } else if !self.repair {
                None
            } else if ws.era > era {
                Some(format!("era {} is above the current era {era}", ws.era))
            } else if kept.last().is_some_and(|k| k.era == ws.era) {
                Some(format!("era {} appears twice", ws.era))
            } else {
                None
            };
            match why {
                Some(why) if self.repair => self.drop_note(&ws.name, why),
                Some(why) => return Err(DumpError::Metadata(invalid(&ws.name, why))),
                None if self.repair => kept.push(self.cut_to_origin(ws)),
                None => kept.push(ws),
            }
        }
        self.writesets = kept;
        Ok(())
    }

    /// Repairing, a writeset longer than the origin whose bitset's root cannot be read is
    /// cut to the origin's length: nothing is known past it, where bits count for nothing
    /// anyway, and a damaged length would otherwise ask for a bitset of up to 256 MiB on
    /// the repaired device.
    fn cut_to_origin(&mut self, mut ws: WritesetRef) -> WritesetRef {
        let nr_blocks = self.view.sb.nr_blocks;
        if ws.disk.nr_bits <= nr_blocks {
            return ws;
        }
        if self
            .walker
            .try_read(BlockKind::BTREE_NODE, ws.disk.root)
            .is_ok()
        {
            return ws;
        }
        // The walk of the bitset says next why its root cannot be read.
        let msg = format!(
            "nr_bits {} is past the origin's {nr_blocks} blocks and its bitset's root cannot \
             be read: taken as {nr_blocks} bits",
            ws.disk.nr_bits
        );
        self.walker
            .report(Severity::Warning, invalid(&ws.name, msg));
        ws.disk.nr_bits = nr_blocks;
        ws
    }

    /// Streams the metadata as it is: every writeset, then the era array.
    pub fn stream(&mut self, sink: &mut dyn EraSink) -> Result<(), DumpError> {
        sink.superblock_begin(&self.header())?;
        let list = std::mem::take(&mut self.writesets);
        for ws in &list {
            sink.writeset_begin(ws.era, ws.disk.nr_bits)?;
            self.read_bitset(ws, &mut |words| sink.writeset_words(words))?;
            sink.writeset_end()?;
        }
        self.writesets = list;
        sink.era_array_begin()?;
        self.read_eras(&mut |_, eras| sink.eras(eras))?;
        sink.era_array_end()?;
        sink.superblock_end()?;
        Ok(())
    }

    /// Streams the era array as it will be once every writeset is digested: for each
    /// block, the era of the newest writeset that marks it, else its era-array value. The
    /// writesets are read on threads of their own, a few chunks ahead of the era array,
    /// so the memory taken does not grow with the origin. Damage found in a writeset stops
    /// the stream where it is (unless repairing).
    pub fn stream_logical(&mut self, sink: &mut dyn EraSink) -> Result<(), DumpError> {
        let list = std::mem::take(&mut self.writesets);
        let io = self.walker.io();
        let view = self.view.clone();
        let repair = self.repair;
        // The writesets' problems come before the era array's, as if read first.
        let opened = std::mem::replace(&mut self.walker, view.walker(io));
        let (streamed, read) = std::thread::scope(|scope| {
            let mut marks = Vec::new();
            let mut readers = Vec::new();
            // Newest first: the fold gives a block the era of the first that marks it.
            for ws in list.iter().rev() {
                let (mut supply, feed) = feed::<u64>(WORD_CHUNK);
                marks.push(Marks {
                    era: ws.era,
                    base: 0,
                    words: Vec::new(),
                    feed,
                });
                let view = &view;
                readers.push(scope.spawn(move || {
                    let mut w = view.walker(io);
                    let mut next = 0;
                    let r = read_bitset(&mut w, repair, ws, view.nr_blocks(), &mut |words| {
                        supply.push(next, words);
                        next += words.len() as u64;
                        Ok(())
                    });
                    match r {
                        Ok(()) => supply.finish(),
                        Err(_) => supply.fail(),
                    }
                    (r, w.into_problems())
                }));
            }
            let streamed = self.stream_folded(sink, &mut marks);
            drop(marks);
            let mut read: Vec<_> = readers
                .into_iter()
                .map(|r| r.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
                .collect();
            read.reverse();
            (streamed, read)
        });
        let array = std::mem::replace(&mut self.walker, view.walker(io));
        let mut problems = opened.into_problems();
        let mut failed = None;
        for (r, p) in read {
            problems.append(p);
            if let (Err(e), None) = (r, &failed) {
                failed = Some(e);
            }
        }
        problems.append(array.into_problems());
        self.walker = view.walker(io).with_problems(problems);
        self.writesets = list;
        // A writeset's damage first: it stopped the stream, or would have been found
        // before the era array was read.
        match failed {
            Some(e) => Err(e),
            None => streamed,
        }
    }

    /// Streams the era array folded with the writesets' `marks` (newest first) as they
    /// come.
    fn stream_folded(
        &mut self,
        sink: &mut dyn EraSink,
        marks: &mut [Marks],
    ) -> Result<(), DumpError> {
        sink.superblock_begin(&self.header())?;
        sink.era_array_begin()?;
        self.read_eras(&mut |first, eras| {
            let end = first + eras.len() as u64;
            for m in marks.iter_mut() {
                if !m.advance(first / 64, end.div_ceil(64)) {
                    // The reader's error is the one reported.
                    return Err(io::Error::other("a writeset is damaged"));
                }
            }
            fold(first, eras, marks);
            sink.eras(eras)
        })?;
        sink.era_array_end()?;
        sink.superblock_end()?;
        Ok(())
    }

    /// Hands the words of `ws` to `f` in order (see [`read_bitset`]).
    fn read_bitset(
        &mut self,
        ws: &WritesetRef,
        f: &mut dyn FnMut(&[u64]) -> io::Result<()>,
    ) -> Result<(), DumpError> {
        let nr_blocks = self.view.nr_blocks();
        read_bitset(&mut self.walker, self.repair, ws, nr_blocks, f)
    }

    /// Hands the era array's values to `f` in order, with the index of the first one,
    /// exactly `nr_blocks` of them.
    fn read_eras(
        &mut self,
        f: &mut dyn FnMut(u64, &mut [u32]) -> io::Result<()>,
    ) -> Result<(), DumpError> {
        let name = self.view.era_array_name();
        let total = self.view.sb.nr_blocks as u64;
        let current = self.view.sb.current_era;
        let repair = self.repair;
        // A lost entry may have been written at any time: say it was written last.
        let fill = if repair { current } else { 0 };
        let mut buf: Vec<u32> = Vec::with_capacity(1024);
        let mut at = Handed::default();
        let mut clamped = 0u64;
        let (root, top) = (self.view.sb.era_array_root, self.walker.top());
        self.walker
            .walk_array(&name, root, total, top, &mut |w, first, eras: &[u32]| {
                if at.stopped(w, repair) {
                    return;
                }
                let r = fill_eras(at.next, first, fill, &mut buf, f).and_then(|()| {
                    buf.clear();
                    buf.extend_from_slice(eras);
                    if repair {
                        for v in buf.iter_mut().filter(|v| **v > current) {
                            *v = current;
                            clamped += 1;
                        }
                    }
                    f(first, &mut buf)
                });
                at.handed(first, eras.len(), r);
            });
        let next = at.finish(total)?;
        self.fail_on_fatal()?;
        fill_eras(next, total, fill, &mut buf, f)?;
        let lost = at.lost;
        if lost > 0 {
            let msg = format!(
                "{lost} entries could not be read; they are taken as written in the current era {current}"
            );
            self.walker.report(Severity::Warning, invalid(&name, msg));
        }
        if clamped > 0 {
            let msg = format!("{clamped} entries above the current era {current} lowered to it");
            self.walker.report(Severity::Warning, invalid(&name, msg));
        }
        Ok(())
    }
}

/// Hands the words of `ws` to `f` in order, exactly `ceil(nr_bits / 64)` of them, read by
/// `walker` (repairing or not, as [`Stream`] says) in metadata of `nr_blocks` origin blocks.
fn read_bitset(
    walker: &mut Walker,
    repair: bool,
    ws: &WritesetRef,
    nr_blocks: u64,
    f: &mut dyn FnMut(&[u64]) -> io::Result<()>,
) -> Result<(), DumpError> {
    let nr_bits = ws.disk.nr_bits as u64;
    let total = nr_words(nr_bits);
    // A lost word may have held any bit of the origin: say each of its blocks was written.
    // Bits past the origin count for nothing (an archived writeset keeps its length across a
    // shrink), and a damaged length must not turn a few lost words into billions of lines.
    let (fill, below) = match repair {
        true => (u64::MAX, nr_bits.min(nr_blocks)),
        false => (0, 0),
    };
    let mut filled = 0;
    let mut at = Handed::default();
    walker.walk_bitset(
        &ws.name,
        ws.disk.root,
        nr_bits,
        ws.parent,
        &mut |w, first, words| {
            if at.stopped(w, repair) {
                return;
            }
            let r = fill_words(at.next, first, below, fill, f)
                .map(|n| filled += n)
                .and_then(|()| f(words));
            at.handed(first, words.len(), r);
        },
    );
    let next = at.finish(total)?;
    fail_on_fatal(walker, repair)?;
    filled += fill_words(next, total, below, fill, f)?;
    let lost = at.lost;
    if lost > 0 {
        let msg = format!(
            "{lost} of its {total} words could not be read; their {filled} blocks of the origin are taken as written in era {}",
            ws.era
        );
        walker.report(Severity::Warning, invalid(&ws.name, msg));
    }
    Ok(())
}

/// The words of a writeset around the blocks being folded, as they come from its reader.
struct Marks {
    era: u32,
    /// The index of the first word of `words`.
    base: u64,
    words: Vec<u64>,
    feed: Feed<u64>,
}

impl Marks {
    /// Holds the words `from..to` (those the writeset has), dropping those below; false
    /// when the writeset is damaged.
    fn advance(&mut self, from: u64, to: u64) -> bool {
        if from > self.base {
            let gone = (from - self.base).min(self.words.len() as u64);
            self.words.drain(..crate::cast::index(gone));
            self.base = from;
        }
        let (base, words) = (self.base, &mut self.words);
        self.feed.take_until(to, &mut |first, mut got| {
            let skip = base.saturating_sub(first);
            if skip >= got.len() as u64 {
                return;
            }
            got = &got[crate::cast::index(skip)..];
            let at = crate::cast::index(first + skip - base);
            if words.len() < at {
                words.resize(at, 0);
            }
            words.extend_from_slice(got);
        })
    }
}

/// Sets the era of each block among `first..first + eras.len()` that a writeset of
/// `marked` (newest first) marks to that writeset's era, a 64-block word at a time.
fn fold(first: u64, eras: &mut [u32], marked: &[Marks]) {
    let end = first + eras.len() as u64;
    let mut b = first;
    while b < end {
        let w = b / 64;
        let lo = b % 64;
        let n = (64 - lo).min(end - b);
        // The blocks of this word inside the range, not yet given an era.
        let mut open = (u64::MAX >> (64 - n)) << lo;
        for m in marked {
            let Some(&word) = w
                .checked_sub(m.base)
                .and_then(|i| m.words.get(crate::cast::index(i)))
            else {
                continue;
            };
            let mut mask = word & open;
            open &= !word;
            while mask != 0 {
                let j = mask.trailing_zeros() as u64;
                eras[crate::cast::index(w * 64 + j - first)] = m.era;
                mask &= mask - 1;
            }
        }
        b += n;
    }
}

/// Hands entries `from..to` of the era array, all equal to `fill`.
fn fill_eras(
    from: u64,
    to: u64,
    fill: u32,
    buf: &mut Vec<u32>,
    f: &mut dyn FnMut(u64, &mut [u32]) -> io::Result<()>,
) -> io::Result<()> {
    let mut i = from;
    while i < to {
        let n = (to - i).min(FILL_CHUNK);
        buf.clear();
        buf.resize(n as usize, fill);
        f(i, buf)?;
        i += n;
    }
    Ok(())
}

/// The walk's first fatal problem as an error, unless repairing.
fn fail_on_fatal(w: &Walker, repair: bool) -> Result<(), DumpError> {
    if repair {
        return Ok(());
    }
    match w.problems().first_fatal() {
        Some(p) => Err(DumpError::Metadata(p.error.clone())),
        None if w.problems().worst() == Some(Severity::Error) => Err(DumpError::Metadata(invalid(
            "metadata",
            "too many errors".into(),
        ))),
        None => Ok(()),
    }
}

fn has_fatal(w: &Walker) -> bool {
    w.problems().worst() == Some(Severity::Error)
}

/// How far a walk that hands values to a consumer in order has got: the next value due,
/// how many before it were never handed (unreadable), and the consumer's first error.
#[derive(Default)]
struct Handed {
    next: u64,
    lost: u64,
    err: Option<io::Error>,
}

impl Handed {
    /// Whether to hand nothing more: the consumer failed, or (unless repairing) the walk
    /// found a fatal problem.
    fn stopped(&self, w: &Walker, repair: bool) -> bool {
        self.err.is_some() || (!repair && has_fatal(w))
    }

    /// Values `first..first + n` were handed (and those between `next` and `first` were
    /// not), with the consumer's result `r`.
    fn handed(&mut self, first: u64, n: usize, r: io::Result<()>) {
        self.lost += first - self.next;
        self.next = first + n as u64;
        if let Err(e) = r {
            self.err = Some(e);
        }
    }

    /// The consumer's error, or the next value due, the values from there to `total`
    /// counted as lost.
    fn finish(&mut self, total: u64) -> Result<u64, DumpError> {
        if let Some(e) = self.err.take() {
            return Err(DumpError::Io(e));
        }
        self.lost += total - self.next;
        Ok(self.next)
    }
}

/// Hands words `from..to` of a bitset, each equal to `fill` but for its bits at or past
/// bit `below`, which are clear. Returns how many bits it set.
fn fill_words(
    from: u64,
    to: u64,
    below: u64,
    fill: u64,
    f: &mut dyn FnMut(&[u64]) -> io::Result<()>,
) -> io::Result<u64> {
    let mut chunk = Vec::new();
    let mut set = 0;
    let mut i = from;
    while i < to {
        let n = (to - i).min(FILL_CHUNK);
        chunk.clear();
        chunk.extend((i..i + n).map(|w| match below.saturating_sub(w * 64) {
            0 => 0,
            k if k >= 64 => fill,
            k => fill & ((1u64 << k) - 1),
        }));
        set += chunk.iter().map(|w| u64::from(w.count_ones())).sum::<u64>();
        f(&chunk)?;
        i += n;
    }
    Ok(set)
}

/// Dumps the metadata on `io` as XML into `out`. Returns what was found wrong but did not
/// stop the dump (everything, in repair mode).
pub fn dump(
    io: &dyn BlockIo,
    opts: &DumpOptions,
    out: &mut dyn io::Write,
) -> Result<Problems, DumpError> {
    let mut src = Stream::open(io, opts)?;
    let mut xml = super::xml::write::XmlWriter::new(out);
    if opts.logical {
        src.stream_logical(&mut xml)?;
    } else {
        src.stream(&mut xml)?;
    }
    xml.into_inner()?;
    Ok(src.into_problems())
}

#[cfg(test)]
// Tests build their fixtures with casts of small, known values.
#[allow(clippy::cast_possible_truncation)]
mod tests {
    use super::{feed, fold, Marks, WORD_CHUNK};

    /// The writesets `marked` as the stream holds them around `first..end`.
    fn held(marked: &[(u32, Vec<u64>)], first: u64, end: u64) -> Vec<Marks> {
        let mut marks = Vec::new();
        for (era, words) in marked {
            let (mut supply, feed) = feed::<u64>(WORD_CHUNK);
            supply.push(0, words);
            supply.finish();
            let mut m = Marks {
                era: *era,
                base: 0,
                words: Vec::new(),
                feed,
            };
            // Held first from further back, as the stream moves on.
            assert!(m.advance(0, first / 64 + 1));
            assert!(m.advance(first / 64, end.div_ceil(64)));
            marks.push(m);
        }
        marks
    }

    #[test]
    fn fold_gives_each_block_the_era_of_the_newest_writeset_marking_it() {
        let mut rng = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        // Newest first; the last one is shorter than the origin.
        let marked: Vec<(u32, Vec<u64>)> = vec![
            (9, (0..8).map(|_| next() & next()).collect()),
            (7, (0..8).map(|_| next()).collect()),
            (4, (0..3).map(|_| next()).collect()),
        ];
        for (first, len) in [(0u64, 500usize), (3, 61), (64, 64), (100, 400), (190, 1)] {
            let mut eras: Vec<u32> = (0..len as u32).collect();
            fold(first, &mut eras, &held(&marked, first, first + len as u64));
            for (i, &e) in eras.iter().enumerate() {
                let b = first + i as u64;
                let want = marked
                    .iter()
                    .find(|(_, w)| {
                        w.get((b / 64) as usize)
                            .is_some_and(|x| x >> (b % 64) & 1 != 0)
                    })
                    .map_or(i as u32, |(era, _)| *era);
                assert_eq!(e, want, "block {b} of {first}+{len}");
            }
        }
    }
}
