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

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;
    use crate::era::superblock::SUPERBLOCK_MAGIC;
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
        seal(&mut b, BlockKind::EraSuperblock, 0);
        inner.write(0, &b).unwrap();
        Torn {
            inner,
            torn: AtomicU32::new(torn),
        }
    }

    #[test]
    fn a_torn_superblock_is_read_again_only_on_a_live_device() {
        assert!(read_live_superblock(&device(3), true).is_ok());
        let e = read_live_superblock(&device(3), false).unwrap_err();
        assert_eq!(e.fault, Fault::BadChecksum);
        let e = read_live_superblock(&device(LIVE_RETRIES + 1), true).unwrap_err();
        assert_eq!(e.fault, Fault::BadChecksum);
    }
}
