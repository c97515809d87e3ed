//! `dm-array`: fixed-size values packed into array blocks, indexed by a b-tree whose keys are
//! the array-block numbers 0, 1, 2, … and whose values are the array blocks' locations.

use std::sync::OnceLock;

use byteorder::{ByteOrder, LittleEndian as LE};
use rayon::prelude::*;

use crate::pdata::checksum::{self, BlockKind};
use crate::pdata::error::{Error, Fault};
use crate::pdata::io::{Block, BLOCK_SIZE};
use crate::pdata::report::Severity;
use crate::pdata::walk::Walker;

/// Bytes before the values.
pub const ARRAY_HEADER_SIZE: usize = 24;

/// Values of `value_size` bytes that fit in one array block.
pub fn array_max_entries(value_size: u32) -> u32 {
    (BLOCK_SIZE - ARRAY_HEADER_SIZE) as u32 / value_size.max(1)
}

/// The header of an array block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArrayBlockHeader {
    /// Capacity.
    pub max_entries: u32,
    /// Values in use.
    pub nr_entries: u32,
    /// Bytes per value.
    pub value_size: u32,
    /// Where the block says it lives.
    pub blocknr: u64,
}

impl ArrayBlockHeader {
    /// Decodes the header of an array block.
    pub fn unpack(b: &[u8]) -> ArrayBlockHeader {
        ArrayBlockHeader {
            max_entries: LE::read_u32(&b[4..]),
            nr_entries: LE::read_u32(&b[8..]),
            value_size: LE::read_u32(&b[12..]),
            blocknr: LE::read_u64(&b[16..]),
        }
    }

    /// Encodes the header (the checksum is left to [`checksum::seal`]).
    pub fn pack(&self, b: &mut [u8]) {
        LE::write_u32(&mut b[4..], self.max_entries);
        LE::write_u32(&mut b[8..], self.nr_entries);
        LE::write_u32(&mut b[12..], self.value_size);
        LE::write_u64(&mut b[16..], self.blocknr);
    }

    /// Checks an array block read from `loc` that should hold `value_size`-byte values.
    pub fn parse(block: &[u8], loc: u64, value_size: u32) -> Result<ArrayBlockHeader, Fault> {
        checksum::verify(block, BlockKind::ArrayBlock, loc)?;
        let h = ArrayBlockHeader::unpack(block);
        if h.value_size != value_size {
            return Err(Fault::Invalid(format!(
                "value size {}, expected {value_size}",
                h.value_size
            )));
        }
        let max = array_max_entries(value_size);
        if h.max_entries != max {
            return Err(Fault::Invalid(format!(
                "max_entries {}, expected {max}",
                h.max_entries
            )));
        }
        if h.nr_entries > max {
            return Err(Fault::Invalid(format!(
                "nr_entries {} exceeds max_entries {max}",
                h.nr_entries
            )));
        }
        Ok(h)
    }
}

/// Called for each array block in order: `(walker, index of its first value, the bytes of
/// its values in use)`.
pub type ValuesVisitor<'v, 'w> = dyn FnMut(&mut Walker<'w>, u64, &[u8]) + 'v;

struct Progress {
    next_key: u64,
    len: u64,
    last_short: Option<u64>,
    intact: bool,
}

/// Array blocks whose reads are issued together. On a block device opened with `O_DIRECT`
/// every read goes to the device, so keeping several in flight is what makes a large array
/// fast to read.
const READ_BATCH: usize = 64;
/// Reads in flight at once (threads of the reading pool).
const READS_IN_FLIGHT: usize = 8;

/// The pool that issues batched reads, or `None` when no thread could be started (reads are
/// then issued one by one).
fn read_pool() -> Option<&'static rayon::ThreadPool> {
    static POOL: OnceLock<Option<rayon::ThreadPool>> = OnceLock::new();
    POOL.get_or_init(|| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(READS_IN_FLIGHT)
            .thread_name(|i| format!("read-{i}"))
            .build()
            .ok()
    })
    .as_ref()
}

/// Reads the array blocks at `locs`, several at a time.
fn read_all(w: &Walker, locs: &[u64]) -> Vec<Result<Box<Block>, Fault>> {
    let one = |&loc: &u64| w.try_read(BlockKind::ArrayBlock, loc);
    match read_pool() {
        Some(pool) if locs.len() > 1 => pool.install(|| locs.par_iter().map(one).collect()),
        _ => locs.iter().map(one).collect(),
    }
}

/// The array blocks found so far, waiting to be read, checked and visited in order.
struct Batch<'a, 'v, 'w> {
    structure: &'a str,
    value_size: u32,
    per_block: u64,
    expected_len: u64,
    p: &'a mut Progress,
    visit: &'a mut ValuesVisitor<'v, 'w>,
}

impl<'w> Batch<'_, '_, 'w> {
    /// Checks every pending `(key, location, counting)` in key order, reads the blocks
    /// that belong to the array (in parallel), and checks and visits them in order.
    fn take(&mut self, w: &mut Walker<'w>, pending: &mut Vec<(u64, u64, bool)>) {
        let nr_ablocks = self.expected_len.div_ceil(self.per_block);
        let locs: Vec<u64> = pending
            .iter()
            .filter(|&&(key, _, _)| key < nr_ablocks)
            .map(|&(_, loc, _)| loc)
            .collect();
        let mut blocks = read_all(w, &locs).into_iter();
        for (key, loc, c) in pending.drain(..) {
            if key != self.p.next_key || key >= nr_ablocks {
                self.p.intact = false;
                let what = if key >= nr_ablocks {
                    format!(
                        "array block {key} is past the end of an array of {} values",
                        self.expected_len
                    )
                } else {
                    format!(
                        "array block {} is missing (next key is {key})",
                        self.p.next_key
                    )
                };
                w.report(
                    Severity::Fatal,
                    Error::structure(self.structure, Fault::Invalid(what)),
                );
                if key >= nr_ablocks {
                    continue;
                }
            }
            self.p.next_key = key + 1;
            let Some(block) = blocks.next() else {
                break;
            };
            w.count(loc, c);
            let header = block
                .and_then(|b| ArrayBlockHeader::parse(&b, loc, self.value_size).map(|h| (h, b)));
            let (h, block) = match header {
                Ok(hb) => hb,
                Err(f) => {
                    self.p.intact = false;
                    let e = Error::block(self.structure, BlockKind::ArrayBlock, loc, f);
                    w.report(Severity::Fatal, e);
                    continue;
                }
            };
            if let Some(short) = self.p.last_short.take() {
                self.p.intact = false;
                let e = Error::structure(
                    self.structure,
                    Fault::Invalid(format!(
                        "array block {short} is only partly filled but is not the last"
                    )),
                );
                w.report(Severity::Fatal, e);
            }
            if h.nr_entries == 0 || (h.nr_entries as u64) < self.per_block {
                self.p.last_short = Some(key);
            }
            self.p.len += h.nr_entries as u64;
            // Values past the expected length are never handed out: the length check
            // reports them, and a visitor sizes its buffers by the expected length.
            let first = key * self.per_block;
            let in_range = (h.nr_entries as u64).min(self.expected_len.saturating_sub(first));
            let used = in_range as usize * self.value_size as usize;
            (self.visit)(
                w,
                first,
                &block[ARRAY_HEADER_SIZE..ARRAY_HEADER_SIZE + used],
            );
        }
    }
}

impl<'w> Walker<'w> {
    /// Walks the array at `root`, which should hold `expected_len` values of `value_size`
    /// bytes, handing each array block's values to `visit` in index order. Checks key
    /// continuity, that only the last block is partly filled, and the total length. Returns
    /// whether the whole array was read and had the expected length.
    pub fn walk_array(
        &mut self,
        structure: &str,
        root: u64,
        value_size: u32,
        expected_len: u64,
        counting: bool,
        visit: &mut ValuesVisitor<'_, 'w>,
    ) -> bool {
        let per_block = array_max_entries(value_size) as u64;
        let mut p = Progress {
            next_key: 0,
            len: 0,
            last_short: None,
            intact: true,
        };
        let mut batch = Vec::with_capacity(READ_BATCH);
        let tree_ok = self.walk_btree(structure, root, 8, counting, &mut |w, key, value, c| {
            batch.push((key, LE::read_u64(value), c));
            if batch.len() == READ_BATCH {
                let mut b = Batch {
                    structure,
                    value_size,
                    per_block,
                    expected_len,
                    p: &mut p,
                    visit: &mut *visit,
                };
                b.take(w, &mut batch);
            }
        });
        Batch {
            structure,
            value_size,
            per_block,
            expected_len,
            p: &mut p,
            visit,
        }
        .take(self, &mut batch);
        if tree_ok && p.intact && p.len != expected_len {
            p.intact = false;
            let e = Error::structure(
                structure,
                Fault::Invalid(format!("holds {} values, expected {expected_len}", p.len)),
            );
            self.report(Severity::Fatal, e);
        }
        tree_ok && p.intact
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capacities_match_the_kernel() {
        assert_eq!(array_max_entries(4), 1018);
        assert_eq!(array_max_entries(8), 509);
    }

    #[test]
    fn header_round_trip_and_checks() {
        let mut b = vec![0u8; BLOCK_SIZE];
        let h = ArrayBlockHeader {
            max_entries: 1018,
            nr_entries: 3,
            value_size: 4,
            blocknr: 9,
        };
        h.pack(&mut b);
        checksum::seal(&mut b, BlockKind::ArrayBlock, 9);
        assert_eq!(ArrayBlockHeader::parse(&b, 9, 4), Ok(h));
        assert!(ArrayBlockHeader::parse(&b, 9, 8).is_err());
        LE::write_u32(&mut b[8..], 1019);
        checksum::reseal(&mut b, BlockKind::ArrayBlock);
        assert!(ArrayBlockHeader::parse(&b, 9, 4).is_err());
    }
}
