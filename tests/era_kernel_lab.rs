//! Opt-in: the kernel (under QEMU, through the shared kernel-lab) activates metadata
//! written by era_restore and era_repair. Slow and needs QEMU; run with
//! `cargo test --release --test era_kernel_lab -- --ignored --nocapture`
//! (LAB=path/to/kernel-lab).

mod common;

use std::path::Path;
use std::process::Command;

use era_log_tools::era::format::superblock::Superblock;

#[test]
#[ignore = "boots a kernel under QEMU (minutes); run explicitly"]
fn the_kernel_accepts_restored_and_repaired_metadata() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let status = Command::new("sh")
        .arg(root.join("tests/kernel-lab/run-era-restored.sh"))
        .status()
        .expect("script runs");
    assert!(status.success(), "see target/kernel-lab/out");
    for name in ["restored", "repaired"] {
        let dir = root.join("target/kernel-lab");
        let ours = std::fs::read(dir.join(format!("{name}.img"))).unwrap();
        let sb = Superblock::unpack(&ours[..4096]);
        let text =
            std::fs::read_to_string(dir.join(format!("out/{name}/era-restored.json"))).unwrap();
        let m: serde_json::Value = serde_json::from_str(&text).unwrap();
        let status = common::create_status(&m);
        let st = &status["parsed"];
        println!(
            "{name}: our superblock era {} with {}/{} blocks used; the kernel's status at \
             activation: {}",
            sb.current_era, sb.sm_root.nr_allocated, sb.sm_root.nr_blocks, status["line"]
        );
        // The first resume rolls the era over once.
        assert_eq!(st["current_era"], sb.current_era as u64 + 1, "{name}");
        assert_eq!(st["total_metadata_blocks"], sb.sm_root.nr_blocks, "{name}");
        // Activation adds a fresh current writeset and shadows the space map, but frees
        // nothing of what we wrote.
        let used = st["used_metadata_blocks"].as_u64().unwrap();
        assert!(used > sb.sm_root.nr_allocated, "{name}: {used}");
        assert!(st["held_metadata_root"].is_null());
    }
}
