//! Generates dm-cache metadata (version 1 or 2) of any size, reproducibly from a seed, for
//! tests and benchmarks: a cache whose mapped blocks hold distinct origin blocks spread over
//! the whole origin, some of them dirty (`era_log_tools::cache::example::Spread`), written
//! by `era_log_tools::cache::example::Synthetic` after a clean shutdown.
//!
//!     cargo run --release --example gen_cache -- --cache-blocks 16777216 --mapped 0.9 \
//!         --origin-sectors 2560000000 --seed 1 -o cache.img
//!
//! The image is created or truncated to the size the metadata needs.

use std::fs::OpenOptions;
use std::path::PathBuf;

use clap::Parser;
use era_log_tools::cache::example::{Spread, Synthetic};
use era_log_tools::cache::format::superblock::{
    CLEAN_SHUTDOWN, MAX_DATA_BLOCK_SIZE, MIN_DATA_BLOCK_SIZE,
};
use era_log_tools::pdata::io::{FileIo, OpenMode, BLOCK_SIZE};
use era_log_tools::pdata::space_map::MAX_METADATA_BLOCKS;

#[derive(Parser)]
#[command(about = "Generate synthetic dm-cache metadata")]
struct Args {
    /// Metadata version: 1, or 2 (dirty flags in a bitset, as with `metadata2`)
    #[arg(long = "metadata-version", default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=2))]
    version: u32,
    /// Cache block size in sectors (a multiple of 64, 64 to 2097152)
    #[arg(long, default_value_t = 128)]
    block_size: u32,
    /// Cache blocks
    #[arg(long, default_value_t = 1_000_000)]
    cache_blocks: u32,
    /// Mapped cache blocks: a fraction of them (at most 1) or a count (above 1)
    #[arg(long, default_value_t = 0.9)]
    mapped: f64,
    /// Dirty blocks, as a fraction of the mapped ones
    #[arg(long, default_value_t = 0.1)]
    dirty: f64,
    /// Origin size in sectors (default: twice the cache's)
    #[arg(long)]
    origin_sectors: Option<u64>,
    /// Seed of which blocks are mapped, where, and which are dirty
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Output file
    #[arg(short, long)]
    output: PathBuf,
}

/// `fraction` of `n`, or `fraction` itself when it is a count (above 1).
// Counts and fractions of a u32 count, rounded to a whole block.
#[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
fn blocks(fraction: f64, n: u64) -> u64 {
    if fraction > 1.0 {
        fraction as u64
    } else {
        (fraction * n as f64).round() as u64
    }
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let size = args.block_size;
    anyhow::ensure!(
        size % MIN_DATA_BLOCK_SIZE == 0 && (MIN_DATA_BLOCK_SIZE..=MAX_DATA_BLOCK_SIZE).contains(&size),
        "--block-size must be a multiple of {MIN_DATA_BLOCK_SIZE} from {MIN_DATA_BLOCK_SIZE} to {MAX_DATA_BLOCK_SIZE}"
    );
    anyhow::ensure!(
        args.mapped >= 0.0 && (0.0..=1.0).contains(&args.dirty),
        "--mapped must not be negative, --dirty must be a fraction"
    );
    let n = u64::from(args.cache_blocks);
    let origin_sectors = args.origin_sectors.unwrap_or(2 * n * u64::from(size));
    let origin_blocks = origin_sectors / u64::from(size);
    let mapped = blocks(args.mapped, n);
    let dirty = blocks(args.dirty, mapped).min(mapped);
    let spread = Spread::new(n, mapped, dirty, origin_blocks, args.seed)?;
    let synthetic = Synthetic {
        version: args.version,
        flags: CLEAN_SHUTDOWN,
        data_block_size: size,
        cache_blocks: args.cache_blocks,
        origin_sectors: Some(origin_sectors),
    };
    let nr_blocks = synthetic.metadata_blocks();
    anyhow::ensure!(
        nr_blocks <= MAX_METADATA_BLOCKS,
        "{nr_blocks} metadata blocks needed, more than the kernel's {MAX_METADATA_BLOCKS}"
    );
    let f = OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .open(&args.output)?;
    f.set_len(nr_blocks * BLOCK_SIZE as u64)?;
    drop(f);
    let io = FileIo::open(&args.output, OpenMode::Write)?;
    synthetic.write(&io, &|c| spread.mapping(c))?;
    Ok(())
}
