//! Opening era metadata for reading, the one way every tool does it: block 0's superblock
//! (read again when a live target was rewriting it), the held metadata snapshot, and the
//! bound on the block numbers a reader may follow.

use std::thread::sleep;
use std::time::Duration;

use super::format::superblock::{Superblock, SUPERBLOCK_LOCATION};
use super::format::BLOCK_KINDS;
use crate::pdata::error::{Error, Fault};
use crate::pdata::io::BlockIo;
use crate::pdata::space_map::MAX_METADATA_BLOCKS;
use crate::pdata::walk::Walker;

/// Structure name of the held snapshot in messages.
pub const SNAPSHOT: &str = "metadata snapshot";

/// How often block 0 is read again when its checksum fails on a device that a live target
/// may be rewriting.
const LIVE_RETRIES: u32 = 5;
const RETRY_PAUSE: Duration = Duration::from_millis(20);

/// Reads and checks the superblock copy at `loc` (block 0, or a held snapshot).
fn read_superblock(io: &dyn BlockIo, structure: &str, loc: u64) -> Result<Superblock, Error> {
    let fail = |fault| Error::block(structure, super::format::SUPERBLOCK, loc, fault);
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

/// Reads block 0. With `target_may_write`, a checksum failure is retried a few times,
/// because the kernel may be in the middle of rewriting the block.
fn read_block0(io: &dyn BlockIo, target_may_write: bool) -> Result<Superblock, Error> {
    let mut tries = 0;
    loop {
        match read_superblock(io, "", SUPERBLOCK_LOCATION) {
            Err(e) if target_may_write && tries < LIVE_RETRIES && e.fault == Fault::BadChecksum => {
                tries += 1;
                sleep(RETRY_PAUSE);
            }
            r => return r,
        }
    }
}

/// The bound on metadata block numbers for every reader: the device's size, the size the
/// metadata space map of block 0 describes, and the most a metadata space map can
/// describe, whichever is smallest. The kernel allocates nothing past it.
pub fn block_limit(io: &dyn BlockIo, block0: &Superblock) -> u64 {
    block0
        .sm_root
        .nr_blocks
        .min(io.nr_blocks())
        .min(MAX_METADATA_BLOCKS)
}

/// Era metadata opened for reading: block 0, checked as the kernel checks it, and the
/// bound on block numbers that every view of it shares. Its views are made in
/// [`super::view`].
#[derive(Debug, Clone)]
pub struct Metadata {
    /// The superblock in block 0.
    pub block0: Superblock,
    pub(super) limit: u64,
}

impl Metadata {
    /// Reads block 0. `target_may_write` says that a live target may be rewriting it (the
    /// device of a held snapshot), so that a checksum failure is read again.
    pub fn open(io: &dyn BlockIo, target_may_write: bool) -> Result<Metadata, Error> {
        let block0 = read_block0(io, target_may_write)?;
        let limit = block_limit(io, &block0);
        Ok(Metadata { block0, limit })
    }

    /// Block numbers must be below this.
    pub fn limit(&self) -> u64 {
        self.limit
    }

    /// A walker over this metadata: bounded by [`Metadata::limit`], naming a block of any
    /// era kind found where another was expected.
    pub fn walker<'a>(&self, io: &'a dyn BlockIo) -> Walker<'a> {
        Walker::new(io, self.limit).recognising(&BLOCK_KINDS)
    }

    /// [`Metadata::walker`], counting the references to every block (a check's walk).
    pub fn counting_walker<'a>(&self, io: &'a dyn BlockIo) -> Walker<'a> {
        Walker::counting(io, self.limit).recognising(&BLOCK_KINDS)
    }

    /// Follows block 0's `metadata_snap` to the held snapshot and checks it. Only the
    /// snapshot's writeset-tree and era-array roots may be followed from what it returns.
    pub fn snapshot_superblock(&self, io: &dyn BlockIo) -> Result<Superblock, Error> {
        if self.block0.metadata_snap == 0 {
            return Err(Error::structure(
                "superblock",
                Fault::Invalid("no current metadata snap".into()),
            ));
        }
        read_superblock(io, SNAPSHOT, self.block0.metadata_snap)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;
    use crate::era::format::superblock::SUPERBLOCK_MAGIC;
    use crate::pdata::checksum::seal;
    use crate::pdata::io::{Block, MemIo};

    /// Block 0 reads torn (one byte off) for the first `torn` reads, as when the kernel is
    /// rewriting it.
    struct Torn {
        inner: MemIo,
        torn: AtomicU32,
    }

    impl BlockIo for Torn {
        fn nr_blocks(&self) -> u64 {
            self.inner.nr_blocks()
        }
        fn read(&self, loc: u64, buf: &mut Block) -> std::io::Result<()> {
            self.inner.read(loc, buf)?;
            if loc == 0 && self.torn.load(Ordering::SeqCst) > 0 {
                self.torn.fetch_sub(1, Ordering::SeqCst);
                buf[300] ^= 1;
            }
            Ok(())
        }
        fn write(&self, loc: u64, buf: &Block) -> std::io::Result<()> {
            self.inner.write(loc, buf)
        }
        fn flush(&self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn device(torn: u32) -> Torn {
        let inner = MemIo::new(4);
        let mut b = Block::zeroed();
        let sb = Superblock::unpack(&b);
        Superblock {
            magic: SUPERBLOCK_MAGIC,
            version: 1,
            ..sb
        }
        .pack(&mut b);
        seal(&mut b, crate::era::format::SUPERBLOCK, 0);
        inner.write(0, &b).unwrap();
        Torn {
            inner,
            torn: AtomicU32::new(torn),
        }
    }

    #[test]
    fn a_torn_superblock_is_read_again_only_on_a_live_device() {
        assert!(read_block0(&device(3), true).is_ok());
        let e = read_block0(&device(3), false).unwrap_err();
        assert_eq!(e.fault, Fault::BadChecksum);
        let e = read_block0(&device(LIVE_RETRIES + 1), true).unwrap_err();
        assert_eq!(e.fault, Fault::BadChecksum);
    }

    /// A device of `.0` blocks that holds nothing.
    struct Empty(u64);

    impl BlockIo for Empty {
        fn nr_blocks(&self) -> u64 {
            self.0
        }
        fn read(&self, _: u64, _: &mut Block) -> std::io::Result<()> {
            Err(std::io::Error::other("empty"))
        }
        fn write(&self, _: u64, _: &Block) -> std::io::Result<()> {
            Err(std::io::Error::other("empty"))
        }
        fn flush(&self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn every_view_shares_one_bound_on_block_numbers() {
        let mut sb = Superblock::unpack(&Block::zeroed());
        let huge = MAX_METADATA_BLOCKS + 100;
        for (dev, sm_blocks, limit) in [
            (4, 3, 3),
            (4, 4, 4),
            (4, 9, 4),
            (huge, huge, MAX_METADATA_BLOCKS),
            (huge, 7, 7),
        ] {
            sb.sm_root.nr_blocks = sm_blocks;
            assert_eq!(block_limit(&Empty(dev), &sb), limit, "{dev} {sm_blocks}");
        }
        let md = Metadata {
            block0: sb.clone(),
            limit: 3,
        };
        assert_eq!(md.block0_view().limit(), 3);
        assert_eq!(md.snapshot_view(sb).limit(), 3);
    }
}
