//! The context every traversal of the metadata shares: the device, the bound on block
//! numbers, the reference counts being collected, what was already checked, and the
//! problems found.

use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, PoisonError};

use super::array::ArrayShape;
use super::checksum::{self, BlockKind};
use super::error::{Error, Fault};
use super::io::{Block, BlockIo};
use super::refs::RefCounts;
use super::report::{Problems, Severity};

/// How the walk reached the block that holds the pointers it follows next. The walker hands
/// it out (to leaf visitors, and from [`Walker::follow`]) and takes it back when a pointer
/// held in that block is followed; it decides whether the pointer is counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Parent(Reach);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reach {
    /// The walker counts no references.
    Uncounted,
    /// Reached for the first time: the pointers it holds are counted.
    First,
    /// Reached before, itself or through a block above it: the pointers it holds were
    /// counted then.
    Again,
}

impl Parent {
    /// Whether the block was reached before by a counting walk, so that what it holds was
    /// counted, and checked, already.
    pub(crate) fn again(self) -> bool {
        self.0 == Reach::Again
    }
}

/// What a counting walk remembers having checked intact, so that a block shared between
/// two trees (the live metadata and the held snapshot) is read once.
#[derive(Default)]
struct Checked {
    /// Whole arrays.
    arrays: HashSet<ArrayShape>,
    /// Array blocks filled to capacity, one bit per block, by value size.
    full_blocks: HashMap<u32, Vec<u64>>,
}

/// A counting walk's state: the references found and what was checked.
struct Counting {
    refs: RefCounts,
    checked: Checked,
}

/// A traversal in progress. Walks never stop at the first problem: they record it, skip
/// what cannot be trusted and go on, so one run reports everything that is wrong.
pub struct Walker<'a> {
    io: &'a dyn BlockIo,
    limit: u64,
    counting: Option<Counting>,
    problems: Problems,
    /// The kinds a block found where another was expected is named as.
    known: &'static [BlockKind],
    /// Buffers of blocks visited, for the next reads: fresh ones for every batch make the
    /// allocator give the memory back to the system and fault it in again, batch after batch.
    spare: Mutex<Vec<Box<Block>>>,
}

/// Buffers kept for reuse at most (2 MiB).
const SPARE_MAX: usize = 512;

impl<'a> Walker<'a> {
    /// A walker that reads `io` and accepts block numbers below `limit` (the smaller of
    /// the device's and the space map's sizes).
    pub fn new(io: &'a dyn BlockIo, limit: u64) -> Walker<'a> {
        Walker {
            io,
            limit: limit.min(io.nr_blocks()),
            counting: None,
            problems: Problems::default(),
            known: &BlockKind::GENERIC,
            spare: Mutex::new(Vec::new()),
        }
    }

    /// A walker that also counts references to every block below its limit. A block it
    /// reaches again (a subtree the held snapshot shares with the live metadata) is
    /// counted each time, and read again only when its first visit did not check all that
    /// the new one would: arrays and full array blocks checked intact are not read twice,
    /// and their values are not handed to a visitor twice.
    pub fn counting(io: &'a dyn BlockIo, limit: u64) -> Walker<'a> {
        let mut w = Walker::new(io, limit);
        w.counting = Some(Counting {
            refs: RefCounts::new(w.limit),
            checked: Checked::default(),
        });
        w
    }

    /// This walker, naming a block of any of `known` (the format's kinds) found where
    /// another kind was expected.
    pub fn recognising(mut self, known: &'static [BlockKind]) -> Walker<'a> {
        self.known = known;
        self
    }

    /// This walker, carrying on from problems found before it started.
    pub fn with_problems(mut self, problems: Problems) -> Walker<'a> {
        self.problems = problems;
        self
    }

    /// The device.
    pub fn io(&self) -> &'a dyn BlockIo {
        self.io
    }

    /// Block numbers must be below this.
    pub fn limit(&self) -> u64 {
        self.limit
    }

    /// Records a problem.
    pub fn report(&mut self, severity: Severity, error: Error) {
        self.problems.push(severity, error);
    }

    /// What was found wrong so far.
    pub fn problems(&self) -> &Problems {
        &self.problems
    }

    /// What was found wrong, handed over.
    pub fn into_problems(self) -> Problems {
        self.problems
    }

    /// The references counted so far, if this walker counts them.
    pub fn refs(&self) -> Option<&RefCounts> {
        self.counting.as_ref().map(|c| &c.refs)
    }

    /// The parent of pointers held outside the trees a walk reads: a superblock's, or the
    /// space map root's. Following one from it always counts it.
    pub fn top(&self) -> Parent {
        match self.counting {
            Some(_) => Parent(Reach::First),
            None => Parent(Reach::Uncounted),
        }
    }

    /// Follows a pointer to `loc` held by `parent`: counts it when `parent` is reached for
    /// the first time, and returns how `loc` is reached in turn.
    pub fn follow(&mut self, parent: Parent, loc: u64) -> Parent {
        match (parent.0, &mut self.counting) {
            (Reach::First, Some(c)) => match c.refs.reach(loc) {
                true => Parent(Reach::First),
                false => Parent(Reach::Again),
            },
            (Reach::Uncounted, _) | (_, None) => Parent(Reach::Uncounted),
            (Reach::Again, Some(_)) => Parent(Reach::Again),
        }
    }

    /// Whether the array described by `shape` was walked intact before.
    pub(crate) fn array_checked(&self, shape: ArrayShape) -> bool {
        self.counting
            .as_ref()
            .is_some_and(|c| c.checked.arrays.contains(&shape))
    }

    /// Remembers that the array described by `shape` was walked intact.
    pub(crate) fn remember_array(&mut self, shape: ArrayShape) {
        if let Some(c) = &mut self.counting {
            c.checked.arrays.insert(shape);
        }
    }

    /// Whether the array block at `loc` was checked intact and full of `value_size`-byte
    /// values before.
    pub(crate) fn full_block_checked(&self, value_size: u32, loc: u64) -> bool {
        let Some(c) = &self.counting else {
            return false;
        };
        c.checked
            .full_blocks
            .get(&value_size)
            .and_then(|bits| bits.get((loc / 64) as usize))
            .is_some_and(|w| w >> (loc % 64) & 1 == 1)
    }

    /// Remembers that the array block at `loc` is intact and full of `value_size`-byte
    /// values.
    pub(crate) fn remember_full_block(&mut self, value_size: u32, loc: u64) {
        let limit = self.limit;
        let Some(c) = &mut self.counting else {
            return;
        };
        let bits = c
            .checked
            .full_blocks
            .entry(value_size)
            .or_insert_with(|| vec![0; crate::cast::index(limit.div_ceil(64))]);
        if let Some(w) = bits.get_mut(crate::cast::index(loc / 64)) {
            *w |= 1 << (loc % 64);
        }
    }

    /// Reads block `loc` of `structure` and checks that it is an intact block of `kind`
    /// located there. On failure the problem is reported as fatal and `None` returned.
    pub fn read(&mut self, structure: &str, kind: BlockKind, loc: u64) -> Option<Box<Block>> {
        match self.try_read(kind, loc) {
            Ok(b) => Some(b),
            Err(fault) => {
                self.report(Severity::Error, Error::block(structure, kind, loc, fault));
                None
            }
        }
    }

    /// Reads the `n` consecutive blocks of `kind` from `first` and checks each as
    /// [`Walker::try_read`] does. A run that cannot be read in one go is read block by
    /// block, so that each fault names its own block.
    pub fn try_read_run(
        &self,
        kind: BlockKind,
        first: u64,
        n: usize,
    ) -> Vec<Result<Box<Block>, Fault>> {
        let one_by_one = || {
            (first..)
                .take(n)
                .map(|loc| self.try_read(kind, loc))
                .collect()
        };
        if n < 2 || first.saturating_add(n as u64) > self.limit {
            return one_by_one();
        }
        let mut bufs = self.buffers(n);
        if self.io.read_run(first, &mut bufs).is_err() {
            return one_by_one();
        }
        (first..)
            .zip(bufs)
            .map(|(loc, block)| {
                checksum::verify_among(&block, kind, loc, self.known)?;
                Ok(block)
            })
            .collect()
    }

    /// `n` block buffers, reused where there are some; their content is to be read over.
    fn buffers(&self, n: usize) -> Vec<Box<Block>> {
        let mut spare = self.spare.lock().unwrap_or_else(PoisonError::into_inner);
        let kept = spare.len() - n.min(spare.len());
        let mut bufs: Vec<Box<Block>> = spare.drain(kept..).collect();
        drop(spare);
        bufs.resize_with(n, Block::zeroed);
        bufs
    }

    /// Hands back a block that has been visited, for the next reads to reuse.
    pub(crate) fn recycle(&self, block: Box<Block>) {
        let mut spare = self.spare.lock().unwrap_or_else(PoisonError::into_inner);
        if spare.len() < SPARE_MAX {
            spare.push(block);
        }
    }

    /// Like [`Walker::read`], but hands the fault back instead of reporting it.
    pub fn try_read(&self, kind: BlockKind, loc: u64) -> Result<Box<Block>, Fault> {
        if loc >= self.limit {
            return Err(Fault::OutOfRange { limit: self.limit });
        }
        let block = self
            .io
            .read_new(loc)
            .map_err(|e| Fault::Io(e.to_string()))?;
        checksum::verify_among(&block, kind, loc, self.known)?;
        Ok(block)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pdata::io::MemIo;

    #[test]
    fn only_pointers_of_blocks_reached_first_are_counted() {
        let io = MemIo::new(8);
        let mut w = Walker::counting(&io, 8);
        let top = w.top();
        let a = w.follow(top, 3);
        let b = w.follow(top, 3);
        assert!(!a.again() && b.again());
        w.follow(a, 5);
        w.follow(b, 6);
        let refs = w.refs().unwrap();
        assert_eq!((refs.get(3), refs.get(5), refs.get(6)), (2, 1, 0));

        let mut plain = Walker::new(&io, 8);
        let top = plain.top();
        assert!(!plain.follow(top, 3).again());
        assert!(plain.refs().is_none());
    }

    #[test]
    fn a_run_read_at_once_checks_each_block_on_its_own() {
        use crate::pdata::checksum::seal;
        let io = MemIo::new(10);
        for loc in 2..8 {
            let mut b = Block::zeroed();
            seal(&mut b.0, BlockKind::ARRAY_BLOCK, loc);
            io.write(loc, &b).unwrap();
        }
        let mut bad = io.read_new(5).unwrap();
        bad.0[100] ^= 1;
        io.write(5, &bad).unwrap();
        let w = Walker::new(&io, 7);
        // Within the limit: one request, and block 5's checksum fails on its own.
        let got = w.try_read_run(BlockKind::ARRAY_BLOCK, 2, 5);
        let faults: Vec<bool> = got.iter().map(|r| r.is_err()).collect();
        assert_eq!(faults, [false, false, false, true, false]);
        assert!(matches!(got[3], Err(Fault::BadChecksum)));
        let got = w.try_read_run(BlockKind::ARRAY_BLOCK, 2, 6);
        assert_eq!(got.len(), 6);
        let faults: Vec<bool> = got.iter().map(|r| r.is_err()).collect();
        // Block 5 is damaged, block 7 is past the walk's limit; the others read.
        assert_eq!(faults, [false, false, false, true, false, true]);
        assert!(matches!(got[5], Err(Fault::OutOfRange { limit: 7 })));
    }

    #[test]
    fn only_a_counting_walk_remembers_what_it_checked() {
        let io = MemIo::new(200);
        let mut w = Walker::counting(&io, 200);
        w.remember_full_block(4, 130);
        assert!(w.full_block_checked(4, 130));
        assert!(!w.full_block_checked(8, 130) && !w.full_block_checked(4, 131));
        let shape = |len| ArrayShape {
            root: 9,
            value_size: 4,
            len,
            detail: 0,
        };
        w.remember_array(shape(10));
        assert!(w.array_checked(shape(10)) && !w.array_checked(shape(11)));
        let mut plain = Walker::new(&io, 200);
        plain.remember_full_block(4, 130);
        plain.remember_array(shape(10));
        assert!(!plain.full_block_checked(4, 130) && !plain.array_checked(shape(10)));
    }
}
