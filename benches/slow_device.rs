//! era_check, era_invalidate and era_dump on a device with the latency of a disk (100 µs per
//! read request, as an SSD with O_DIRECT): what batched parallel reads of array blocks buy.
//!
//!     cargo bench --bench slow_device
//!
//! Reading one array block at a time, each of these took about 0.8 s on the development
//! machine; with reads batched and 8 in flight, about 0.12 s; with consecutive blocks read
//! in runs of up to 32 besides, about 0.05 s. The target: under 0.3 s.

use std::time::{Duration, Instant};

use era_log_tools::era::build::EraBuilder;
use era_log_tools::era::check::{check, CheckOptions};
use era_log_tools::era::dump::{dump, DumpOptions};
use era_log_tools::era::invalidate::written_since;
use era_log_tools::era::sink::{EraSink, Summary};
use era_log_tools::era::view::View;
use era_log_tools::pdata::bitset::nr_words;
use era_log_tools::pdata::io::{Block, BlockIo, MemIo};

const NR_BLOCKS: u32 = 4_000_000;
const LATENCY: Duration = Duration::from_micros(100);

/// Every read waits as a device would.
struct Slow(MemIo);

impl BlockIo for Slow {
    fn nr_blocks(&self) -> u64 {
        self.0.nr_blocks()
    }
    fn read(&self, loc: u64, buf: &mut Block) -> std::io::Result<()> {
        std::thread::sleep(LATENCY);
        self.0.read(loc, buf)
    }
    /// A run of up to 128 KiB costs a device about what one block does.
    fn read_run(&self, first: u64, bufs: &mut [Box<Block>]) -> std::io::Result<()> {
        std::thread::sleep(LATENCY);
        for (loc, b) in (first..).zip(bufs.iter_mut()) {
            self.0.read(loc, b)?;
        }
        Ok(())
    }
    /// As a block device read with O_DIRECT.
    fn concurrent_reads(&self) -> bool {
        true
    }
    fn write(&self, loc: u64, buf: &Block) -> std::io::Result<()> {
        self.0.write(loc, buf)
    }
    fn flush(&self) -> std::io::Result<()> {
        Ok(())
    }
}

fn build() -> MemIo {
    let io = MemIo::new(16_384);
    let mut b = EraBuilder::new(&io, NR_BLOCKS, &[NR_BLOCKS, NR_BLOCKS]).expect("fits");
    b.superblock_begin(&Summary {
        block_size: 8,
        nr_blocks: NR_BLOCKS,
        current_era: 9,
    })
    .unwrap();
    let words: Vec<u64> = (0..nr_words(NR_BLOCKS as u64))
        .map(|i| i.wrapping_mul(0x9E37_79B9_7F4A_7C15) & 0x0101_0101_0101_0101)
        .collect();
    for era in [8, 9] {
        b.writeset_begin(era, NR_BLOCKS).unwrap();
        b.writeset_words(&words).unwrap();
        b.writeset_end().unwrap();
    }
    b.era_array_begin().unwrap();
    let eras: Vec<u32> = (0..NR_BLOCKS).map(|i| i % 8).collect();
    b.eras(&eras).unwrap();
    b.era_array_end().unwrap();
    b.superblock_end().unwrap();
    b.finish().unwrap();
    io
}

fn time(name: &str, f: impl FnOnce()) {
    let t = Instant::now();
    f();
    println!("{name:<34} {:>8.3} s", t.elapsed().as_secs_f64());
}

fn main() {
    let io = Slow(build());
    println!(
        "{} origin blocks, {} metadata blocks, {:?} per read",
        NR_BLOCKS,
        io.nr_blocks(),
        LATENCY
    );
    time("era_check", || {
        assert!(check(&io, CheckOptions::default()).worst().is_none());
    });
    time("era_invalidate --written-since 5", || {
        let view = View::open(&io, false).unwrap();
        written_since(&io, &view, 5).unwrap();
    });
    time("era_dump --logical", || {
        let opts = DumpOptions {
            logical: true,
            ..DumpOptions::default()
        };
        dump(&io, &opts, &mut std::io::sink()).unwrap();
    });
}
