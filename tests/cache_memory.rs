//! era_invalidate --cache-metadata reads the cache's mappings one array block at a time: its
//! memory grows with the cache by the one bit per cache block of its answer, never by what
//! the mappings take (16 bytes each, held).

mod common;

use common::*;

#[test]
fn memory_grows_by_at_most_a_bit_per_cache_block() {
    // An origin of 10^7 blocks of 64 KiB, caches of 2^20 and 2^23 blocks of that size, 90%
    // mapped over the origin.
    let era = synthetic::era_metadata(10_000_000, 2);
    let (small_n, large_n) = (1u32 << 20, 1u32 << 23);
    let small = synthetic::cache_metadata(small_n, u64::from(small_n) * 9 / 10, 10_000_000);
    let large = synthetic::cache_metadata(large_n, u64::from(large_n) * 9 / 10, 10_000_000);
    for format in ["text", "json", "messages"] {
        let peak = |cache: &tempfile::NamedTempFile| {
            let form = match format {
                "messages" => vec!["--messages"],
                f => vec!["--format", f],
            };
            let args = [
                "--written-since",
                "1",
                "--cache-metadata",
                path_str(cache),
                "-o",
                "/dev/null",
            ];
            peak_kib(
                "era_invalidate",
                &[&args[..], &form, &[path_str(&era)]].concat(),
            )
        };
        let (s, l) = (peak(&small), peak(&large));
        // The answer's bits (896 KiB more), and 2 MiB for the rest: the locations of the
        // array blocks (8 bytes each per 509 cache blocks), the allocator. Held in memory,
        // the mappings took 400 MiB more.
        let bits_kib = u64::from(large_n - small_n) / 8 / 1024;
        assert!(
            l < s + bits_kib + 2048,
            "{format}: {s} KiB with 2^20 cache blocks, {l} KiB with 2^23"
        );
    }
}
