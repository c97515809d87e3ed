//! The dm-cache reader and the matching of era_invalidate --cache-metadata on kernel-written
//! cache images patched by the input (as `era_image` patches era images): never a panic, and
//! never more mappings than the cache has blocks, nor a cache block listed twice.
#![no_main]

use era_log_tools::cache::format::BLOCK_KINDS;
use era_log_tools::cache::invalidate::Matcher;
use era_log_tools::pdata::io::MemIo;
use era_log_tools::CacheMetadata;
use era_log_tools_fuzz::{cache_images, patched};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some(img) = patched(cache_images(), data, &BLOCK_KINDS) else {
        return;
    };
    let Ok(md) = CacheMetadata::from_io(Box::new(MemIo::from_bytes(img))) else {
        return;
    };
    let cache_blocks = u64::from(md.superblock().cache_blocks);
    if let Ok(mappings) = md.mappings() {
        let mut last = None;
        for m in mappings.map_while(Result::ok) {
            assert!(m.cblock < cache_blocks, "cache block past the cache");
            assert!(last < Some(m.cblock), "cache blocks out of order");
            last = Some(m.cblock);
        }
    }
    let mut matcher = Matcher::new(&md);
    let size = u64::from(md.superblock().data_block_size).max(1);
    for r in [0..size, 5 * size..9 * size + 1, 300 * size..1000 * size] {
        if matcher.written(r).is_err() {
            return;
        }
    }
    if let Ok(inv) = matcher.finish() {
        assert!(inv
            .ranges()
            .all(|r| r.end <= cache_blocks && r.start < r.end));
    }
});
