//! The measure the memory tests rely on: a run's peak memory, as the kernel counts it.

mod common;

use common::memory::peak_memory_kib;
use std::process::Command;

#[test]
fn a_program_that_takes_more_memory_is_measured_larger() {
    let (small, small_kib) = peak_memory_kib(Command::new("sh").args(["-c", "exit 0"]));
    assert!(small.success(), "{small:?}");
    // 64 MiB held by one process: sed keeps the whole line, which has no newline.
    let (large, large_kib) = peak_memory_kib(Command::new("sh").args([
        "-c",
        "head -c 67108864 /dev/zero | tr '\\0' x | sed -n 1p | wc -c",
    ]));
    assert!(large.success(), "{large:?}");
    assert!(
        large_kib > small_kib + 32 * 1024,
        "{small_kib} KiB then {large_kib} KiB"
    );
}

#[test]
fn the_measure_does_not_count_the_test_process() {
    // The test process holds 256 MiB, touched; a small program must still measure small.
    let held = vec![1u8; 256 << 20];
    let (o, kib) = peak_memory_kib(Command::new("sh").args(["-c", "exit 0"]));
    assert!(o.success(), "{o:?}");
    assert!(kib < 64 * 1024, "{kib} KiB for a shell doing nothing");
    assert_eq!(held.iter().map(|&b| b as usize).sum::<usize>(), 256 << 20);
}

#[test]
fn a_failed_run_says_why() {
    let (o, _) = peak_memory_kib(Command::new("sh").args(["-c", "echo no >&2; exit 3"]));
    assert_eq!(o.code, 1);
    assert!(
        o.stderr.contains("no") && o.stderr.contains("exit status 3"),
        "{o:?}"
    );
}
