//! era_check, era_invalidate, era_dump and era_repair on kernel-written images patched by
//! the input: an image number, then a sequence of
//! `[block: u16][offset: u16][len: u8][bytes…][reseal: u8]` records. Whatever era_repair
//! writes must pass era_check. `examples/era_image_seeds.rs` writes its seed corpus.
#![no_main]

use era_log_tools::era::check::{check, CheckOptions};
use era_log_tools::era::dump::{dump, DumpOptions};
use era_log_tools::era::format::BLOCK_KINDS;
use era_log_tools::era::invalidate::written_since;
use era_log_tools::era::repair::repair;
use era_log_tools::era::view::View;
use era_log_tools::pdata::checksum::{checksum, reseal};
use era_log_tools::pdata::io::{BlockIo, MemIo, BLOCK_SIZE};
use era_log_tools::pdata::report::Severity;
use era_log_tools_fuzz::era_images;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&which, mut rest)) = data.split_first() else {
        return;
    };
    let images = era_images();
    let mut img = images[which as usize % images.len()].clone();
    let nr_blocks = img.len() / BLOCK_SIZE;
    while rest.len() >= 5 {
        let blk = u16::from_le_bytes([rest[0], rest[1]]) as usize % nr_blocks;
        let off = u16::from_le_bytes([rest[2], rest[3]]) as usize % BLOCK_SIZE;
        let len = (rest[4] as usize).min(rest.len() - 5);
        let bytes = &rest[5..5 + len];
        rest = &rest[5 + len..];
        let b = &mut img[blk * BLOCK_SIZE..(blk + 1) * BLOCK_SIZE];
        // The block's kind, as its intact checksum tells it, for re-sealing after the patch.
        let stored = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
        let kind = BLOCK_KINDS
            .iter()
            .find(|&&k| checksum(b, k) == stored)
            .copied();
        let end = (off + bytes.len()).min(BLOCK_SIZE);
        b[off..end].copy_from_slice(&bytes[..end - off]);
        let reseal_it = rest.first().is_some_and(|r| r & 1 == 1);
        rest = rest.get(1..).unwrap_or(&[]);
        if let (true, Some(k)) = (reseal_it, kind) {
            reseal(b, k);
        }
    }
    let io = MemIo::from_bytes(img);
    for snap in [false, true] {
        let _ = check(
            &io,
            CheckOptions {
                super_block_only: false,
                metadata_snap: snap,
            },
        );
        if let Ok(view) = View::open(&io, snap) {
            for n in [1, 2, view.current_era()] {
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
    let out = MemIo::new(io.nr_blocks());
    if repair(&io, &out).is_ok() {
        let worst = check(&out, CheckOptions::default()).worst();
        assert!(
            worst < Some(Severity::Warning),
            "era_repair wrote bad metadata"
        );
    }
});
