//! What the fuzz targets and their seed generator share.

use std::io::Read;
use std::sync::OnceLock;

/// The kernel-written images the `era_image` target patches, decompressed. The first byte
/// of its input picks one, modulo their number.
pub fn era_images() -> &'static [Vec<u8>] {
    static IMAGES: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    IMAGES.get_or_init(|| {
        [
            &include_bytes!("../../tests/fixtures/kernel/era-basic.meta.img.gz")[..],
            &include_bytes!("../../tests/fixtures/kernel/era-snap-held.removed-snap-held.img.gz")
                [..],
            &include_bytes!("../../tests/fixtures/kernel/era-crash.meta.img.gz")[..],
        ]
        .iter()
        .map(|gz| {
            let mut out = Vec::new();
            flate2::read::GzDecoder::new(*gz)
                .read_to_end(&mut out)
                .expect("fixture decompresses");
            out
        })
        .collect()
    })
}
