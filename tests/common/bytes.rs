//! Reading and editing metadata images in place: blocks, little-endian fields, checksums.

use era_log_tools::pdata::checksum::{self, BlockKind};
use era_log_tools::pdata::io::BLOCK_SIZE;

/// The 4096 bytes of block `loc`.
pub fn block(img: &[u8], loc: u64) -> &[u8] {
    let s = loc as usize * BLOCK_SIZE;
    &img[s..s + BLOCK_SIZE]
}

/// The 4096 bytes of block `loc`, writable.
pub fn block_mut(img: &mut [u8], loc: u64) -> &mut [u8] {
    let s = loc as usize * BLOCK_SIZE;
    &mut img[s..s + BLOCK_SIZE]
}

/// Recomputes the checksum of block `loc` as a block of `kind`.
pub fn reseal(img: &mut [u8], loc: u64, kind: BlockKind) {
    checksum::reseal(block_mut(img, loc), kind);
}

/// The little-endian u64 at `off`.
pub fn le64(b: &[u8], off: usize) -> u64 {
    u64::from_le_bytes(b[off..off + 8].try_into().expect("8 bytes"))
}

/// The little-endian u32 at `off`.
pub fn le32(b: &[u8], off: usize) -> u32 {
    u32::from_le_bytes(b[off..off + 4].try_into().expect("4 bytes"))
}

/// Writes `v` little-endian at `off`.
pub fn put64(b: &mut [u8], off: usize, v: u64) {
    b[off..off + 8].copy_from_slice(&v.to_le_bytes());
}

/// Writes `v` little-endian at `off`.
pub fn put32(b: &mut [u8], off: usize, v: u32) {
    b[off..off + 4].copy_from_slice(&v.to_le_bytes());
}

/// Archived writesets in an image (the writeset tree's entries).
pub fn archived(img: &[u8]) -> u64 {
    use era_log_tools::era::view::View;
    use era_log_tools::pdata::io::MemIo;
    use era_log_tools::pdata::walk::Walker;
    let io = MemIo::from_bytes(img.to_vec());
    let view = View::open(&io, false).expect("readable metadata");
    let mut w = Walker::new(&io, view.limit());
    let top = w.top();
    let n = view
        .writesets(&mut w, top)
        .iter()
        .filter(|ws| !ws.current)
        .count();
    assert!(w.problems().first_fatal().is_none());
    n as u64
}
