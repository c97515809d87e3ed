//! Era metadata of any size, built with the library's builder into a temporary file, for
//! the tests that show how a tool's memory does (or does not) grow with the origin.

use era_log_tools::era::build::{fixed_blocks, writeset_blocks, EraBuilder};
use era_log_tools::era::sink::{EraSink, Summary};
use era_log_tools::pdata::bitset::nr_words;
use era_log_tools::pdata::io::{FileIo, OpenMode, BLOCK_SIZE};

/// Metadata of `nr_blocks` origin blocks in era `writesets + 1`, with `writesets` full-length
/// writesets (eras 2 and up, a block in 4096 marked in each) and an era array of era 1 but
/// for every thousandth block (era 0): few runs to list or fold, so that the tools' time
/// goes to reading.
pub fn era_metadata(nr_blocks: u32, writesets: u32) -> tempfile::NamedTempFile {
    let nr_bits = vec![nr_blocks; writesets as usize];
    let ws: u64 = nr_bits.iter().map(|&b| writeset_blocks(b)).sum();
    let blocks = (ws + fixed_blocks(nr_blocks, u64::from(writesets), 0)) * 9 / 8 + 64;
    let file = super::temp_zeroed(blocks * BLOCK_SIZE as u64);
    let io = FileIo::open(file.path(), OpenMode::Write).expect("the image");
    let mut b = EraBuilder::new(&io, nr_blocks, &nr_bits).expect("room for the metadata");
    let current_era = writesets + 1;
    let header = Summary {
        block_size: 128,
        nr_blocks,
        current_era,
    };
    b.superblock_begin(&header).unwrap();
    let total = nr_words(u64::from(nr_blocks));
    for era in 2..=current_era {
        b.writeset_begin(era, nr_blocks).unwrap();
        let mut at = 0;
        while at < total {
            let words: Vec<u64> = (at..total.min(at + 512))
                .map(|w| u64::from(w % 64 == u64::from(era)) << era)
                .collect();
            b.writeset_words(&words).unwrap();
            at += words.len() as u64;
        }
        b.writeset_end().unwrap();
    }
    b.era_array_begin().unwrap();
    let mut at = 0;
    while at < u64::from(nr_blocks) {
        let eras: Vec<u32> = (at..u64::from(nr_blocks).min(at + 1024))
            .map(|block| u32::from(block % 1000 != 0))
            .collect();
        b.eras(&eras).unwrap();
        at += eras.len() as u64;
    }
    b.era_array_end().unwrap();
    b.superblock_end().unwrap();
    b.finish().expect("the metadata written");
    file
}

/// Cache metadata (version 2, blocks of 64 KiB, clean) of `cache_blocks` blocks, `mapped` of
/// them holding origin blocks spread over an origin of `origin_blocks` (a tenth of those
/// dirty), as `examples/gen_cache.rs` writes it.
pub fn cache_metadata(
    cache_blocks: u32,
    mapped: u64,
    origin_blocks: u64,
) -> tempfile::NamedTempFile {
    use era_log_tools::cache::example::{Spread, Synthetic};
    use era_log_tools::cache::format::superblock::CLEAN_SHUTDOWN;
    let spread = Spread::new(
        u64::from(cache_blocks),
        mapped,
        mapped / 10,
        origin_blocks,
        1,
    )
    .expect("a possible mapping");
    let synthetic = Synthetic {
        version: 2,
        flags: CLEAN_SHUTDOWN,
        data_block_size: 128,
        cache_blocks,
        origin_sectors: Some(origin_blocks * 128),
    };
    let file = super::temp_zeroed(synthetic.metadata_blocks() * BLOCK_SIZE as u64);
    let io = FileIo::open(file.path(), OpenMode::Write).expect("the image");
    synthetic
        .write(&io, &|c| spread.mapping(c))
        .expect("the metadata written");
    file
}
