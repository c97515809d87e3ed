//! `era_restore`: XML to binary metadata, reading the input once (a file or a pipe).
//!
//! The whole document is checked before anything is written. Meanwhile the writesets
//! ([`super::writeset_spool`], one bit per block each, in any order) and the era array
//! ([`super::spool`]) wait in temporary files, in memory that does not grow with the
//! metadata; once the input is known to be valid, both are written out, superblock last.

use std::collections::HashSet;
use std::io::{self, Read};

use super::build::{
    check_room, fixed_blocks, min_output_bytes, space_map_size, writeset_blocks, BuildError,
    EraBuilder,
};
use super::format::superblock::{check_data_block_size, MAX_NR_BLOCKS};
use super::sink::{EraSink, Summary};
use super::spool::Spool;
use super::writeset_spool::WritesetSpool;
use super::xml::read::{parse, ParseError, ParseOptions, VisitError, XmlError, XmlVisitor};
use crate::pdata::error::{Side, Sided};
use crate::pdata::io::{BlockIo, BLOCK_SIZE};

/// Why a restore failed.
#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    /// The input could not be read.
    #[error("read error: {0}")]
    Input(#[source] io::Error),
    /// The input is not acceptable (nothing was written).
    #[error("{0}")]
    Xml(#[source] XmlError),
    /// The temporary file for the era array failed (nothing was written).
    #[error("{0}")]
    TempFile(#[source] io::Error),
    /// The output is too small, or writing it failed.
    #[error("{0}")]
    Build(#[from] BuildError),
    /// The output holds what this metadata must not replace (nothing was written).
    #[error("{0}")]
    Refused(String),
    /// The output is too small, for an XML read only up to the writeset that did not fit
    /// (from a pipe, which is read once): the size the whole XML needs is not known
    /// (nothing was written). `available` is the output's size in blocks.
    // thin-provisioning-tools' words first: scripts look for them.
    #[error(
        "Output file too small. It holds {available} blocks of {BLOCK_SIZE} bytes; the XML came \
         through a pipe and was read only up to the writeset that did not fit: \
         era_metadata_size --nr-blocks N --writesets W tells the size for its nr_blocks N and \
         its W writesets"
    )]
    TooSmallUnsized {
        /// Blocks the output offers.
        available: u64,
    },
}

impl Sided for RestoreError {
    fn side(&self) -> Side {
        match self {
            RestoreError::Input(_) | RestoreError::Xml(_) => Side::Input,
            RestoreError::Build(_)
            | RestoreError::Refused(_)
            | RestoreError::TooSmallUnsized { .. } => Side::Output,
            RestoreError::TempFile(_) => Side::Own,
        }
    }
}

/// A bare I/O error is a failed write, the output's: the input's and the temporary file's are
/// told apart where they happen.
impl From<io::Error> for RestoreError {
    fn from(e: io::Error) -> RestoreError {
        RestoreError::Build(BuildError::Io(e))
    }
}

/// A writeset as the first pass keeps it: its bits are in the [`WritesetSpool`] at `index`.
#[derive(Clone, Copy)]
struct Writeset {
    era: u32,
    nr_bits: u32,
    index: usize,
}

fn bad(msg: String) -> VisitError {
    VisitError::Invalid(msg)
}

/// Judges the output against the XML's superblock before anything is written: a refusal
/// (the whole message) when the output holds metadata this one must not replace.
pub type TargetCheck<'a> = &'a dyn Fn(&Summary) -> Result<(), String>;

/// Every rule, the writesets' bits, and the era array into the spool.
struct Validator<'o> {
    out: &'o dyn BlockIo,
    target: TargetCheck<'o>,
    refused: Option<String>,
    header: Option<Summary>,
    writesets: Vec<Writeset>,
    bits: WritesetSpool,
    eras: HashSet<u32>,
    in_writeset: bool,
    writeset_total: u64,
    era_array_seen: bool,
    last_block: Option<u32>,
    too_small: Option<BuildError>,
    spool: Option<Spool>,
}

impl Validator<'_> {
    fn header(&self) -> Result<Summary, VisitError> {
        self.header
            .ok_or_else(|| bad("element outside <superblock>".into()))
    }

    fn current(&self) -> Result<Writeset, VisitError> {
        match self.writesets.last() {
            Some(&ws) if self.in_writeset => Ok(ws),
            _ => Err(bad("bit outside <writeset>".into())),
        }
    }

    /// Stores era-array entries from `first` on.
    fn spool(&mut self, first: u32, eras: &[u32]) -> Result<(), VisitError> {
        let spool = match &mut self.spool {
            Some(s) => s,
            None => self.spool.insert(Spool::new()?),
        };
        spool.put(first as u64, eras)?;
        Ok(())
    }

    fn room(&mut self, nr_blocks: u32) -> Result<(), VisitError> {
        let n = self.writesets.len() as u64;
        check_room(self.out, nr_blocks, n, self.writeset_total).map_err(|e| {
            let msg = e.to_string();
            self.too_small = Some(e);
            bad(msg)
        })
    }
}

impl XmlVisitor for Validator<'_> {
    fn superblock(&mut self, h: Summary) -> Result<(), VisitError> {
        if h.nr_blocks as u64 >= MAX_NR_BLOCKS {
            return Err(bad(format!(
                "nr_blocks {} is 2^31 or more (the kernel's limit)",
                h.nr_blocks
            )));
        }
        check_data_block_size(h.block_size).map_err(|f| bad(format!("block_size: {f}")))?;
        (self.target)(&h).map_err(|refusal| {
            self.refused = Some(refusal.clone());
            bad(refusal)
        })?;
        self.header = Some(h);
        self.room(h.nr_blocks)
    }

    fn writeset_begin(&mut self, era: u32, nr_bits: u32) -> Result<(), VisitError> {
        let h = self.header()?;
        if era > h.current_era {
            return Err(bad(format!(
                "writeset era {era} is above current_era {}",
                h.current_era
            )));
        }
        if !self.eras.insert(era) {
            return Err(bad(format!("duplicated writeset era {era}")));
        }
        if nr_bits as u64 >= MAX_NR_BLOCKS {
            return Err(bad(format!("writeset nr_bits {nr_bits} is 2^31 or more")));
        }
        self.writeset_total += writeset_blocks(nr_bits);
        let index = self.bits.begin(nr_bits);
        self.writesets.push(Writeset {
            era,
            nr_bits,
            index,
        });
        // Checked before any bit is stored: the output bounds the memory the bits take.
        self.room(h.nr_blocks)?;
        self.in_writeset = true;
        Ok(())
    }

    fn bit(&mut self, block: u32, value: bool) -> Result<(), VisitError> {
        let nr_blocks = self.header()?.nr_blocks;
        let ws = self.current()?;
        if value {
            if block >= ws.nr_bits {
                return Err(bad(format!(
                    "bit {block} is set but the writeset has only {} bits",
                    ws.nr_bits
                )));
            }
            self.bits.set(ws.index, block)?;
        } else if block >= ws.nr_bits.max(nr_blocks) {
            return Err(bad(format!(
                "bit {block} is past both nr_bits {} and nr_blocks {nr_blocks}",
                ws.nr_bits
            )));
        }
        Ok(())
    }

    fn bits(
        &mut self,
        set: &[u32],
        max_set: Option<u32>,
        max_clear: Option<u32>,
    ) -> Result<bool, VisitError> {
        let Some(h) = self.header else {
            return Ok(false);
        };
        let Ok(ws) = self.current() else {
            return Ok(false);
        };
        if max_set.is_some_and(|m| m >= ws.nr_bits)
            || max_clear.is_some_and(|m| m >= ws.nr_bits.max(h.nr_blocks))
        {
            return Ok(false);
        }
        for &b in set {
            self.bits.set(ws.index, b)?;
        }
        Ok(true)
    }

    fn marked(&mut self, begin: u32, len: u32) -> Result<(), VisitError> {
        let ws = self.current()?;
        if len == 0 {
            return Err(bad("<marked> range of length 0".into()));
        }
        let end = begin as u64 + len as u64;
        if end > ws.nr_bits as u64 {
            return Err(bad(format!(
                "<marked> range [{begin}, {end}) runs past the writeset's {} bits",
                ws.nr_bits
            )));
        }
        self.bits.set_range(ws.index, begin as u64, end)?;
        Ok(())
    }

    fn writeset_end(&mut self) -> Result<(), VisitError> {
        self.in_writeset = false;
        Ok(())
    }

    fn era_array_begin(&mut self) -> Result<(), VisitError> {
        if self.era_array_seen {
            return Err(bad("duplicated <era_array>".into()));
        }
        self.era_array_seen = true;
        Ok(())
    }

    fn era(&mut self, block: u32, era: u32) -> Result<(), VisitError> {
        let h = self.header()?;
        check_era_entry(&h, self.last_block, block, era)?;
        self.spool(block, &[era])?;
        self.last_block = Some(block);
        Ok(())
    }

    fn eras(&mut self, first: u32, eras: &[u32], max_era: u32) -> Result<bool, VisitError> {
        let Some(h) = self.header else {
            return Ok(false);
        };
        let Some(last) = (first as u64 + eras.len() as u64).checked_sub(1) else {
            return Ok(true);
        };
        let last = match u32::try_from(last) {
            Ok(last) if last < h.nr_blocks => last,
            _ => return Ok(false),
        };
        if self.last_block.is_some_and(|l| l >= first) || max_era > h.current_era {
            return Ok(false);
        }
        self.spool(first, eras)?;
        self.last_block = Some(last);
        Ok(true)
    }

    fn era_array_end(&mut self) -> Result<(), VisitError> {
        Ok(())
    }

    fn superblock_end(&mut self) -> Result<(), VisitError> {
        Ok(())
    }
}

fn check_era_entry(h: &Summary, last: Option<u32>, block: u32, era: u32) -> Result<(), VisitError> {
    if block >= h.nr_blocks {
        return Err(bad(format!(
            "era entry for block {block}, but nr_blocks is {}",
            h.nr_blocks
        )));
    }
    match last {
        Some(l) if l == block => {
            return Err(bad(format!("duplicated era entry for block {block}")))
        }
        Some(l) if l > block => {
            return Err(bad(format!(
                "era entry for block {block} comes after block {l} (entries must ascend)"
            )))
        }
        _ => {}
    }
    if era > h.current_era {
        return Err(bad(format!(
            "era {era} of block {block} is above current_era {}",
            h.current_era
        )));
    }
    Ok(())
}

/// Where a restore is, for a progress bar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// This many more bytes of the input were read and checked.
    Checked(u64),
    /// The whole input is valid: about this many metadata blocks are about to be written.
    Writing(u64),
}

/// Restores the XML read from `input` (a file or a pipe: it is read once) into `out`;
/// `progress` is told each [`Step`]. Nothing is written unless the whole input is valid
/// and fits; block 0 is written last.
pub fn restore(
    input: Box<dyn Read + Send>,
    out: &dyn BlockIo,
    progress: &dyn Fn(Step),
) -> Result<(), RestoreError> {
    restore_with(input, out, &ParseOptions::default(), progress)
}

/// [`restore`], reading as `opts` says.
pub fn restore_with(
    input: Box<dyn Read + Send>,
    out: &dyn BlockIo,
    opts: &ParseOptions,
    progress: &dyn Fn(Step),
) -> Result<(), RestoreError> {
    restore_onto(input, out, &|_| Ok(()), opts, progress)
}

/// [`restore_with`], once `target` accepts the output for the XML's superblock (checked
/// as soon as the superblock is read, before anything is written).
pub fn restore_onto(
    input: Box<dyn Read + Send>,
    out: &dyn BlockIo,
    target: TargetCheck<'_>,
    opts: &ParseOptions,
    progress: &dyn Fn(Step),
) -> Result<(), RestoreError> {
    let mut v = Validator {
        out,
        target,
        refused: None,
        header: None,
        writesets: Vec::new(),
        bits: WritesetSpool::default(),
        eras: HashSet::new(),
        in_writeset: false,
        writeset_total: 0,
        era_array_seen: false,
        last_block: None,
        too_small: None,
        spool: None,
    };
    match parse(input, &mut v, opts, &|n| progress(Step::Checked(n))) {
        Ok(()) => {}
        Err(e) => {
            if let Some(refusal) = v.refused.take() {
                return Err(RestoreError::Refused(refusal));
            }
            return Err(match (v.too_small.take(), e) {
                (Some(t), _) => RestoreError::Build(t),
                (None, ParseError::Xml(e)) => RestoreError::Xml(e),
                (None, ParseError::Io(e)) => RestoreError::Input(e),
                (None, ParseError::Visit(e)) => RestoreError::TempFile(e),
            });
        }
    }
    let Some(header) = v.header else {
        return Err(RestoreError::Input(io::Error::other("no superblock")));
    };
    write_out(out, &header, v.writesets, &v.bits, v.spool, progress)
}

/// Writes what a valid input described: the writesets, then the era array from `spool`
/// (all 0 without one), block 0 last.
fn write_out(
    out: &dyn BlockIo,
    header: &Summary,
    mut writesets: Vec<Writeset>,
    bits: &WritesetSpool,
    spool: Option<Spool>,
    progress: &dyn Fn(Step),
) -> Result<(), RestoreError> {
    writesets.sort_by_key(|w| w.era);
    let nr_bits: Vec<u32> = writesets.iter().map(|w| w.nr_bits).collect();
    let writeset_total: u64 = nr_bits.iter().map(|&n| writeset_blocks(n)).sum();
    // Block 0 is written twice: the marker of a build under way first, the superblock last.
    progress(Step::Writing(
        fixed_blocks(header.nr_blocks, nr_bits.len() as u64, space_map_size(out))
            + writeset_total
            + 1,
    ));
    let mut b = EraBuilder::new(out, header.nr_blocks, &nr_bits)?;
    b.superblock_begin(header)?;
    for ws in writesets {
        b.writeset_begin(ws.era, ws.nr_bits)?;
        bits.replay(ws.index, RestoreError::TempFile, &mut |words| {
            Ok(b.writeset_words(words)?)
        })?;
        b.writeset_end()?;
    }
    b.era_array_begin()?;
    let nr_blocks = header.nr_blocks as u64;
    match spool {
        Some(s) => s.replay(nr_blocks, RestoreError::TempFile, &mut |eras| {
            Ok(b.eras(eras)?)
        })?,
        None => {
            let zeros = vec![0u32; (header.nr_blocks as usize).min(1 << 16)];
            let mut left = header.nr_blocks as usize;
            while left > 0 {
                let n = left.min(zeros.len());
                b.eras(&zeros[..n])?;
                left -= n;
            }
        }
    }
    b.era_array_end()?;
    b.superblock_end()?;
    b.finish()?;
    Ok(())
}

/// What the XML asks of an output, counted without storing its bits or eras.
#[derive(Default)]
struct Sizer {
    nr_blocks: Option<u32>,
    nr_writesets: u64,
    writeset_total: u64,
}

impl XmlVisitor for Sizer {
    fn superblock(&mut self, h: Summary) -> Result<(), VisitError> {
        self.nr_blocks = Some(h.nr_blocks);
        Ok(())
    }

    fn writeset_begin(&mut self, _era: u32, nr_bits: u32) -> Result<(), VisitError> {
        self.nr_writesets += 1;
        self.writeset_total += writeset_blocks(nr_bits);
        Ok(())
    }

    fn bit(&mut self, _block: u32, _value: bool) -> Result<(), VisitError> {
        Ok(())
    }

    fn bits(&mut self, _: &[u32], _: Option<u32>, _: Option<u32>) -> Result<bool, VisitError> {
        Ok(true)
    }

    fn marked(&mut self, _begin: u32, _len: u32) -> Result<(), VisitError> {
        Ok(())
    }

    fn writeset_end(&mut self) -> Result<(), VisitError> {
        Ok(())
    }

    fn era_array_begin(&mut self) -> Result<(), VisitError> {
        Ok(())
    }

    fn era(&mut self, _block: u32, _era: u32) -> Result<(), VisitError> {
        Ok(())
    }

    fn eras(&mut self, _: u32, _: &[u32], _: u32) -> Result<bool, VisitError> {
        Ok(true)
    }

    fn era_array_end(&mut self) -> Result<(), VisitError> {
        Ok(())
    }

    fn superblock_end(&mut self) -> Result<(), VisitError> {
        Ok(())
    }
}

/// The smallest output [`restore`] accepts for the XML read from `input` (see
/// [`min_output_bytes`]): `Ok(None)` when no output can hold it, an error when the XML
/// cannot be read. For telling the size of an output that does not exist yet.
pub fn output_bytes_needed(input: Box<dyn Read + Send>) -> Result<Option<u64>, RestoreError> {
    let mut sizer = Sizer::default();
    parse(input, &mut sizer, &ParseOptions::default(), &|_| {}).map_err(|e| match e {
        ParseError::Xml(e) => RestoreError::Xml(e),
        ParseError::Io(e) => RestoreError::Input(e),
        ParseError::Visit(e) => RestoreError::TempFile(e),
    })?;
    let Some(nr_blocks) = sizer.nr_blocks else {
        return Err(RestoreError::Input(io::Error::other("no superblock")));
    };
    Ok(min_output_bytes(
        nr_blocks,
        sizer.nr_writesets,
        sizer.writeset_total,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pdata::io::{Block, MemIo};
    use crate::pdata::space_map::ENTRIES_PER_BITMAP;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Mutex;

    /// Counts the blocks read and written, as the progress bar of era_restore does.
    struct Counting {
        inner: MemIo,
        moved: AtomicU64,
    }

    impl BlockIo for Counting {
        fn nr_blocks(&self) -> u64 {
            self.inner.nr_blocks()
        }

        fn read(&self, loc: u64, buf: &mut Block) -> io::Result<()> {
            self.moved.fetch_add(1, Ordering::Relaxed);
            self.inner.read(loc, buf)
        }

        fn write(&self, loc: u64, buf: &Block) -> io::Result<()> {
            self.moved.fetch_add(1, Ordering::Relaxed);
            self.inner.write(loc, buf)
        }

        fn flush(&self) -> io::Result<()> {
            self.inner.flush()
        }
    }

    fn xml(nr_blocks: u32, writesets: u32) -> Box<dyn Read + Send> {
        let mut s = format!(
            "<superblock uuid=\"\" block_size=\"128\" nr_blocks=\"{nr_blocks}\" \
             current_era=\"{writesets}\">\n"
        );
        for era in 1..=writesets {
            s += &format!("<writeset era=\"{era}\" nr_bits=\"{nr_blocks}\">\n");
            s += "<marked block_begin=\"0\" len=\"1\"/>\n</writeset>\n";
        }
        s += "</superblock>\n";
        Box::new(io::Cursor::new(s.into_bytes()))
    }

    /// The bar's length is what the restore then moves: it ends full, not one past it.
    #[test]
    fn the_announced_blocks_are_the_blocks_written() {
        for (nr_blocks, writesets) in [(4, 0), (11_109, 2), (100_000, 3)] {
            let out = Counting {
                inner: MemIo::new(4096),
                moved: AtomicU64::new(0),
            };
            let announced = Mutex::new(None);
            restore(xml(nr_blocks, writesets), &out, &|step| {
                if let Step::Writing(n) = step {
                    *announced.lock().unwrap() = Some(n);
                }
            })
            .unwrap();
            let moved = out.moved.load(Ordering::Relaxed);
            assert_eq!(announced.into_inner().unwrap(), Some(moved), "{nr_blocks}");
        }
    }

    fn restores_onto(blocks: u64, nr_blocks: u32, writesets: u32) -> Result<(), RestoreError> {
        restore(xml(nr_blocks, writesets), &MemIo::new(blocks), &|_| {})
    }

    /// The size told for a missing or small output is the least one a restore accepts,
    /// also where the output needs a second space-map bitmap to map itself.
    #[test]
    fn the_size_needed_is_the_least_that_is_accepted() {
        let needed = |nr_blocks, writesets| {
            output_bytes_needed(xml(nr_blocks, writesets))
                .unwrap()
                .unwrap()
                / BLOCK_SIZE as u64
        };
        // The least nr_blocks whose metadata needs more blocks than one bitmap maps.
        let (mut low, mut high) = (1u32, 1 << 26);
        while low < high {
            let mid = low + (high - low) / 2;
            if needed(mid, 0) > ENTRIES_PER_BITMAP {
                high = mid;
            } else {
                low = mid + 1;
            }
        }
        for (nr_blocks, writesets) in [(4, 0), (1024, 3), (70_001, 1), (low, 0)] {
            let blocks = needed(nr_blocks, writesets);
            assert!(blocks >= 10, "40960 bytes at least");
            restores_onto(blocks, nr_blocks, writesets)
                .unwrap_or_else(|e| panic!("{nr_blocks}: {blocks} blocks: {e}"));
            let e = restores_onto(blocks - 1, nr_blocks, writesets).unwrap_err();
            let words = format!(
                "Output file too small. It holds {} blocks of 4096 bytes; it must hold at least {} \
                 bytes (truncate -s {} FILE, or a device of that size)",
                blocks - 1,
                blocks * 4096,
                blocks * 4096
            );
            assert_eq!(e.to_string(), words);
        }
    }
}
