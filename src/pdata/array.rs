//! `dm-array`: fixed-size values packed into array blocks, indexed by a b-tree whose keys are
//! the array-block numbers 0, 1, 2, … and whose values are the array blocks' locations.

use std::sync::OnceLock;

use rayon::prelude::*;

use crate::pdata::checksum::{self, BlockKind};
use crate::pdata::error::{Error, Fault};
use crate::pdata::io::{Block, BLOCK_SIZE};
use crate::pdata::layout::layout;
use crate::pdata::report::Severity;
use crate::pdata::unpack::{unpack_all, Unpack};
use crate::pdata::walk::{Parent, Walker};

/// Bytes before the values.
pub const ARRAY_HEADER_SIZE: usize = 24;

/// Values of `value_size` bytes that fit in one array block.
pub fn array_max_entries(value_size: u32) -> u32 {
    crate::cast::in_block(BLOCK_SIZE - ARRAY_HEADER_SIZE) / value_size.max(1)
}

layout! {
    /// The header of an array block.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct ArrayBlockHeader {
        /// Capacity.
        pub max_entries: u32 @ 4,
        /// Values in use.
        pub nr_entries: u32 @ 8,
        /// Bytes per value.
        pub value_size: u32 @ 12,
        /// Where the block says it lives.
        pub blocknr: u64 @ 16,
    }
}

impl ArrayBlockHeader {
    /// Decodes the header of an array block.
    pub fn unpack(b: &[u8]) -> ArrayBlockHeader {
        ArrayBlockHeader::unpack_fields(b)
    }

    /// Encodes the header (the checksum is left to [`checksum::seal`]).
    pub fn pack(&self, b: &mut [u8]) {
        self.pack_fields(b);
    }

    /// Checks an array block read from `loc` that should hold `value_size`-byte values.
    pub fn parse(block: &[u8], loc: u64, value_size: u32) -> Result<ArrayBlockHeader, Fault> {
        checksum::verify(block, BlockKind::ARRAY_BLOCK, loc)?;
        ArrayBlockHeader::parse_verified(block, value_size)
    }

    /// [`ArrayBlockHeader::parse`] of a block whose checksum and location were checked as
    /// it was read ([`Walker::try_read`], [`Walker::try_read_run`]): the rest of the checks,
    /// without computing the checksum of the whole block a second time.
    pub fn parse_verified(block: &[u8], value_size: u32) -> Result<ArrayBlockHeader, Fault> {
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

/// Called for each run of values in index order: `(walker, index of the first value, the
/// values)`. Runs never overlap, never go back, and never reach the expected length.
pub type ValuesVisitor<'v, 'w, V> = dyn FnMut(&mut Walker<'w>, u64, &[V]) + 'v;

/// What identifies an array for a counting walk that may meet it twice: its root, value
/// size and length, and a detail of its owner that changes what is checked (a bitset's
/// bit count).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct ArrayShape {
    pub root: u64,
    pub value_size: u32,
    pub len: u64,
    pub detail: u64,
}

/// Array blocks whose reads are issued together. On a block device opened with `O_DIRECT`
/// every read goes to the device, so keeping several in flight is what makes a large array
/// fast to read. Through the page cache a batch is one run ([`RUN_BLOCKS`]): the buffers of
/// a larger one would only be more memory to fault in.
const READ_BATCH: usize = 256;
/// Consecutive blocks read in one request at most (128 KiB): few system calls, and still
/// several requests in flight per batch.
const RUN_BLOCKS: usize = 32;
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

/// Reads the array blocks at `locs`: consecutive ones in one request, the requests on
/// every core (copying from the page cache and checking checksums is work to share), and
/// several more in flight on a device that gains from it.
fn read_all(w: &Walker, locs: &[u64]) -> Vec<Result<Box<Block>, Fault>> {
    let runs = runs_of(locs);
    let one = |&(first, n): &(u64, usize)| w.try_read_run(BlockKind::ARRAY_BLOCK, first, n);
    let blocks: Vec<Vec<_>> = if runs.len() < 2 {
        runs.iter().map(one).collect()
    } else {
        match w.io().concurrent_reads().then(read_pool).flatten() {
            Some(pool) => pool.install(|| runs.par_iter().map(one).collect()),
            None => runs.iter().map(one).collect(),
        }
    };
    blocks.into_iter().flatten().collect()
}

/// `locs` as runs of consecutive blocks `(first, count)`, in order, each at most
/// [`RUN_BLOCKS`] long.
fn runs_of(locs: &[u64]) -> Vec<(u64, usize)> {
    let mut runs: Vec<(u64, usize)> = Vec::new();
    for &loc in locs {
        match runs.last_mut() {
            Some((first, n)) if *n < RUN_BLOCKS && first.checked_add(*n as u64) == Some(loc) => {
                *n += 1
            }
            _ => runs.push((loc, 1)),
        }
    }
    runs
}

/// An array block named by a leaf of the array's b-tree: its key, its location, and the
/// leaf that holds the pointer to it.
struct Pending {
    key: u64,
    loc: u64,
    leaf: Parent,
}

/// What becomes of a pending array block once its pointer is followed.
enum Step {
    /// Its key is past the array's end: reported, not followed.
    PastEnd,
    /// Read and check it.
    Read,
    /// A counting walk checked it intact and full before: taken as such, not read again.
    KnownFull,
}

/// One array being walked: where it is up to, and the visitor of its values.
struct ArrayWalk<'a, 'v, 'w, V> {
    structure: &'a str,
    per_block: u64,
    expected_len: u64,
    next_key: u64,
    len: u64,
    last_short: Option<u64>,
    intact: bool,
    /// The end of the last run handed to the visitor.
    handed: u64,
    values: Vec<V>,
    visit: &'a mut ValuesVisitor<'v, 'w, V>,
}

impl<'w, V: Unpack> ArrayWalk<'_, '_, 'w, V> {
    fn nr_ablocks(&self) -> u64 {
        self.expected_len.div_ceil(self.per_block)
    }

    fn fail(&mut self, w: &mut Walker<'w>, what: String) {
        self.intact = false;
        w.report(
            Severity::Error,
            Error::structure(self.structure, Fault::Invalid(what)),
        );
    }

    /// Follows the pointer to each pending block (counting it) and decides what to do.
    fn plan(&self, w: &mut Walker<'w>, pending: &[Pending]) -> Vec<Step> {
        let last_key = self.nr_ablocks().saturating_sub(1);
        pending
            .iter()
            .map(|p| {
                if p.key >= self.nr_ablocks() {
                    return Step::PastEnd;
                }
                let reach = w.follow(p.leaf, p.loc);
                let known =
                    reach.again() && p.key != last_key && w.full_block_checked(V::DISK_SIZE, p.loc);
                match known {
                    true => Step::KnownFull,
                    false => Step::Read,
                }
            })
            .collect()
    }

    /// Checks the pending blocks in key order, reading those to be read (in parallel),
    /// and hands their values to the visitor.
    fn take(&mut self, w: &mut Walker<'w>, pending: &mut Vec<Pending>) {
        let steps = self.plan(w, pending);
        let locs: Vec<u64> = pending
            .iter()
            .zip(&steps)
            .filter(|(_, s)| matches!(s, Step::Read))
            .map(|(p, _)| p.loc)
            .collect();
        let mut blocks = read_all(w, &locs).into_iter();
        for (p, step) in pending.drain(..).zip(steps) {
            self.check_key(w, p.key);
            match step {
                Step::PastEnd => {}
                Step::KnownFull => self.accept(w, p.key, array_max_entries(V::DISK_SIZE)),
                Step::Read => {
                    if let Some(block) = blocks.next() {
                        self.read_block(w, p.key, p.loc, block);
                    }
                }
            }
        }
    }

    /// Reports a key out of sequence or past the end.
    fn check_key(&mut self, w: &mut Walker<'w>, key: u64) {
        if key >= self.nr_ablocks() {
            let what = format!(
                "array block {key} is past the end of an array of {} values",
                self.expected_len
            );
            return self.fail(w, what);
        }
        if key != self.next_key {
            let what = format!(
                "array block {} is missing (next key is {key})",
                self.next_key
            );
            self.fail(w, what);
        }
        self.next_key = key + 1;
    }

    /// Checks a block read at `loc` and hands the values it holds inside the array's
    /// length to the visitor.
    fn read_block(
        &mut self,
        w: &mut Walker<'w>,
        key: u64,
        loc: u64,
        block: Result<Box<Block>, Fault>,
    ) {
        let vs = V::DISK_SIZE;
        let parsed = block.and_then(|b| ArrayBlockHeader::parse_verified(&b, vs).map(|h| (h, b)));
        let (h, block) = match parsed {
            Ok(hb) => hb,
            Err(f) => {
                self.intact = false;
                let e = Error::block(self.structure, BlockKind::ARRAY_BLOCK, loc, f);
                return w.report(Severity::Error, e);
            }
        };
        if h.nr_entries as u64 == self.per_block {
            w.remember_full_block(vs, loc);
        }
        self.accept(w, key, h.nr_entries);
        // Values past the expected length are never handed out: the length check reports
        // them, and a visitor may size what it fills by the expected length.
        let first = key * self.per_block;
        debug_assert!(first >= self.handed, "keys come in increasing order");
        let in_range = (h.nr_entries as u64).min(self.expected_len - first);
        self.handed = first + in_range;
        let end = ARRAY_HEADER_SIZE + crate::cast::index(in_range) * vs as usize;
        let bytes = &block[ARRAY_HEADER_SIZE..end];
        match V::view(bytes) {
            Some(values) => (self.visit)(w, first, values),
            None => {
                unpack_all(bytes, &mut self.values);
                (self.visit)(w, first, &self.values);
            }
        }
        w.recycle(block);
    }

    /// Counts the values of the block with `key`; only the last block may be partly
    /// filled.
    fn accept(&mut self, w: &mut Walker<'w>, key: u64, nr_entries: u32) {
        if let Some(short) = self.last_short.take() {
            let what = format!("array block {short} is only partly filled but is not the last");
            self.fail(w, what);
        }
        if (nr_entries as u64) < self.per_block {
            self.last_short = Some(key);
        }
        self.len += nr_entries as u64;
    }
}

impl<'w> Walker<'w> {
    /// Walks the array at `root` (a pointer held by `parent`), which should hold
    /// `expected_len` values of type `V`, handing them to `visit` in index order. Checks
    /// key continuity, that only the last block is partly filled, and the total length.
    /// Returns whether the whole array was read and had the expected length.
    pub fn walk_array<V: Unpack>(
        &mut self,
        structure: &str,
        root: u64,
        expected_len: u64,
        parent: Parent,
        visit: &mut ValuesVisitor<'_, 'w, V>,
    ) -> bool {
        self.walk_array_shaped(structure, root, expected_len, 0, parent, visit)
    }

    /// [`Walker::walk_array`], for an owner that checks more than the array (`detail`
    /// tells what, see [`ArrayShape`]).
    pub(crate) fn walk_array_shaped<V: Unpack>(
        &mut self,
        structure: &str,
        root: u64,
        expected_len: u64,
        detail: u64,
        parent: Parent,
        visit: &mut ValuesVisitor<'_, 'w, V>,
    ) -> bool {
        let reach = self.follow(parent, root);
        let shape = ArrayShape {
            root,
            value_size: V::DISK_SIZE,
            len: expected_len,
            detail,
        };
        if reach.again() && self.array_checked(shape) {
            return true;
        }
        let mut a = ArrayWalk {
            structure,
            per_block: array_max_entries(V::DISK_SIZE) as u64,
            expected_len,
            next_key: 0,
            len: 0,
            last_short: None,
            intact: true,
            handed: 0,
            values: Vec::new(),
            visit,
        };
        let batch = if self.io().concurrent_reads() {
            READ_BATCH
        } else {
            RUN_BLOCKS
        };
        let mut pending = Vec::with_capacity(batch);
        let tree_ok = self.walk_btree_reached(structure, root, reach, &mut |w, key, loc, leaf| {
            pending.push(Pending { key, loc, leaf });
            if pending.len() == batch {
                a.take(w, &mut pending);
            }
        });
        a.take(self, &mut pending);
        if tree_ok && a.intact && a.len != expected_len {
            a.fail(
                self,
                format!("holds {} values, expected {expected_len}", a.len),
            );
        }
        let ok = tree_ok && a.intact;
        if ok {
            self.remember_array(shape);
        }
        ok
    }
}

#[cfg(test)]
mod tests {
    use byteorder::{ByteOrder, LittleEndian as LE};

    use super::*;

    #[test]
    fn capacities_match_the_kernel() {
        // Values per array block in the kernel's arrays, by value size.
        for (value_size, max) in [(4, 1018), (8, 509)] {
            assert_eq!(
                array_max_entries(value_size),
                max,
                "{value_size}-byte values"
            );
        }
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
        checksum::seal(&mut b, BlockKind::ARRAY_BLOCK, 9);
        assert_eq!(ArrayBlockHeader::parse(&b, 9, 4), Ok(h));
        assert!(ArrayBlockHeader::parse(&b, 9, 8).is_err());
        // The checksum is the reader's to check: the rest is checked without it.
        b[100] ^= 1;
        assert_eq!(ArrayBlockHeader::parse(&b, 9, 4), Err(Fault::BadChecksum));
        assert_eq!(ArrayBlockHeader::parse_verified(&b, 4), Ok(h));
        assert!(ArrayBlockHeader::parse_verified(&b, 8).is_err());
        b[100] ^= 1;
        LE::write_u32(&mut b[8..], 1019);
        checksum::reseal(&mut b, BlockKind::ARRAY_BLOCK);
        assert!(ArrayBlockHeader::parse(&b, 9, 4).is_err());
    }
}

#[cfg(test)]
// Tests build their fixtures with casts of small, known values.
#[allow(clippy::cast_possible_truncation)]
mod walk_tests {
    use std::sync::Mutex;

    use super::*;
    use crate::pdata::array_build::{array_blocks, ArrayBuilder};
    use crate::pdata::io::{BlockIo, MemIo};
    use crate::pdata::write::BlockWriter;

    /// A device that counts the reads of each block.
    struct Reads {
        inner: MemIo,
        reads: Mutex<Vec<u32>>,
    }

    impl BlockIo for Reads {
        fn nr_blocks(&self) -> u64 {
            self.inner.nr_blocks()
        }
        fn read(&self, loc: u64, buf: &mut Block) -> std::io::Result<()> {
            if let Some(n) = self.reads.lock().unwrap().get_mut(loc as usize) {
                *n += 1;
            }
            self.inner.read(loc, buf)
        }
        fn write(&self, loc: u64, buf: &Block) -> std::io::Result<()> {
            self.inner.write(loc, buf)
        }
        fn flush(&self) -> std::io::Result<()> {
            Ok(())
        }
    }

    const LEN: u64 = 3 * 1018 + 5;

    /// An array of `LEN` values `0, 1, 2, …` from block 1, and a copy of its root (a
    /// second array sharing every array block) in the block after it.
    fn shared_arrays() -> (Reads, u64, u64) {
        let io = MemIo::new(array_blocks(LEN, 4) + 2);
        let mut w = BlockWriter::new(&io, 1, u64::MAX);
        let mut a = ArrayBuilder::new(4);
        for i in 0..LEN {
            a.push(&mut w, &(i as u32).to_le_bytes()).unwrap();
        }
        let root = a.finish(&mut w).unwrap();
        let copy = w.end();
        let mut b = io.read_new(root).unwrap();
        checksum::seal(&mut b[..], BlockKind::BTREE_NODE, copy);
        io.write(copy, &b).unwrap();
        let n = io.nr_blocks() as usize;
        let reads = Mutex::new(vec![0; n]);
        (Reads { inner: io, reads }, root, copy)
    }

    fn values(w: &mut Walker, root: u64, parent: Parent) -> (bool, Vec<(u64, u32)>) {
        let mut seen = Vec::new();
        let ok = w.walk_array("a", root, LEN, parent, &mut |_, first, v: &[u32]| {
            seen.extend((first..).zip(v.iter().copied()))
        });
        (ok, seen)
    }

    #[test]
    fn a_counting_walk_reads_what_two_arrays_share_once() {
        let (io, root, copy) = shared_arrays();
        let mut w = Walker::counting(&io, io.nr_blocks());
        let top = w.top();
        let sb = w.follow(top, 0);
        let (ok, all) = values(&mut w, root, sb);
        assert!(ok && all.len() == LEN as usize);
        assert!(all.iter().all(|&(i, v)| i == v as u64));
        // Through the copy: the full blocks are known; only the last is read again.
        let (ok, tail) = values(&mut w, copy, sb);
        assert!(ok);
        assert_eq!(tail, all[3 * 1018..]);
        // The same root again: nothing is read.
        let (ok, none) = values(&mut w, root, sb);
        assert!(ok && none.is_empty());
        assert!(w.problems().kept().is_empty(), "{:?}", w.problems().kept());

        let reads = io.reads.lock().unwrap().clone();
        let ablocks: Vec<u64> = (1..io.nr_blocks())
            .filter(|&l| l != root && l != copy)
            .collect();
        assert_eq!(ablocks.len(), 4);
        assert_eq!((reads[root as usize], reads[copy as usize]), (1, 1));
        let last = *ablocks.iter().max().unwrap();
        for &l in &ablocks {
            assert_eq!(
                reads[l as usize],
                if l == last { 2 } else { 1 },
                "block {l}"
            );
        }
        let refs = w.refs().unwrap();
        assert_eq!((refs.get(root), refs.get(copy)), (2, 1));
        assert!(ablocks.iter().all(|&l| refs.get(l) == 2));
    }

    #[test]
    fn a_walk_that_does_not_count_reads_and_hands_out_everything_each_time() {
        let (io, root, copy) = shared_arrays();
        let mut w = Walker::new(&io, io.nr_blocks());
        let top = w.top();
        for r in [root, copy, root] {
            let (ok, all) = values(&mut w, r, top);
            assert!(ok && all.len() == LEN as usize);
        }
        let reads = io.reads.lock().unwrap();
        assert_eq!((reads[root as usize], reads[copy as usize]), (2, 1));
        let ablocks = (1..io.nr_blocks()).filter(|&l| l != root && l != copy);
        assert!(ablocks.map(|l| reads[l as usize]).all(|n| n == 3));
    }

    #[test]
    fn values_past_the_expected_length_are_reported_and_never_handed_out() {
        let (io, root, _) = shared_arrays();
        let mut w = Walker::new(&io, io.nr_blocks());
        let top = w.top();
        let mut seen = Vec::new();
        let ok = w.walk_array("a", root, LEN - 3, top, &mut |_, first, v: &[u32]| {
            seen.push((first, v.len()))
        });
        assert!(!ok);
        assert_eq!(seen, [(0, 1018), (1018, 1018), (2036, 1018), (3054, 2)]);
        let p = w.problems().first_fatal().unwrap();
        assert_eq!(p.error.to_string(), "a: holds 3059 values, expected 3056");
    }
}
