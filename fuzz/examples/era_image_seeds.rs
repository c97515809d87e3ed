//! Writes the seed corpus of the `era_image` fuzz target into the folder given: for every
//! block in use in each image the target patches, one input that rewrites the block's
//! header with the bytes it already holds and re-seals it. A mutation of such an input
//! changes a header field of a real block behind a valid checksum, so that it reaches the
//! structure checks.
//!
//!     cargo run --example era_image_seeds -- seeds/era_image      (in fuzz/)

use std::path::PathBuf;

use era_log_tools::era::format::superblock::Superblock;
use era_log_tools::era::format::BLOCK_KINDS;
use era_log_tools::pdata::checksum::{checksum, BlockKind};
use era_log_tools::pdata::io::BLOCK_SIZE;
use era_log_tools::pdata::space_map::bitmap::get_code;
use era_log_tools::pdata::space_map::index::IndexBlock;
use era_log_tools_fuzz::era_images;

/// Where the header of a block of `kind` ends: everything after the checksum up to there
/// is rewritten (for the space-map index, its first entry too).
fn header_end(kind: BlockKind) -> usize {
    match kind {
        BlockKind::BTREE_NODE | BlockKind::SM_INDEX => 32,
        BlockKind::ARRAY_BLOCK => 24,
        BlockKind::SM_BITMAP => 16,
        _ => 224,
    }
}

/// The blocks in use (a count in the space map's first bitmap, which covers these small
/// images) and their kinds, known from their checksums.
fn blocks_in_use(img: &[u8]) -> Vec<(u64, BlockKind)> {
    let block = |loc: u64| &img[loc as usize * BLOCK_SIZE..(loc as usize + 1) * BLOCK_SIZE];
    let sb = Superblock::unpack(block(0));
    let bitmap = IndexBlock::unpack(block(sb.sm_root.bitmap_root)).entries[0].blocknr;
    (0..sb.sm_root.nr_blocks.min((img.len() / BLOCK_SIZE) as u64))
        .filter(|&loc| get_code(block(bitmap), loc) != 0)
        .filter_map(|loc| {
            let b = block(loc);
            let stored = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
            let kind = BLOCK_KINDS
                .into_iter()
                .find(|&k| checksum(b, k) == stored)?;
            Some((loc, kind))
        })
        .collect()
}

fn main() -> std::io::Result<()> {
    let dir = PathBuf::from(std::env::args().nth(1).unwrap_or("seeds/era_image".into()));
    std::fs::create_dir_all(&dir)?;
    let mut written = 0;
    for (which, img) in era_images().iter().enumerate() {
        for (loc, kind) in blocks_in_use(img) {
            let end = header_end(kind);
            let at = loc as usize * BLOCK_SIZE;
            let mut input = vec![which as u8];
            input.extend_from_slice(&(loc as u16).to_le_bytes());
            input.extend_from_slice(&4u16.to_le_bytes());
            input.push((end - 4) as u8);
            input.extend_from_slice(&img[at + 4..at + end]);
            input.push(1);
            std::fs::write(dir.join(format!("image{which}-block{loc}")), input)?;
            written += 1;
        }
    }
    println!("{written} seeds in {}", dir.display());
    Ok(())
}
