//! Opening era metadata for reading: the live superblock (read again when a live target was
//! rewriting it) and the held metadata snapshot.

use std::thread::sleep;
use std::time::Duration;

use super::superblock::{Superblock, SUPERBLOCK_LOCATION};
use crate::pdata::checksum::BlockKind;
use crate::pdata::error::{Error, Fault};
use crate::pdata::io::BlockIo;

/// Structure name of the held snapshot in messages.
pub const SNAPSHOT: &str = "metadata snapshot";

/// How often block 0 is read again when its checksum fails on a device that a live target
/// may be rewriting.
const LIVE_RETRIES: u32 = 5;
const RETRY_PAUSE: Duration = Duration::from_millis(20);

/// Reads and checks the superblock copy at `loc` (block 0, or a held snapshot).
pub fn read_superblock(io: &dyn BlockIo, structure: &str, loc: u64) -> Result<Superblock, Error> {
    let fail = |fault| Error::block(structure, BlockKind::EraSuperblock, loc, fault);
    if loc >= io.nr_blocks() {
        return Err(fail(Fault::OutOfRange {
            limit: io.nr_blocks(),
        }));
    }
    let block = io
        .read_new(loc)
        .map_err(|e| fail(Fault::Io(e.to_string())))?;
    Superblock::parse(&block, loc).map_err(fail)
}

/// Reads block 0. With `live`, a checksum failure is retried a few times, because the
/// kernel may be in the middle of rewriting the block.
pub fn read_live_superblock(io: &dyn BlockIo, live: bool) -> Result<Superblock, Error> {
    let mut tries = 0;
    loop {
        match read_superblock(io, "", SUPERBLOCK_LOCATION) {
            Err(e) if live && tries < LIVE_RETRIES && e.fault == Fault::BadChecksum => {
                tries += 1;
                sleep(RETRY_PAUSE);
            }
            r => return r,
        }
    }
}

/// Follows block 0's `metadata_snap` to the held snapshot and checks it. Only the
/// snapshot's writeset-tree and era-array roots may be followed from what it returns.
pub fn read_snapshot_superblock(io: &dyn BlockIo, live: &Superblock) -> Result<Superblock, Error> {
    if live.metadata_snap == 0 {
        return Err(Error::structure(
            "superblock",
            Fault::Invalid("no current metadata snap".into()),
        ));
    }
    read_superblock(io, SNAPSHOT, live.metadata_snap)
}
