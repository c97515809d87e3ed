//! dm-cache metadata written by the kernel, each header field of every block it holds set to
//! boundary values and the block re-sealed (so that the checksum passes and the reader meets
//! the value itself): the reader and the cache matching never panic, and a change the reader
//! accepts still gives a well-formed answer.

mod common;

use std::panic::{catch_unwind, AssertUnwindSafe};

use common::fixture;
use era_log_tools::cache::format::BLOCK_KINDS;
use era_log_tools::cache::invalidate::Matcher;
use era_log_tools::pdata::checksum::{checksum, reseal};
use era_log_tools::pdata::io::{MemIo, BLOCK_SIZE};
use era_log_tools::CacheMetadata;

/// Values a 32-bit field is set to: the edges of its range, and around powers of two that
/// counts and sizes are compared with.
const VALUES_32: [u32; 9] = [0, 1, 2, 63, 64, 509, 0x7fff_ffff, 0x8000_0000, u32::MAX];

/// Reads the image as era_invalidate --cache-metadata does: the superblock, every mapping,
/// and a match of every origin sector. Returns how many cache blocks were marked, or the
/// error's text.
fn read(img: Vec<u8>) -> Result<u64, String> {
    let md = CacheMetadata::from_io(Box::new(MemIo::from_bytes(img))).map_err(|e| e.to_string())?;
    let n = md.mappings().map_err(|e| e.to_string())?.count();
    let mut m = Matcher::new(&md);
    // Every sector of the fixtures' origin (64 MiB), and past it.
    m.written(0..1 << 24).map_err(|e| e.to_string())?;
    let inv = m.finish().map_err(|e| e.to_string())?;
    assert!(inv.count() <= u64::from(md.superblock().cache_blocks));
    assert!(n as u64 <= u64::from(md.superblock().cache_blocks));
    Ok(inv.count())
}

#[test]
fn boundary_values_in_every_block_header_never_panic() {
    let mut changes = 0;
    let mut accepted = 0;
    for name in [
        "cache-fixtures.meta1.img.gz",
        "cache-fixtures.meta2.img.gz",
        "cache-fixtures.meta2-live.img.gz",
    ] {
        let img = fixture(name);
        let intact = read(img.clone()).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(intact > 0, "{name}");
        for blk in 0..img.len() / BLOCK_SIZE {
            let b = &img[blk * BLOCK_SIZE..(blk + 1) * BLOCK_SIZE];
            let stored = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
            let Some(kind) = BLOCK_KINDS.iter().find(|&&k| checksum(b, k) == stored) else {
                continue;
            };
            // The headers of nodes, array blocks and space-map blocks are in their first 32
            // bytes; the superblock's fields run to byte 292.
            let span = if kind.is_superblock() { 292 } else { 32 };
            for off in (4..span).step_by(4) {
                for v in VALUES_32 {
                    let mut img = img.clone();
                    let b = &mut img[blk * BLOCK_SIZE..(blk + 1) * BLOCK_SIZE];
                    if b[off..off + 4] == v.to_le_bytes() {
                        continue;
                    }
                    b[off..off + 4].copy_from_slice(&v.to_le_bytes());
                    reseal(b, *kind);
                    let r = catch_unwind(AssertUnwindSafe(|| read(img)));
                    match r {
                        Ok(Ok(_)) => accepted += 1,
                        Ok(Err(e)) => assert!(!e.is_empty() && !e.contains('\n'), "{e}"),
                        Err(_) => panic!("{name}: block {blk}, offset {off} = {v:#x}: a panic"),
                    }
                    changes += 1;
                }
            }
        }
    }
    // Enough changes to mean something, and some the reader rightly takes (fields it does
    // not interpret, such as counters).
    assert!(changes > 1000, "{changes}");
    assert!(
        accepted > 0 && accepted < changes,
        "{accepted} of {changes}"
    );
}
