//! The context every traversal of the metadata shares: the device, the bound on block
//! numbers, the reference counts being collected and the problems found.

use super::checksum::{self, BlockKind};
use super::error::{Error, Fault};
use super::io::{Block, BlockIo};
use super::refs::RefCounts;
use super::report::{Problems, Severity};

/// A traversal in progress. Walks never stop at the first problem: they record it, skip
/// what cannot be trusted and go on, so one run reports everything that is wrong.
pub struct Walker<'a> {
    io: &'a dyn BlockIo,
    limit: u64,
    /// Reference counts collected on the way, when the caller wants them.
    pub refs: Option<RefCounts>,
    /// What was found wrong.
    pub problems: Problems,
}

impl<'a> Walker<'a> {
    /// A walker that reads `io` and accepts block numbers below `limit` (the smaller of
    /// the device's and the space map's sizes).
    pub fn new(io: &'a dyn BlockIo, limit: u64) -> Walker<'a> {
        Walker {
            io,
            limit: limit.min(io.nr_blocks()),
            refs: None,
            problems: Problems::default(),
        }
    }

    /// A walker that also counts references to every block below its limit.
    pub fn counting(io: &'a dyn BlockIo, limit: u64) -> Walker<'a> {
        let mut w = Walker::new(io, limit);
        w.refs = Some(RefCounts::new(w.limit));
        w
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

    /// Counts a pointer to `loc` when `counting`; returns whether the pointers inside `loc`
    /// are to be counted in turn (see [`RefCounts::reach`]).
    pub fn count(&mut self, loc: u64, counting: bool) -> bool {
        match (&mut self.refs, counting) {
            (Some(r), true) => r.reach(loc),
            _ => false,
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

    /// Like [`Walker::read`], but hands the fault back instead of reporting it.
    pub fn try_read(&self, kind: BlockKind, loc: u64) -> Result<Box<Block>, Fault> {
        if loc >= self.limit {
            return Err(Fault::OutOfRange { limit: self.limit });
        }
        let block = self
            .io
            .read_new(loc)
            .map_err(|e| Fault::Io(e.to_string()))?;
        checksum::verify(&block, kind, loc)?;
        Ok(block)
    }
}
