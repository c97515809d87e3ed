//! The era array of a restore, kept in a temporary file until the whole input is known to
//! be valid: nothing may be written to the output before that, and the array (4 bytes per
//! origin block, 8 GiB at the kernel's limit) does not belong in memory.
//!
//! The file is created in the directory of `$TMPDIR` (else `/tmp`) and unlinked at once
//! (`O_TMPFILE` where the file system has it; `tempfile::tempfile_in`), so nothing is left
//! behind, whatever happens. Entries are written in order as little-endian `u32`s; a gap in the XML's
//! entries is a hole in the file, which reads back as zeros.

use std::fs::File;
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use byteorder::{ByteOrder, LittleEndian as LE};

/// Bytes per entry.
const ENTRY: usize = 4;
/// Bytes written or read at a time.
const BUFFER: usize = 1 << 20;

/// The era array so far.
pub struct Spool {
    out: BufWriter<File>,
    dir: PathBuf,
    next: u64,
    bytes: Vec<u8>,
}

impl Spool {
    /// An empty array in a new temporary file.
    pub fn new() -> io::Result<Spool> {
        let dir = std::env::temp_dir();
        let f = tempfile::tempfile_in(&dir).map_err(|e| Spool::context(&dir, e))?;
        Ok(Spool {
            out: BufWriter::with_capacity(BUFFER, f),
            dir,
            next: 0,
            bytes: Vec::new(),
        })
    }

    fn context(dir: &Path, e: io::Error) -> io::Error {
        io::Error::new(
            e.kind(),
            format!(
                "temporary file in {} (the era array waits there, 4 bytes per block; set \
                 TMPDIR to use another directory): {e}",
                dir.display()
            ),
        )
    }

    /// Entries from `first` on; `first` is at least the number of entries so far.
    pub fn put(&mut self, first: u64, eras: &[u32]) -> io::Result<()> {
        self.put_inner(first, eras)
            .map_err(|e| Spool::context(&self.dir, e))
    }

    fn put_inner(&mut self, first: u64, eras: &[u32]) -> io::Result<()> {
        if first < self.next {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "era entries out of order",
            ));
        }
        if first > self.next {
            let gap = i64::try_from((first - self.next) * ENTRY as u64).map_err(|_| {
                io::Error::new(io::ErrorKind::InvalidInput, "era entry past any file's end")
            })?;
            self.out.seek(SeekFrom::Current(gap))?;
        }
        self.bytes.resize(eras.len() * ENTRY, 0);
        LE::write_u32_into(eras, &mut self.bytes);
        self.out.write_all(&self.bytes)?;
        self.next = first + eras.len() as u64;
        Ok(())
    }

    /// Hands the `nr_blocks` entries to `f` in order, a run at a time, zeros after the
    /// last one given. A failure to read them back is `own`'s error, told apart from `f`'s.
    pub fn replay<E>(
        self,
        nr_blocks: u64,
        own: fn(io::Error) -> E,
        f: &mut dyn FnMut(&[u32]) -> Result<(), E>,
    ) -> Result<(), E> {
        let dir = self.dir;
        let mut file = self
            .out
            .into_inner()
            .map_err(|e| own(Spool::context(&dir, e.into_error())))?;
        file.seek(SeekFrom::Start(0))
            .map_err(|e| own(Spool::context(&dir, e)))?;
        let stored = self.next.min(nr_blocks);
        let mut bytes = vec![0u8; BUFFER];
        let mut eras: Vec<u32> = Vec::with_capacity(BUFFER / ENTRY);
        let mut done = 0u64;
        while done < nr_blocks {
            // Both at most BUFFER.
            let n = crate::cast::index(((nr_blocks - done) * ENTRY as u64).min(BUFFER as u64));
            let from_file =
                crate::cast::index((stored.saturating_sub(done) * ENTRY as u64).min(n as u64));
            file.read_exact(&mut bytes[..from_file])
                .map_err(|e| own(Spool::context(&dir, e)))?;
            bytes[from_file..n].fill(0);
            eras.resize(n / ENTRY, 0);
            LE::read_u32_into(&bytes[..n], &mut eras);
            f(&eras)?;
            done += eras.len() as u64;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_come_back_in_order_with_gaps_and_the_end_as_zeros() {
        let mut s = Spool::new().unwrap();
        s.put(0, &[5, 6]).unwrap();
        s.put(2, &[7]).unwrap();
        s.put(300_000, &[9; 10]).unwrap();
        assert!(s.put(5, &[1]).is_err());
        let mut got = Vec::new();
        s.replay(400_000, |e| e, &mut |e| {
            got.extend_from_slice(e);
            Ok(())
        })
        .unwrap();
        assert_eq!(got.len(), 400_000);
        assert_eq!(&got[..4], &[5, 6, 7, 0]);
        assert!(got[3..300_000].iter().all(|&e| e == 0));
        assert_eq!(&got[300_000..300_010], &[9; 10]);
        assert!(got[300_010..].iter().all(|&e| e == 0));
    }
}
