//! A device that fails on purpose, for testing writers against interruption: it records
//! every write and flush, and fails the k-th write once or stops (like a power cut) there.
//! It wraps block devices ([`BlockIo`]) and byte devices ([`ByteIo`]) alike.

use std::io;
use std::sync::Mutex;

use super::io::{Block, BlockIo, ByteIo};

/// Which write fails, and how.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inject {
    /// Nothing: every write succeeds.
    None,
    /// Write number `k` (counting from 0) fails and is not applied; later ones succeed.
    FailOnce(u64),
    /// Write number `k` and everything after it (writes and flushes) fail and are not
    /// applied, as if the power had been cut.
    StopAt(u64),
}

/// One operation the writer asked for, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// A block was written (whether or not it reached the device).
    Write(u64),
    /// Bytes were written at this offset (whether or not they reached the device).
    WriteAt(u64),
    /// A flush was asked for.
    Flush,
}

/// Wraps a device and injects a [`Inject`].
pub struct FaultIo<D> {
    inner: D,
    fault: Inject,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    writes: u64,
    stopped: bool,
    ops: Vec<Op>,
}

fn injected() -> io::Error {
    io::Error::other("injected fault")
}

impl<D> FaultIo<D> {
    /// Wraps `inner`.
    pub fn new(inner: D, fault: Inject) -> FaultIo<D> {
        FaultIo {
            inner,
            fault,
            state: Mutex::new(State::default()),
        }
    }

    /// Every operation asked for so far, in order.
    pub fn ops(&self) -> Vec<Op> {
        self.lock().ops.clone()
    }

    /// The wrapped device.
    pub fn into_inner(self) -> D {
        self.inner
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl<D> FaultIo<D> {
    /// Counts a write and says whether it may go through.
    fn admit_write(&self, op: Op) -> io::Result<()> {
        let mut s = self.lock();
        s.ops.push(op);
        let k = s.writes;
        s.writes += 1;
        match self.fault {
            Inject::FailOnce(at) if at == k => Err(injected()),
            Inject::StopAt(at) if at <= k => {
                s.stopped = true;
                Err(injected())
            }
            _ => Ok(()),
        }
    }

    /// Records a flush and says whether it may go through.
    fn admit_flush(&self) -> io::Result<()> {
        let mut s = self.lock();
        s.ops.push(Op::Flush);
        if s.stopped {
            return Err(injected());
        }
        Ok(())
    }
}

impl<D: ByteIo> ByteIo for FaultIo<D> {
    fn size_bytes(&self) -> u64 {
        self.inner.size_bytes()
    }

    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        self.inner.read_at(buf, offset)
    }

    fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        self.admit_write(Op::WriteAt(offset))?;
        self.inner.write_at(buf, offset)
    }

    fn sync(&self) -> io::Result<()> {
        self.admit_flush()?;
        self.inner.sync()
    }
}

impl<D: BlockIo> BlockIo for FaultIo<D> {
    fn nr_blocks(&self) -> u64 {
        self.inner.nr_blocks()
    }

    fn read(&self, loc: u64, buf: &mut Block) -> io::Result<()> {
        self.inner.read(loc, buf)
    }

    fn write(&self, loc: u64, buf: &Block) -> io::Result<()> {
        self.admit_write(Op::Write(loc))?;
        self.inner.write(loc, buf)
    }

    fn flush(&self) -> io::Result<()> {
        self.admit_flush()?;
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pdata::io::MemIo;

    #[test]
    fn fail_once_then_recover_and_stop_for_good() {
        let b = Block::zeroed();
        let io = FaultIo::new(MemIo::new(4), Inject::FailOnce(1));
        assert!(io.write(0, &b).is_ok());
        assert!(io.write(1, &b).is_err());
        assert!(io.write(2, &b).is_ok());
        assert!(io.flush().is_ok());
        assert_eq!(
            io.ops(),
            vec![Op::Write(0), Op::Write(1), Op::Write(2), Op::Flush]
        );

        let mut one = Block::zeroed();
        one[0] = 1;
        let io = FaultIo::new(MemIo::new(4), Inject::StopAt(1));
        assert!(io.write(0, &one).is_ok());
        assert!(io.write(1, &one).is_err());
        assert!(io.flush().is_err());
        assert!(io.write(2, &one).is_err());
        let mem = io.into_inner();
        assert_eq!(mem.read_new(0).unwrap()[0], 1);
        assert_eq!(mem.read_new(1).unwrap()[0], 0);
        assert_eq!(mem.read_new(2).unwrap()[0], 0);
    }
}
