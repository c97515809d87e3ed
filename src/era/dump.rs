//! Reading era metadata as a stream for a dump or a repair: the writesets in ascending era,
//! then the era array, optionally folded (`--logical`) or salvaged (`--repair`).

use std::io;

use super::format::superblock::{check_data_block_size, MAX_NR_BLOCKS};
use super::sink::{EraSink, Summary};
use super::view::{View, WritesetRef};
use crate::pdata::bitset::nr_words;
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
/// words read as all blocks written in that era, lost era-array entries as the current
/// era. Writesets that cannot be restored (a repeated era, an era above the current one,
/// an impossible length) are dropped. Each such decision is recorded as a problem.
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
        if self.repair {
            return Ok(());
        }
        match self.walker.problems().first_fatal() {
            Some(p) => Err(DumpError::Metadata(p.error.clone())),
            None if self.walker.problems().worst() == Some(Severity::Error) => Err(
                DumpError::Metadata(invalid("metadata", "too many errors".into())),
            ),
            None => Ok(()),
        }
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
                None => kept.push(ws),
            }
        }
        self.writesets = kept;
        Ok(())
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
    /// block, the era of the newest writeset that marks it, else its era-array value.
    /// Holds the writesets in memory, one bit per origin block each.
    pub fn stream_logical(&mut self, sink: &mut dyn EraSink) -> Result<(), DumpError> {
        let nr_blocks = self.view.sb.nr_blocks as u64;
        let limit = crate::cast::index(nr_words(nr_blocks));
        let mut marked: Vec<(u32, Vec<u64>)> = Vec::new();
        let list = std::mem::take(&mut self.writesets);
        for ws in &list {
            let mut words = Vec::new();
            self.read_bitset(ws, &mut |chunk| {
                let room = limit.saturating_sub(words.len()).min(chunk.len());
                words.extend_from_slice(&chunk[..room]);
                Ok(())
            })?;
            if nr_blocks % 64 != 0 && words.len() == limit {
                if let Some(last) = words.last_mut() {
                    *last &= (1u64 << (nr_blocks % 64)) - 1;
                }
            }
            if words.iter().any(|&w| w != 0) {
                marked.push((ws.era, words));
            }
        }
        self.writesets = list;
        marked.reverse();
        sink.superblock_begin(&self.header())?;
        sink.era_array_begin()?;
        self.read_eras(&mut |first, eras| {
            fold(first, eras, &marked);
            sink.eras(eras)
        })?;
        sink.era_array_end()?;
        sink.superblock_end()?;
        Ok(())
    }

    /// Hands the words of `ws` to `f` in order, exactly `ceil(nr_bits / 64)` of them.
    fn read_bitset(
        &mut self,
        ws: &WritesetRef,
        f: &mut dyn FnMut(&[u64]) -> io::Result<()>,
    ) -> Result<(), DumpError> {
        let nr_bits = ws.disk.nr_bits as u64;
        let total = nr_words(nr_bits);
        let repair = self.repair;
        // A lost word may have held any bit: say every block was written.
        let fill = if repair { u64::MAX } else { 0 };
        let mut at = Handed::default();
        self.walker.walk_bitset(
            &ws.name,
            ws.disk.root,
            nr_bits,
            ws.parent,
            &mut |w, first, words| {
                if at.stopped(w, repair) {
                    return;
                }
                let r = fill_words(at.next, first, total, nr_bits, fill, f).and_then(|()| f(words));
                at.handed(first, words.len(), r);
            },
        );
        let next = at.finish(total)?;
        self.fail_on_fatal()?;
        fill_words(next, total, total, nr_bits, fill, f)?;
        let lost = at.lost;
        if lost > 0 {
            let msg = format!(
                "{lost} of its {total} words could not be read; their {} blocks are taken as written in era {}",
                lost * 64,
                ws.era
            );
            self.walker
                .report(Severity::Warning, invalid(&ws.name, msg));
        }
        Ok(())
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

/// Sets the era of each block among `first..first + eras.len()` that a writeset of
/// `marked` (newest first) marks to that writeset's era, a 64-block word at a time.
fn fold(first: u64, eras: &mut [u32], marked: &[(u32, Vec<u64>)]) {
    let end = first + eras.len() as u64;
    let mut b = first;
    while b < end {
        let w = (b / 64) as usize;
        let lo = b % 64;
        let n = (64 - lo).min(end - b);
        // The blocks of this word inside the range, not yet given an era.
        let mut open = (u64::MAX >> (64 - n)) << lo;
        for (era, words) in marked {
            let Some(&word) = words.get(w) else {
                continue;
            };
            let mut m = word & open;
            open &= !word;
            while m != 0 {
                let j = m.trailing_zeros() as u64;
                eras[crate::cast::index(w as u64 * 64 + j - first)] = *era;
                m &= m - 1;
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

/// Hands words `from..to` of a bitset of `total` words (`nr_bits` bits), all equal to
/// `fill` except that no bit at or past `nr_bits` is set.
fn fill_words(
    from: u64,
    to: u64,
    total: u64,
    nr_bits: u64,
    fill: u64,
    f: &mut dyn FnMut(&[u64]) -> io::Result<()>,
) -> io::Result<()> {
    let mut chunk = Vec::new();
    let mut i = from;
    while i < to {
        let n = (to - i).min(FILL_CHUNK);
        chunk.clear();
        chunk.resize(n as usize, fill);
        if i + n == total && nr_bits % 64 != 0 {
            if let Some(last) = chunk.last_mut() {
                *last &= (1u64 << (nr_bits % 64)) - 1;
            }
        }
        f(&chunk)?;
        i += n;
    }
    Ok(())
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
    use super::fold;

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
            fold(first, &mut eras, &marked);
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
