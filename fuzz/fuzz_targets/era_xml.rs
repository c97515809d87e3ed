//! era_restore on arbitrary XML: it must reject or restore, and what it restores must pass
//! era_check.
#![no_main]

use era_log_tools::era::check::{check, CheckOptions};
use era_log_tools::era::restore::restore;
use era_log_tools::pdata::io::MemIo;
use era_log_tools::pdata::report::Severity;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let out = MemIo::new(64);
    let input = Box::new(std::io::Cursor::new(data.to_vec()));
    if restore(input, &out, &|_| {}).is_ok() {
        let worst = check(&out, CheckOptions::default()).worst();
        assert!(
            worst < Some(Severity::Warning),
            "restored metadata fails era_check"
        );
    }
});
