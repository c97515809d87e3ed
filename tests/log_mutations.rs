//! The dirty-log tools on randomly damaged logs: no panic, and whatever a repair writes is a
//! log that log_dump reads without a warning.

// Tests cast small, known values where they build or look into images.
#![allow(clippy::cast_possible_truncation)]

mod common;

use common::log::repair_options;
use common::*;
use era_log_tools::log::dump::{inspect, DumpOptions};
use era_log_tools::log::run::{repair, Mode, NoProgress, Outcome, RepairOptions};
use era_log_tools::pdata::io::MemIo;
use era_log_tools::pdata::report::Severity;

fn damage(log: &[u8], rng: &mut Rng) -> Vec<u8> {
    let mut m = log.to_vec();
    for _ in 0..1 + rng.below(3) {
        // The header and the start of the bitmap are where the meaning is.
        let at = if rng.below(2) == 0 {
            rng.below(24)
        } else {
            rng.below(m.len() as u64)
        } as usize;
        match rng.below(3) {
            0 => m[at] ^= 1 << rng.below(8),
            1 => m[at] = rng.next() as u8,
            _ => m[at] = [0, 0xff, 2, 3][rng.below(4) as usize],
        }
    }
    if rng.below(8) == 0 {
        m.truncate(rng.below(m.len() as u64) as usize);
    }
    m
}

fn opts(mode: Mode<'_>, force: bool) -> RepairOptions<'_> {
    RepairOptions {
        force,
        ..repair_options(mode)
    }
}

#[test]
fn damaged_logs_are_refused_or_repaired_into_clean_logs() {
    let log = fixture("log-crash.log.img.gz");
    let dump = DumpOptions {
        logical_block_size: 512,
        ..DumpOptions::default()
    };
    let mut rng = Rng(21);
    let mut repaired = 0;
    for i in 0..600 {
        let m = damage(&log, &mut rng);
        let _ = inspect(&MemIo::from_bytes(m.clone()), &dump);
        for (name, mode, force) in [
            ("--force-resync --force", Mode::ForceResync, true),
            ("--rewrite-header", Mode::RewriteHeader, false),
            ("--clear-stray-bits", Mode::ClearStrayBits, false),
        ] {
            let io = MemIo::from_bytes(m.clone());
            let mut report = Vec::new();
            let Ok(outcome) = repair(&io, &opts(mode, force), &mut NoProgress, &mut report) else {
                assert_eq!(io.into_bytes(), m, "mutation {i}: a refused repair wrote");
                continue;
            };
            if matches!(outcome, Outcome::Written { .. }) {
                repaired += 1;
                let after = inspect(&io, &dump)
                    .unwrap_or_else(|e| panic!("mutation {i}: the repaired log reads as: {e}"));
                let warnings: Vec<_> = after
                    .findings
                    .iter()
                    .filter(|f| f.severity == Severity::Warning)
                    .map(|f| f.to_string())
                    .collect();
                assert!(warnings.is_empty(), "mutation {i}, {name}: {warnings:?}");
            }
        }
    }
    assert!(repaired > 200, "only {repaired} repairs written");
}

/// Found by the test above: a header claiming 0 regions was rewritten as it was, giving a
/// log for no region. A repair now needs the count given.
#[test]
fn a_header_with_no_region_needs_the_count_given() {
    let mut log = fixture("log-crash.log.img.gz");
    log[8..16].fill(0);
    let f = temp_image(&log);
    let p = path_str(&f);
    let o = run("log_repair", &["--force-resync", p]);
    assert_eq!(o.code, 1, "{}", o.stderr);
    assert!(o.stderr.contains("nr_regions is 0"), "{}", o.stderr);
    assert_eq!(std::fs::read(f.path()).unwrap(), log, "nothing written");
    let o = run("log_repair", &["--force-resync", "--nr-regions", "512", p]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    let o = run("log_dump", &["--format", "json", p]);
    let v: serde_json::Value = serde_json::from_str(&o.stdout).unwrap();
    assert_eq!(v["nr_regions"], 512, "{}", o.stdout);
    assert_eq!(v["dirty"], 512, "{}", o.stdout);
}
