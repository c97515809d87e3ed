//! Output held in memory until it may be written, in memory of its own: a fixed reservation
//! of address space that costs nothing until it is written, asked to be backed by huge
//! pages. Megabytes of output touched a page at a time cost a page fault every 4 KiB, which
//! took longer than formatting them; in huge pages it is one fault every 2 MiB. Where the
//! kernel gives no huge pages the memory works the same, in ordinary pages.

use std::ptr::NonNull;

/// The alignment and size of a huge page on x86-64 (and the usual one elsewhere).
const HUGE_PAGE: usize = 2 << 20;

/// A buffer of fixed capacity that is only appended to.
pub struct HeldOutput {
    /// Start of the mapping.
    map: NonNull<u8>,
    map_len: usize,
    /// Start of the buffer: the first huge-page boundary in the mapping.
    start: NonNull<u8>,
    cap: usize,
    len: usize,
}

// SAFETY: the mapping is owned by the value alone, and moving it to another thread moves
// that ownership; nothing is shared.
unsafe impl Send for HeldOutput {}

impl HeldOutput {
    /// Reserves `cap` bytes; `None` when the address space cannot be had.
    pub fn new(cap: usize) -> Option<HeldOutput> {
        let map_len = cap.checked_add(HUGE_PAGE)?;
        // SAFETY: an anonymous private mapping chosen by the kernel, touching no existing
        // memory; the result is checked before use.
        let map = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                map_len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if map == libc::MAP_FAILED {
            return None;
        }
        let map = NonNull::new(map.cast::<u8>())?;
        let at = map.as_ptr() as usize;
        let skip = at.next_multiple_of(HUGE_PAGE) - at;
        // SAFETY: `skip` is below HUGE_PAGE, so `start..start + cap` lies in the mapping.
        let start = unsafe { map.add(skip) };
        // A hint: refused (no transparent huge pages), the memory is ordinary.
        // SAFETY: the range is part of our own mapping.
        unsafe { libc::madvise(start.as_ptr().cast(), cap, libc::MADV_HUGEPAGE) };
        Some(HeldOutput {
            map,
            map_len,
            start,
            cap,
            len: 0,
        })
    }

    /// Appends `bytes`, all or, when they do not fit (see [`HeldOutput::capacity`]),
    /// nothing; says which.
    pub fn append(&mut self, bytes: &[u8]) -> bool {
        if bytes.len() > self.cap - self.len {
            return false;
        }
        // SAFETY: `len + bytes.len() <= cap`, inside the mapping, which no slice handed out
        // borrows while `self` is borrowed mutably; the source is another allocation.
        unsafe {
            std::ptr::copy_nonoverlapping(
                bytes.as_ptr(),
                self.start.as_ptr().add(self.len),
                bytes.len(),
            );
        }
        self.len += bytes.len();
        true
    }

    /// What was appended.
    pub fn as_slice(&self) -> &[u8] {
        // SAFETY: the first `len` bytes were written by `append`, and stay mapped as long
        // as `self` lives.
        unsafe { std::slice::from_raw_parts(self.start.as_ptr(), self.len) }
    }

    /// Bytes that fit.
    pub fn capacity(&self) -> usize {
        self.cap
    }

    /// Bytes appended.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing was appended.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl Drop for HeldOutput {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `new`, unmapped once; no slice outlives `self`.
        unsafe { libc::munmap(self.map.as_ptr().cast(), self.map_len) };
    }
}

impl std::fmt::Debug for HeldOutput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HeldOutput")
            .field("len", &self.len)
            .field("cap", &self.cap)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appends_what_fits_and_refuses_the_rest_whole() {
        let mut h = HeldOutput::new(10).unwrap();
        assert!(h.is_empty());
        assert!(h.append(b"hello"));
        assert!(h.append(b" wor"));
        assert!(!h.append(b"ld"), "11 bytes in 10");
        assert!(h.append(b"l"));
        assert_eq!(h.as_slice(), b"hello worl");
        assert_eq!(h.len(), 10);
        assert!(!h.append(b"d"));
    }

    #[test]
    fn megabytes_cross_huge_page_boundaries_intact() {
        let mut h = HeldOutput::new(5 << 20).unwrap();
        let piece: Vec<u8> = (0..=255u8).cycle().take(100_003).collect();
        let mut n = 0;
        while h.append(&piece) {
            n += 1;
        }
        assert_eq!(n, (5 << 20) / piece.len());
        assert!(h.as_slice().chunks(piece.len()).all(|c| c == piece));
    }
}
