//! The tools on real block devices (loop devices): O_DIRECT reads and writes, and O_EXCL
//! refusing a device that someone else holds. Needs root and loop devices; where they are
//! missing (an unprivileged sandbox) each test says so on stderr and checks nothing, except
//! in CI (`CI` set), where that is a failure.

mod common;

use std::fs::{File, OpenOptions};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::log::mirror_args;
use common::*;

/// A loop device over a temporary image, detached on drop.
struct Loop {
    // Declared first, so that the device is detached before its image is removed.
    dev: LoopOver,
    backing: tempfile::NamedTempFile,
}

impl Loop {
    fn new(content: &[u8]) -> Option<Loop> {
        let backing = temp_image(content);
        let dev = Loop::attach(path_str(&backing))?;
        Some(Loop { dev, backing })
    }

    /// A second loop device over `file`, kept as long as the result.
    fn attach(file: &str) -> Option<LoopOver> {
        attach(Path::new(file)).map(|dev| LoopOver { dev })
    }

    fn path(&self) -> &str {
        self.dev.path()
    }

    /// The device node.
    fn device(&self) -> &Path {
        &self.dev.dev
    }

    fn contents(&self, len: usize) -> Vec<u8> {
        let mut v = std::fs::read(self.backing.path()).expect("backing file");
        v.truncate(len);
        v
    }
}

/// Attaches a loop device over `file`; `None` (and a line saying so) where there is none,
/// which CI does not accept.
fn attach(file: &Path) -> Option<PathBuf> {
    let out = match try_outcome(Command::new("losetup").args(["-f", "--show"]).arg(file)) {
        Ok(out) => out,
        Err(e) => {
            assert!(
                std::env::var_os("CI").is_none(),
                "losetup cannot run in CI: {e}"
            );
            eprintln!("SKIPPED: losetup cannot run ({e})");
            return None;
        }
    };
    if !out.success() {
        let why = out.stderr.trim().to_string();
        // CI runs as root with loop devices: there, not having one is a failure, never
        // a test that passes without checking anything.
        assert!(
            std::env::var_os("CI").is_none(),
            "no loop device in CI: {why}"
        );
        eprintln!("SKIPPED: no loop device ({why})");
        return None;
    }
    Some(PathBuf::from(out.stdout.trim()))
}

/// A loop device over a file someone else owns, detached on drop.
struct LoopOver {
    dev: PathBuf,
}

impl LoopOver {
    fn path(&self) -> &str {
        self.dev.to_str().expect("utf-8 device path")
    }
}

impl Drop for LoopOver {
    fn drop(&mut self) {
        let _ = Command::new("losetup").arg("-d").arg(&self.dev).status();
    }
}

/// Holds `dev` open with O_EXCL, as a live target (or a mounted file system) does.
fn hold(dev: &Path) -> File {
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_EXCL)
        .open(dev)
        .expect("exclusive open")
}

fn assert_refused_as_busy(out: &Outcome, what: &str) {
    assert_eq!(out.code, 1, "{what}: {}", out.stderr);
    assert!(out.stderr.contains("in use"), "{what}: {}", out.stderr);
}

#[test]
fn era_readers_use_the_device_and_refuse_it_when_held() {
    let img = fixture("era-snap-held.removed-snap-held.img.gz");
    let Some(lo) = Loop::new(&img) else { return };
    let out = run("era_check", &[lo.path()]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let file = temp_image(&img);
    let from_file = run("era_invalidate", &["--written-since", "1", path_str(&file)]);
    let from_dev = run("era_invalidate", &["--written-since", "1", lo.path()]);
    assert_eq!(from_dev.code, 0, "{}", from_dev.stderr);
    assert_eq!(from_dev.stdout, from_file.stdout);

    let _held = hold(lo.device());
    assert_refused_as_busy(&run("era_check", &[lo.path()]), "era_check");
    assert_refused_as_busy(
        &run("era_invalidate", &["--written-since", "1", lo.path()]),
        "era_invalidate",
    );
    assert_refused_as_busy(&run("era_dump", &[lo.path()]), "era_dump");
    // The held snapshot is read without O_EXCL.
    let snap = run("era_check", &["--metadata-snap", lo.path()]);
    assert_eq!(snap.code, 0, "{}", snap.stderr);
    let snap = run(
        "era_invalidate",
        &["--metadata-snapshot", "--written-since", "2", lo.path()],
    );
    assert_eq!(snap.code, 0, "{}", snap.stderr);
    assert_eq!(
        snap.stdout,
        "<blocks>\n  <range begin=\"64\" end=\"96\"/>\n</blocks>\n"
    );
    let dump = run("era_dump", &["--metadata-snap", lo.path()]);
    assert_eq!(dump.code, 0, "{}", dump.stderr);
}

#[test]
fn era_writers_write_the_device_and_refuse_it_when_held() {
    let img = fixture("era-basic.meta.img.gz");
    let xml = run("era_dump", &[path_str(&temp_image(&img))]);
    assert_eq!(xml.code, 0);
    let xml_file = temp_image(xml.stdout.as_bytes());
    let Some(lo) = Loop::new(&vec![0u8; img.len()]) else {
        return;
    };
    let out = run("era_restore", &["-i", path_str(&xml_file), "-o", lo.path()]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(run("era_check", &[lo.path()]).code, 0);
    let again = run("era_dump", &[lo.path()]);
    assert_eq!(again.stdout, xml.stdout);

    let src = temp_image(&img);
    {
        let _held = hold(lo.device());
        let before = lo.contents(img.len());
        assert_refused_as_busy(
            &run("era_restore", &["-i", path_str(&xml_file), "-o", lo.path()]),
            "era_restore",
        );
        assert_refused_as_busy(
            &run("era_repair", &["-i", path_str(&src), "-o", lo.path()]),
            "era_repair",
        );
        assert_eq!(
            lo.contents(img.len()),
            before,
            "a refused writer wrote nothing"
        );
    }
    let out = run("era_repair", &["-i", path_str(&src), "-o", lo.path()]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(run("era_check", &[lo.path()]).code, 0);
}

#[test]
fn every_writer_refuses_output_equal_to_input() {
    let img = fixture("era-basic.meta.img.gz");
    let f = temp_image(&img);
    let out = run("era_repair", &["-i", path_str(&f), "-o", path_str(&f)]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert_eq!(std::fs::read(f.path()).unwrap(), img);
    let Some(lo) = Loop::new(&img) else { return };
    let out = run("era_repair", &["-i", lo.path(), "-o", lo.path()]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert_eq!(lo.contents(img.len()), img);
}

#[test]
fn log_tools_use_the_device_and_refuse_it_when_held() {
    let log = fixture("log-crash.log.img.gz");
    let Some(lo) = Loop::new(&log) else { return };
    let file = temp_image(&log);
    let from_file = run("log_dump", &[path_str(&file)]);
    let from_dev = run("log_dump", &[lo.path()]);
    assert_eq!(from_dev.code, 0, "{}", from_dev.stderr);
    assert_eq!(from_dev.stdout, from_file.stdout);
    {
        let _held = hold(lo.device());
        let out = run("log_repair", &["--force-resync", lo.path()]);
        assert_eq!(out.code, 1, "{}", out.stderr);
        assert!(
            out.stderr.contains("in use") || out.stderr.contains("busy"),
            "{}",
            out.stderr
        );
        assert_eq!(lo.contents(log.len()), log);
    }
    let out = run("log_repair", &["--force-resync", lo.path()]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let dump = run("log_dump", &["--format", "json", lo.path()]);
    let v: serde_json::Value = serde_json::from_str(&dump.stdout).unwrap();
    assert_eq!(v["clean"], 0, "{}", dump.stdout);
}

/// A report's `-o` naming a disk is a mistake (`era_dump META -o /dev/sdb`): refused, in
/// one line, and the device keeps every byte.
#[test]
fn no_report_is_written_over_a_block_device() {
    let content: Vec<u8> = (0..4u32 << 20).map(|i| (i % 251) as u8).collect();
    let Some(dev) = Loop::new(&content) else {
        return;
    };
    let meta = temp_image(&fixture("era-basic.meta.img.gz"));
    let mut log = vec![0u8; 4096];
    log[0..4].copy_from_slice(&0x4D69_5272u32.to_le_bytes());
    log[4..8].copy_from_slice(&2u32.to_le_bytes());
    log[8..16].copy_from_slice(&64u64.to_le_bytes());
    let log = temp_image(&log);
    for (tool, args) in [
        ("era_dump", vec![path_str(&meta)]),
        (
            "era_invalidate",
            vec!["--written-since", "0", path_str(&meta)],
        ),
        ("log_dump", vec![path_str(&log)]),
    ] {
        let mut args = args.clone();
        args.extend(["-o", dev.path()]);
        let out = run(tool, &args);
        assert_eq!(out.code, 1, "{tool}: {}", out.stderr);
        assert!(
            out.stderr
                .starts_with(&format!("{tool}: {}: error: is a block device", dev.path())),
            "{tool}: {}",
            out.stderr
        );
        assert!(
            dev.contents(content.len()) == content,
            "{tool} wrote the device"
        );

        // The same device as stdout (`TOOL … > /dev/sdb`).
        args.truncate(args.len() - 2);
        let o = outcome(
            command(tool)
                .args(&args)
                .stdout(OpenOptions::new().write(true).open(dev.device()).unwrap()),
        );
        let stderr = o.stderr;
        assert_eq!(o.code, 1, "{tool}: {stderr}");
        assert!(
            stderr.starts_with(&format!("{tool}: stdout: error: is a block device")),
            "{tool}: {stderr}"
        );
        assert!(
            dev.contents(content.len()) == content,
            "{tool} wrote the device"
        );
    }
}

/// A loop device over a file is that file: a tool given one as its input and the other as
/// its output (or two loop devices over one file, or one file as two legs) refuses, and the
/// file keeps every byte. (The loop device reads the old inode when its file is replaced:
/// the metadata would be lost once the loop device is detached.)
#[test]
fn a_loop_device_and_its_file_are_one_input() {
    let img = fixture("era-basic.meta.img.gz");
    let Some(lo) = Loop::new(&img) else { return };
    let file = lo.backing.path().to_str().unwrap().to_string();
    let Some(twin) = Loop::attach(&file) else {
        return;
    };
    for (tool, args) in [
        ("era_dump", vec![lo.path(), "-o", &file]),
        (
            "era_invalidate",
            vec!["--written-since", "0", lo.path(), "-o", &file],
        ),
        ("era_repair", vec!["-i", lo.path(), "-o", &file]),
        ("era_repair", vec!["-i", &file, "-o", lo.path()]),
        ("era_repair", vec!["-i", lo.path(), "-o", twin.path()]),
    ] {
        run(tool, &args).assert_error_of(&format!("{tool} {args:?}:"), "is the input");
        assert!(
            std::fs::read(&file).unwrap() == img,
            "{tool} {args:?} changed the file"
        );
    }
    // Two legs that are one file, through a loop device.
    let dir = tempfile::tempdir().unwrap();
    let leg = dir.path().join("leg0.img");
    std::fs::write(&leg, vec![7u8; 64 << 20]).unwrap();
    let Some(leg_loop) = Loop::attach(leg.to_str().unwrap()) else {
        return;
    };
    let mut log = vec![0u8; 4096];
    log[0..4].copy_from_slice(&0x4D69_5272u32.to_le_bytes());
    log[4..8].copy_from_slice(&2u32.to_le_bytes());
    log[8..16].copy_from_slice(&512u64.to_le_bytes());
    let log = temp_image(&log);
    let out = run(
        "log_repair",
        &mirror_args(
            &["--resync"],
            &[leg.to_str().unwrap(), leg_loop.path()],
            path_str(&log),
        ),
    );
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stderr.contains("same device as leg 0"),
        "{}",
        out.stderr
    );
}
