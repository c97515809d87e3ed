//! No input makes era_check panic or hang: bytes flipped at many positions of the kernel
//! images, half of them with the damaged block's checksum re-sealed so that the damage
//! reaches the structure checks behind it.

// Tests cast small, known values where they build or look into images.
#![allow(clippy::cast_possible_truncation)]

mod common;

use std::sync::mpsc;
use std::time::Duration;

use common::*;
use era_log_tools::era::check::{check, CheckOptions};
use era_log_tools::era::dump::{dump, DumpOptions};
use era_log_tools::era::format::superblock::Superblock;
use era_log_tools::era::invalidate::written_since;
use era_log_tools::era::repair::repair;
use era_log_tools::era::restore::restore;
use era_log_tools::era::view::View;
use era_log_tools::pdata::checksum::{checksum, BlockKind};
use era_log_tools::pdata::io::{BlockIo, MemIo, BLOCK_SIZE};
use era_log_tools::pdata::report::Severity;
use era_log_tools::pdata::space_map::bitmap::get_code;
use era_log_tools::pdata::space_map::index::IndexBlock;

const IMAGES: [&str; 5] = [
    "era-basic.meta.img.gz",
    "era-crash.meta.img.gz",
    "era-snap-held.removed-snap-held.img.gz",
    "era-live-carried.live-snap-held.img.gz",
    "era-large.live-end.img.gz",
];

/// The blocks in use (a count in the space map; these images have one bitmap) and their
/// kinds, known from their checksums.
fn metadata_blocks(img: &[u8]) -> Vec<(u64, BlockKind)> {
    let sb = Superblock::unpack(block(img, 0));
    let bitmap = IndexBlock::unpack(block(img, sb.sm_root.bitmap_root)).entries[0].blocknr;
    (0..sb.sm_root.nr_blocks.min((img.len() / BLOCK_SIZE) as u64))
        .filter(|&loc| get_code(block(img, bitmap), loc) != 0)
        .filter_map(|loc| {
            let b = block(img, loc);
            let stored = le32(b, 0);
            era_log_tools::era::format::BLOCK_KINDS
                .iter()
                .find(|&&k| checksum(b, k) == stored)
                .map(|&k| (loc, k))
        })
        .collect()
}

/// A copy of `img` with one block damaged: a byte flipped, or a 32- or 64-bit field
/// overwritten with an extreme value, and whether the block was re-sealed.
fn mutate(img: &[u8], blocks: &[(u64, BlockKind)], rng: &mut Rng) -> (Vec<u8>, bool) {
    let mut m = img.to_vec();
    let (loc, kind) = blocks[rng.below(blocks.len() as u64) as usize];
    let b = block_mut(&mut m, loc);
    // Most fields live in the first 256 bytes; aim there half of the time.
    let off = if rng.below(2) == 0 {
        4 + rng.below(252) as usize
    } else {
        4 + rng.below(BLOCK_SIZE as u64 - 12) as usize
    };
    match rng.below(4) {
        0 => b[off] ^= 1 << rng.below(8),
        1 => b[off] = rng.next() as u8,
        2 => put32(
            b,
            off & !3,
            [0, 1, u32::MAX, 0x8000_0000][rng.below(4) as usize],
        ),
        _ => put64(
            b,
            off & !7,
            [0, u64::MAX, 1 << 40, rng.next()][rng.below(4) as usize],
        ),
    }
    let resealed = rng.below(2) == 0;
    if resealed {
        reseal(&mut m, loc, kind);
    }
    (m, resealed)
}

fn check_in_time(img: Vec<u8>, opts: CheckOptions) -> Option<bool> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let io = MemIo::from_bytes(img);
        let p = check(&io, opts);
        let _ = tx.send(p.worst().is_some());
    });
    rx.recv_timeout(Duration::from_secs(20)).ok()
}

#[test]
fn mutated_images_never_panic_or_hang_in_the_library() {
    let mut rng = Rng(0x5eed);
    for name in IMAGES {
        let img = fixture(name);
        let blocks = metadata_blocks(&img);
        assert!(blocks.len() > 5, "{name}");
        let mut must_detect = 0;
        for i in 0..300 {
            let (m, resealed) = mutate(&img, &blocks, &mut rng);
            let changed = m != img;
            let opts = CheckOptions {
                super_block_only: false,
                metadata_snap: i % 5 == 0,
            };
            let Some(problem) = check_in_time(m, opts) else {
                panic!("{name}: mutation {i} panicked or hung");
            };
            // A block in use whose checksum no longer matches is always a finding; a
            // re-sealed change may be as valid as the original.
            if changed && !resealed && !opts.metadata_snap {
                must_detect += 1;
                assert!(problem, "{name}: mutation {i} went unnoticed");
            }
        }
        assert!(
            must_detect > 50,
            "{name}: only {must_detect} checked mutations"
        );
    }
}

#[test]
fn mutated_images_exit_0_or_1_without_panicking() {
    let mut rng = Rng(42);
    for name in IMAGES {
        let img = fixture(name);
        let blocks = metadata_blocks(&img);
        for _ in 0..25 {
            let (m, _) = mutate(&img, &blocks, &mut rng);
            let f = temp_image(&m);
            let out = run("era_check", &[f.path().to_str().expect("utf-8")]);
            assert!(out.code == 0 || out.code == 1, "{name}: exit {}", out.code);
            assert!(!out.stderr.contains("panicked"), "{name}: {}", out.stderr);
        }
    }
}

/// What the salvaging tools achieved on one damaged image.
#[derive(Default)]
struct Salvaged {
    /// era_repair wrote metadata (that passes era_check) from an image era_check rejects.
    repaired: bool,
    /// The XML of `era_dump --repair` of such an image restored into metadata that passes.
    restored: bool,
}

/// Every reader on one damaged image, and era_repair: whatever era_repair writes must pass
/// era_check, and (for `small` images) the XML of `era_dump --repair` must restore into
/// metadata that passes it too. Returns what was salvaged, or what went wrong.
fn every_reader(img: Vec<u8>, small: bool) -> Result<Salvaged, String> {
    let io = MemIo::from_bytes(img);
    for snap in [false, true] {
        if let Ok(view) = View::open(&io, snap) {
            for n in [1, view.current_era()] {
                let _ = written_since(&io, &view, n);
            }
        }
        for (logical, repair) in [(false, false), (true, false), (false, true)] {
            let opts = DumpOptions {
                logical,
                repair,
                metadata_snap: snap,
            };
            let _ = dump(&io, &opts, &mut std::io::sink());
        }
    }
    let clean = |out: &MemIo| {
        let p = check(out, CheckOptions::default());
        match p.worst() < Some(Severity::Warning) {
            true => Ok(()),
            false => Err(p
                .kept()
                .iter()
                .map(|p| format!("\n  {p}"))
                .collect::<String>()),
        }
    };
    let damaged = clean(&io).is_err();
    let mut salvaged = Salvaged::default();
    let out = MemIo::new(io.nr_blocks());
    if repair(&io, &out).is_ok() {
        clean(&out).map_err(|e| format!("era_repair wrote metadata era_check rejects:{e}"))?;
        salvaged.repaired = damaged;
    }
    if small {
        let mut xml = Vec::new();
        let opts = DumpOptions {
            repair: true,
            ..DumpOptions::default()
        };
        if dump(&io, &opts, &mut xml).is_ok() {
            let out = MemIo::new(io.nr_blocks());
            restore(Box::new(std::io::Cursor::new(xml)), &out, &|_| {})
                .map_err(|e| format!("era_restore refuses era_dump --repair's XML: {e}"))?;
            clean(&out).map_err(|e| format!("era_dump --repair's XML restores to:{e}"))?;
            salvaged.restored = damaged;
        }
    }
    Ok(salvaged)
}

#[test]
fn mutated_images_through_every_reader_and_repair() {
    let mut rng = Rng(7);
    let (mut repaired, mut restored) = (0, 0);
    for name in IMAGES {
        let img = fixture(name);
        let blocks = metadata_blocks(&img);
        let small = img.len() <= 8 << 20;
        let rounds = if small { 80 } else { 20 };
        for i in 0..rounds {
            let (m, _) = mutate(&img, &blocks, &mut rng);
            let (tx, rx) = mpsc::channel();
            std::thread::spawn(move || {
                let _ = tx.send(every_reader(m, small));
            });
            let s = match rx.recv_timeout(Duration::from_secs(60)) {
                Ok(r) => r.unwrap_or_else(|e| panic!("{name}: mutation {i}: {e}")),
                Err(_) => panic!("{name}: mutation {i} panicked or hung"),
            };
            repaired += usize::from(s.repaired);
            restored += usize::from(s.restored);
        }
    }
    eprintln!("{repaired} repairs, {restored} restores");
    assert!(repaired >= 150, "only {repaired} damaged images repaired");
    assert!(
        restored >= 130,
        "only {restored} damaged images restored from XML"
    );
}
