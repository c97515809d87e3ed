//! The measure the memory tests rely on: a run's peak memory, as the kernel counts it.

mod common;

use common::memory::peak_memory_kib;
use std::process::Command;

#[test]
fn a_program_that_takes_more_memory_is_measured_larger() {
    let (small, small_kib) = peak_memory_kib(Command::new("sh").args(["-c", "echo hi"]));
    assert!(small.success() && small.stdout == "hi\n", "{small:?}");
    // 64 MiB held and touched by a shell: `head` reads it all into one line.
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
