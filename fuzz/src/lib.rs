//! What the fuzz targets and their seed generator share.

use std::io::Read;
use std::sync::OnceLock;

use era_log_tools::pdata::checksum::{checksum, reseal, BlockKind};
use era_log_tools::pdata::io::BLOCK_SIZE;

/// The kernel-written images the `era_image` target patches, decompressed. The first byte
/// of its input picks one, modulo their number.
pub fn era_images() -> &'static [Vec<u8>] {
    static IMAGES: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    IMAGES.get_or_init(|| {
        unpacked(&[
            include_bytes!("../../tests/fixtures/kernel/era-basic.meta.img.gz"),
            include_bytes!("../../tests/fixtures/kernel/era-snap-held.removed-snap-held.img.gz"),
            include_bytes!("../../tests/fixtures/kernel/era-crash.meta.img.gz"),
        ])
    })
}

/// The kernel-written dm-cache images the `cache_image` target patches (versions 1 and 2,
/// shut down cleanly and live), decompressed.
pub fn cache_images() -> &'static [Vec<u8>] {
    static IMAGES: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    IMAGES.get_or_init(|| {
        unpacked(&[
            include_bytes!("../../tests/fixtures/kernel/cache-fixtures.meta1.img.gz"),
            include_bytes!("../../tests/fixtures/kernel/cache-fixtures.meta2.img.gz"),
            include_bytes!("../../tests/fixtures/kernel/cache-fixtures.meta2-live.img.gz"),
        ])
    })
}

fn unpacked(gzs: &[&[u8]]) -> Vec<Vec<u8>> {
    gzs.iter()
        .map(|gz| {
            let mut out = Vec::new();
            flate2::read::GzDecoder::new(*gz)
                .read_to_end(&mut out)
                .expect("fixture decompresses");
            out
        })
        .collect()
}

/// The image a fuzz input asks for: its first byte picks one of `images` (modulo their
/// number), the rest patches a copy as [`patch`] says. `None` for an empty input.
pub fn patched(images: &[Vec<u8>], data: &[u8], kinds: &[BlockKind]) -> Option<Vec<u8>> {
    let (&which, rest) = data.split_first()?;
    let mut img = images[which as usize % images.len()].clone();
    patch(&mut img, rest, kinds);
    Some(img)
}

/// Patches `img` as a fuzz input says after its first byte: a sequence of
/// `[block: u16][offset: u16][len: u8][bytes…][reseal: u8]` records, each block re-sealed as
/// the kind among `kinds` its intact checksum named when the record's last byte is odd.
pub fn patch(img: &mut [u8], mut rest: &[u8], kinds: &[BlockKind]) {
    let nr_blocks = img.len() / BLOCK_SIZE;
    while rest.len() >= 5 {
        let blk = u16::from_le_bytes([rest[0], rest[1]]) as usize % nr_blocks;
        let off = u16::from_le_bytes([rest[2], rest[3]]) as usize % BLOCK_SIZE;
        let len = (rest[4] as usize).min(rest.len() - 5);
        let bytes = &rest[5..5 + len];
        rest = &rest[5 + len..];
        let b = &mut img[blk * BLOCK_SIZE..(blk + 1) * BLOCK_SIZE];
        let stored = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
        let kind = kinds.iter().find(|&&k| checksum(b, k) == stored).copied();
        let end = (off + bytes.len()).min(BLOCK_SIZE);
        b[off..end].copy_from_slice(&bytes[..end - off]);
        let reseal_it = rest.first().is_some_and(|r| r & 1 == 1);
        rest = rest.get(1..).unwrap_or(&[]);
        if let (true, Some(k)) = (reseal_it, kind) {
            reseal(b, k);
        }
    }
}
