//! Opt-in: the kernel (under QEMU, through the shared kernel-lab) activates metadata
//! written by era_restore and era_repair. Slow and needs QEMU; run with
//! `cargo test --release --test era_kernel_lab -- --ignored` (LAB=path/to/kernel-lab).

use std::process::Command;

#[test]
#[ignore = "boots a kernel under QEMU (minutes); run explicitly"]
fn the_kernel_accepts_restored_and_repaired_metadata() {
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/kernel-lab/run-era-restored.sh"
    );
    let status = Command::new("sh")
        .arg(script)
        .status()
        .expect("script runs");
    assert!(status.success(), "see target/kernel-lab/out");
}
