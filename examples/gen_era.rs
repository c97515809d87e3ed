//! Generates large synthetic era metadata, reproducibly from a seed, as XML (what era_dump
//! would print) or directly as a binary image, for tests and benchmarks.
//!
//!     cargo run --release --example gen_era -- --nr-blocks 10000000 --writesets 4 --seed 1 -o big.xml
//!     cargo run --release --example gen_era -- --nr-blocks 10000000 --writesets 4 --seed 1 --binary -o big.img
//!
//! The writesets hold the eras just below and at the current era, about one block in 16
//! set; the era array holds older eras. The same seed gives the same metadata in both
//! forms, so `era_dump big.img` equals `big.xml`.

use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter};
use std::path::PathBuf;

use clap::Parser;
use era_log_tools::era::build::{fixed_blocks, writeset_blocks, EraBuilder};
use era_log_tools::era::sink::{EraSink, Summary};
use era_log_tools::era::xml::write::XmlWriter;
use era_log_tools::pdata::bitset::nr_words;
use era_log_tools::pdata::io::{FileIo, OpenMode, BLOCK_SIZE};
use era_log_tools::pdata::seeded::SplitMix;
use era_log_tools::pdata::space_map::MAX_METADATA_BLOCKS;

#[derive(Parser)]
#[command(about = "Generate synthetic dm-era metadata")]
struct Args {
    /// Origin blocks (below 2^31)
    #[arg(long, default_value_t = 1_000_000)]
    nr_blocks: u32,
    /// Origin block size in sectors (a multiple of 8)
    #[arg(long, default_value_t = 128)]
    block_size: u32,
    /// Undigested writesets
    #[arg(long, default_value_t = 4)]
    writesets: u32,
    /// Seed of the pseudo-random content
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Write a binary metadata image (created or truncated to fit) instead of XML
    #[arg(long)]
    binary: bool,
    /// Output file
    #[arg(short, long)]
    output: PathBuf,
}

fn generate(args: &Args, sink: &mut dyn EraSink) -> io::Result<()> {
    let mut rng = SplitMix(args.seed);
    let n = args.nr_blocks as u64;
    let current_era = 100 + args.writesets;
    let first_ws_era = current_era + 1 - args.writesets;
    sink.superblock_begin(&Summary {
        block_size: args.block_size,
        nr_blocks: args.nr_blocks,
        current_era,
    })?;
    let total = nr_words(n);
    let mut words = Vec::with_capacity(512);
    for era in first_ws_era..=current_era {
        sink.writeset_begin(era, args.nr_blocks)?;
        let mut i = 0;
        while i < total {
            words.clear();
            for _ in 0..(total - i).min(512) {
                words.push(rng.next() & rng.next() & rng.next() & rng.next());
            }
            i += words.len() as u64;
            if i == total && n % 64 != 0 {
                if let Some(last) = words.last_mut() {
                    *last &= (1u64 << (n % 64)) - 1;
                }
            }
            sink.writeset_words(&words)?;
        }
        sink.writeset_end()?;
    }
    sink.era_array_begin()?;
    let mut eras = Vec::with_capacity(1024);
    let mut b = 0;
    while b < n {
        eras.clear();
        for _ in 0..(n - b).min(1024) {
            // Below first_ws_era, a u32.
            #[allow(clippy::cast_possible_truncation)]
            let era = (rng.next() % first_ws_era as u64) as u32;
            eras.push(era);
        }
        b += eras.len() as u64;
        sink.eras(&eras)?;
    }
    sink.era_array_end()?;
    sink.superblock_end()
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    anyhow::ensure!(
        args.block_size >= 8 && args.block_size % 8 == 0,
        "--block-size must be a multiple of 8 sectors"
    );
    anyhow::ensure!(
        (args.nr_blocks as u64) < 1 << 31,
        "--nr-blocks must be below 2^31"
    );
    if !args.binary {
        let out = BufWriter::new(File::create(&args.output)?);
        let mut xml = XmlWriter::new(out);
        generate(&args, &mut xml)?;
        xml.into_inner()?;
        return Ok(());
    }
    let nr_bits = vec![args.nr_blocks; args.writesets as usize];
    let ws: u64 = nr_bits.iter().map(|&b| writeset_blocks(b)).sum();
    let guess = (ws + fixed_blocks(args.nr_blocks, nr_bits.len() as u64, 0)) * 9 / 8 + 64;
    let blocks = guess.clamp(10, MAX_METADATA_BLOCKS);
    let f = OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .open(&args.output)?;
    f.set_len(blocks * BLOCK_SIZE as u64)?;
    drop(f);
    let io = FileIo::open(&args.output, OpenMode::Write)?;
    let mut b = EraBuilder::new(&io, args.nr_blocks, &nr_bits)?;
    generate(&args, &mut b)?;
    b.finish()?;
    Ok(())
}
