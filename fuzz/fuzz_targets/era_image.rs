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
use era_log_tools::pdata::io::{BlockIo, MemIo};
use era_log_tools::pdata::report::Severity;
use era_log_tools_fuzz::{era_images, patched};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some(img) = patched(era_images(), data, &BLOCK_KINDS) else {
        return;
    };
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
