//! The synthetic cache metadata of the benchmarks (`examples/gen_cache.rs`: `Spread` written
//! by `Synthetic`) reads back as the mapping it was asked for, spread over cache and origin.

mod common;

use std::collections::BTreeSet;

use era_log_tools::cache::example::{Spread, SpreadError, Synthetic};
use era_log_tools::cache::format::superblock::CLEAN_SHUTDOWN;
use era_log_tools::pdata::io::MemIo;
use era_log_tools::{CacheMetadata, Mapping};

const CACHE_BLOCKS: u32 = 10_000;
const ORIGIN_BLOCKS: u64 = 50_000;

fn synthetic(version: u32, cache_blocks: u32, origin_blocks: u64) -> Synthetic {
    Synthetic {
        version,
        flags: CLEAN_SHUTDOWN,
        data_block_size: 128,
        cache_blocks,
        origin_sectors: Some(origin_blocks * 128),
    }
}

/// The image of `spread` written by `s` on a device of exactly the blocks `s` says it needs.
fn image(s: &Synthetic, spread: &Spread) -> Vec<u8> {
    let io = MemIo::new(s.metadata_blocks());
    s.write(&io, &|c| spread.mapping(c)).expect("room enough");
    io.into_bytes()
}

fn read_back(img: Vec<u8>) -> Vec<Mapping> {
    let md = CacheMetadata::from_io(Box::new(MemIo::from_bytes(img))).expect("opens");
    md.mappings().unwrap().collect::<Result<_, _>>().unwrap()
}

/// How many of `values` (all below `n`) fall in each eighth of `0..n`.
fn eighths(values: impl Iterator<Item = u64>, n: u64) -> [u64; 8] {
    let mut counts = [0; 8];
    for v in values {
        counts[usize::try_from(v * 8 / n).unwrap()] += 1;
    }
    counts
}

#[test]
fn the_mapping_reads_back_as_asked_in_both_versions() {
    let spread = Spread::new(u64::from(CACHE_BLOCKS), 7_000, 1_000, ORIGIN_BLOCKS, 3).unwrap();
    for version in [1, 2] {
        let got = read_back(image(
            &synthetic(version, CACHE_BLOCKS, ORIGIN_BLOCKS),
            &spread,
        ));
        assert_eq!(got.len(), 7_000, "v{version}: mapped blocks");
        assert_eq!(got.iter().filter(|m| m.dirty).count(), 1_000, "v{version}");
        let listed: BTreeSet<u64> = got.iter().map(|m| m.cblock).collect();
        for c in 0..u64::from(CACHE_BLOCKS) {
            let want = spread.mapping(c);
            let m = got.iter().find(|m| m.cblock == c);
            assert_eq!(
                m.map(|m| (m.oblock, m.dirty)),
                want,
                "v{version}: cache block {c}"
            );
            assert_eq!(listed.contains(&c), want.is_some());
        }
        let oblocks: BTreeSet<u64> = got.iter().map(|m| m.oblock).collect();
        assert_eq!(
            oblocks.len(),
            got.len(),
            "v{version}: an origin block cached twice"
        );
        assert!(oblocks.iter().all(|&o| o < ORIGIN_BLOCKS));
        // Spread: every eighth of the cache and of the origin holds its share of the
        // mapped blocks (875 each), within a fifth; the dirty ones too (125 each).
        let share = |counts: [u64; 8], each: u64| {
            counts.iter().all(|&k| k * 5 > each * 4 && k * 5 < each * 6)
        };
        let cache = eighths(got.iter().map(|m| m.cblock), u64::from(CACHE_BLOCKS));
        let origin = eighths(got.iter().map(|m| m.oblock), ORIGIN_BLOCKS);
        let dirty = eighths(
            got.iter().filter(|m| m.dirty).map(|m| m.cblock),
            u64::from(CACHE_BLOCKS),
        );
        assert!(
            share(cache, 875) && share(origin, 875) && share(dirty, 125),
            "{cache:?} {origin:?} {dirty:?}"
        );
    }
}

#[test]
fn the_seed_decides_the_mapping() {
    let s = synthetic(2, CACHE_BLOCKS, ORIGIN_BLOCKS);
    let spread =
        |seed| Spread::new(u64::from(CACHE_BLOCKS), 5_000, 500, ORIGIN_BLOCKS, seed).unwrap();
    assert_eq!(image(&s, &spread(1)), image(&s, &spread(1)));
    let (a, b) = (
        read_back(image(&s, &spread(1))),
        read_back(image(&s, &spread(2))),
    );
    let differ = a
        .iter()
        .zip(&b)
        .filter(|(x, y)| (x.cblock, x.oblock) != (y.cblock, y.oblock));
    assert!(differ.count() > 4_000);
}

#[test]
fn a_full_cache_over_an_origin_of_its_size_maps_every_origin_block_once() {
    let n = 20_000;
    let spread = Spread::new(n, n, 0, n, 7).unwrap();
    let got = read_back(image(&synthetic(2, 20_000, n), &spread));
    let oblocks: BTreeSet<u64> = got.iter().map(|m| m.oblock).collect();
    assert_eq!((got.len(), oblocks.len()), (20_000, 20_000));
    assert_eq!(oblocks.last(), Some(&(n - 1)));
    // Neighbours in the cache are far apart in the origin: not filled in order.
    let near = got
        .windows(2)
        .filter(|w| w[0].oblock.abs_diff(w[1].oblock) < 64)
        .count();
    assert!(near < 100, "{near} neighbours within 64 origin blocks");
}

#[test]
fn the_blocks_it_says_it_needs_are_enough_at_every_size() {
    for n in [0, 1, 508, 509, 510, 1018, 1019, 32_576, 32_577, 1_000_000] {
        for version in [1, 2] {
            let s = synthetic(version, n, 2 * u64::from(n) + 1);
            let spread = Spread::new(
                u64::from(n),
                u64::from(n),
                u64::from(n) / 2,
                2 * u64::from(n) + 1,
                1,
            )
            .unwrap();
            let io = MemIo::new(s.metadata_blocks());
            s.write(&io, &|c| spread.mapping(c))
                .unwrap_or_else(|e| panic!("v{version}, {n} blocks: {e}"));
        }
    }
}

#[test]
fn an_impossible_mapping_is_refused() {
    assert_eq!(
        Spread::new(10, 11, 0, 100, 1),
        Err(SpreadError::TooManyMapped)
    );
    assert_eq!(
        Spread::new(100, 11, 0, 10, 1),
        Err(SpreadError::TooManyMapped)
    );
    assert_eq!(
        Spread::new(100, 10, 11, 100, 1),
        Err(SpreadError::TooManyDirty)
    );
    let none = Spread::new(100, 0, 0, 0, 1).unwrap();
    assert!((0..100).all(|c| none.mapping(c).is_none()));
}
