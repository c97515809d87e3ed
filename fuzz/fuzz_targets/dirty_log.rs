//! The dirty-log reader on arbitrary devices and log_restore's parser on arbitrary XML; what
//! the reader accepts must render in every format.
#![no_main]

use era_log_tools::log::dump::{inspect, render, DumpOptions, Format};
use era_log_tools::log::restore::parse;
use era_log_tools::pdata::io::MemIo;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    if pick & 1 == 0 {
        let _ = parse(rest);
        return;
    }
    let io = MemIo::from_bytes(rest.to_vec());
    let opts = DumpOptions {
        logical_block_size: 512,
        // The region size goes with a length: 1 to 64 regions of 128 sectors.
        region_size: (pick & 2 != 0).then_some(128),
        length: (pick & 2 != 0).then_some((u64::from(pick >> 2) + 1) * 128),
        ..DumpOptions::default()
    };
    if let Ok(report) = inspect(&io, &opts) {
        for f in [Format::Xml, Format::Json, Format::Text] {
            let mut out = Vec::new();
            render(&report, &io, f, &mut out).expect("render to memory");
        }
    }
});
