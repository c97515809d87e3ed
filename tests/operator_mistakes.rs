//! The operator's mistakes, one row per mistake and tool: each must end in exit status 1 or
//! 2, a message naming the problem, and every file involved exactly as it was (or, for
//! device nodes and symlinks, still the same node or link). The rows that are the normal
//! case (a writer onto zeros) say so and must succeed.

// Tests cast small, known values where they build or look into images.
#![allow(clippy::cast_possible_truncation, clippy::cast_possible_wrap)]

mod common;

use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::log::mirror_args;
use common::{broken_pipe, command, limit_file_size, noise, outcome, run, s, Outcome};
use era_log_tools::era::format::BUILD_IN_PROGRESS;

/// What a path is, as far as a mistake could change it.
#[derive(Debug, PartialEq, Eq)]
enum State {
    Missing,
    /// Size and crc32c of the content.
    File(u64, u32),
    Symlink(PathBuf),
    Device {
        char: bool,
        rdev: u64,
    },
    Other,
}

fn state(p: &Path) -> State {
    let Ok(m) = fs::symlink_metadata(p) else {
        return State::Missing;
    };
    let ft = m.file_type();
    if ft.is_symlink() {
        State::Symlink(fs::read_link(p).unwrap())
    } else if ft.is_file() {
        State::File(m.len(), content_hash(p))
    } else if ft.is_char_device() || ft.is_block_device() {
        State::Device {
            char: ft.is_char_device(),
            rdev: m.rdev(),
        }
    } else {
        State::Other
    }
}

fn content_hash(p: &Path) -> u32 {
    use std::io::Read;
    let mut f = fs::File::open(p).unwrap();
    let mut buf = vec![0u8; 1 << 20];
    let mut crc = 0;
    loop {
        let n = f.read(&mut buf).unwrap();
        if n == 0 {
            return crc;
        }
        crc = crc32c::crc32c_append(crc, &buf[..n]);
    }
}

/// Every entry of `dir` (sorted) with its state: a run that changed nothing leaves the same.
fn snapshot(dir: &Path) -> Vec<(String, State)> {
    let mut v: Vec<(String, State)> = fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                state(&e.path()),
            )
        })
        .collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

/// A refused mistake: `tool args` exits with one of `codes`, names the problem with each of
/// `words`, and leaves every file in `dir` as it was.
fn refused(dir: &Path, tool: &str, args: &[&str], codes: &[i32], words: &[&str]) {
    let before = snapshot(dir);
    let r = run(tool, args);
    assert!(
        codes.contains(&r.code),
        "{tool} {args:?}: exit {} (want {codes:?}): {}",
        r.code,
        r.stderr
    );
    for w in words {
        assert!(
            r.stderr.contains(w),
            "{tool} {args:?}: message does not say {w:?}: {}",
            r.stderr
        );
    }
    assert!(
        !r.stderr.contains("panicked"),
        "{tool} {args:?}: {}",
        r.stderr
    );
    assert!(
        snapshot(dir) == before,
        "{tool} {args:?}: changed the files around it"
    );
}

/// A fixture image, decompressed once for all the tests of this file.
fn fixture(name: &str) -> Vec<u8> {
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock};
    static CACHE: OnceLock<Mutex<HashMap<String, Vec<u8>>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    let mut c = cache.lock().unwrap_or_else(|e| e.into_inner());
    c.entry(name.to_string())
        .or_insert_with(|| common::fixture(name))
        .clone()
}

fn accepted(tool: &str, args: &[&str]) {
    let r = run(tool, args);
    assert_eq!(r.code, 0, "{tool} {args:?}: {}", r.stderr);
}

/// A scratch folder with the images the rows use.
struct Bench {
    dir: tempfile::TempDir,
}

impl Bench {
    fn new() -> Bench {
        let b = Bench {
            dir: tempfile::tempdir().unwrap(),
        };
        b.put("era.img", &fixture("era-basic.meta.img.gz"));
        b.put("log.img", &fixture("log-crash.log.img.gz"));
        b.put("leg0.img", &fixture("log-crash.leg0.img.gz"));
        b.put("leg1.img", &fixture("log-crash.leg1.img.gz"));
        // era-basic with its era array's root destroyed: every reader but --repair fails.
        let mut bad = fixture("era-basic.meta.img.gz");
        let root = u64::from_le_bytes(bad[208..216].try_into().unwrap()) as usize;
        bad[root * 4096 + 100] ^= 0xff;
        b.put("damaged-era.img", &bad);
        // The crash log with a version no kernel wrote.
        let mut bad = fixture("log-crash.log.img.gz");
        bad[4] = 7;
        b.put("damaged-log.img", &bad);
        b.put("zeros.img", &vec![0u8; 4 << 20]);
        accepted(
            "era_dump",
            &["-o", s(&b.path("era.xml")), s(&b.path("era.img"))],
        );
        accepted(
            "log_dump",
            &["-o", s(&b.path("log.xml")), s(&b.path("log.img"))],
        );
        b
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn put(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let p = self.path(name);
        fs::write(&p, bytes).unwrap();
        p
    }

    fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// An ext4 filesystem image, or `None` (with a note) where mkfs.ext4 is missing; CI
    /// installs it, so there its absence is a failure.
    fn ext4(&self) -> Option<PathBuf> {
        let p = self.put("ext4.img", &vec![0u8; 8 << 20]);
        let made = Command::new("mkfs.ext4")
            .args(["-q", "-F", s(&p)])
            .status()
            .is_ok_and(|st| st.success());
        if !made {
            assert!(
                std::env::var_os("CI").is_none(),
                "mkfs.ext4 is needed in CI"
            );
            eprintln!("SKIPPED: ext4 rows (no mkfs.ext4)");
            fs::remove_file(&p).unwrap();
            return None;
        }
        Some(p)
    }

    /// A character device node with the numbers of /dev/null (1,3) or /dev/full (1,7), or
    /// `None` (with a note) when nodes cannot be made (not root).
    fn node(&self, name: &str, minor: u32) -> Option<PathBuf> {
        let p = self.path(name);
        let ok = Command::new("mknod")
            .args([s(&p), "c", "1", &minor.to_string()])
            .status()
            .is_ok_and(|st| st.success());
        if !ok {
            eprintln!("SKIPPED: device-node rows for {name} (mknod needs root)");
            return None;
        }
        Some(p)
    }
}

#[test]
fn a_failed_run_never_costs_the_output_file() {
    let b = Bench::new();
    let yesterday = b.put("yesterday.xml", b"<yesterday's good dump/>\n");
    let link = b.path("link.xml");
    std::os::unix::fs::symlink(&yesterday, &link).unwrap();
    let mut outputs = vec![yesterday.clone(), link.clone()];
    if let Some(null) = b.node("null", 3) {
        let to_node = b.path("link-to-null");
        std::os::unix::fs::symlink(&null, &to_node).unwrap();
        outputs.push(null);
        outputs.push(to_node);
    }
    let damaged_era = b.path("damaged-era.img");
    let damaged_log = b.path("damaged-log.img");
    let mut rows = 0;
    for out in &outputs {
        let o = s(out);
        refused(
            b.dir(),
            "era_dump",
            &["-o", o, s(&damaged_era)],
            &[1],
            &["era array", "bad checksum"],
        );
        refused(
            b.dir(),
            "era_invalidate",
            &["--written-since", "1", "-o", o, s(&damaged_era)],
            &[1],
            &["era array", "bad checksum"],
        );
        refused(
            b.dir(),
            "log_dump",
            &["-o", o, s(&damaged_log)],
            &[1],
            &["unsupported version 7"],
        );
        rows += 3;
    }
    eprintln!("{rows} rows: failed runs with -o onto a file, a symlink and device nodes");
}

#[test]
fn a_successful_run_keeps_links_and_nodes_what_they_are() {
    let b = Bench::new();
    let real = b.put("real.xml", b"old");
    let link = b.path("link.xml");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    accepted("era_dump", &["-o", s(&link), s(&b.path("era.img"))]);
    assert_eq!(state(&link), State::Symlink(real.clone()));
    assert!(fs::read(&real).unwrap().starts_with(b"<superblock"));
    if let Some(null) = b.node("null", 3) {
        let before = state(&null);
        accepted("era_dump", &["-o", s(&null), s(&b.path("era.img"))]);
        accepted("log_dump", &["-o", s(&null), s(&b.path("log.img"))]);
        assert_eq!(state(&null), before);
    }
    if let Some(full) = b.node("full", 7) {
        // A device that fails every write: the error is reported, the node stays.
        refused(
            b.dir(),
            "era_dump",
            &["-o", s(&full), s(&b.path("era.img"))],
            &[1],
            &["No space left on device"],
        );
    }
    // `-o -` is stdout in every tool that writes a report.
    let o = run(
        "era_invalidate",
        &["--written-since", "1", "-o", "-", s(&b.path("era.img"))],
    );
    assert!(o.success());
    assert!(o.stdout.starts_with("<blocks>"));
    assert!(!b.path("-").exists());
}

/// log-crash's mirror: 512 regions of 128 sectors over two 32 MiB legs.
const TRUE_REGION_SIZE: u64 = 128;

#[test]
fn a_wrong_region_size_is_refused_by_every_mode_and_tool() {
    let b = Bench::new();
    let (log, leg0, leg1) = (b.path("log.img"), b.path("leg0.img"), b.path("leg1.img"));
    let mut rows = 0;
    for wrong in [TRUE_REGION_SIZE / 2, TRUE_REGION_SIZE * 2] {
        let rs = wrong.to_string();
        // No value is suggested: only the mirror's table knows the region size.
        let expect = [
            "the log has 512 regions",
            "take both from the mirror's table",
        ];
        for mode in ["--verify", "--resync"] {
            let legs = ["--leg", s(&leg0), "--leg", s(&leg1)];
            let mut without_length = vec![mode, "--region-size", &rs];
            without_length.extend(legs);
            without_length.push(s(&log));
            refused(b.dir(), "log_repair", &without_length, &[2], &["--length"]);
            let mut with_length = vec![mode, "--region-size", &rs, "--length", "65536"];
            with_length.extend(legs);
            with_length.push(s(&log));
            refused(b.dir(), "log_repair", &with_length, &[1], &expect);
            rows += 2;
        }
        let geometry = ["--region-size", &rs, "--length", "65536"];
        let modes: [&[&str]; 4] = [
            &["--rewrite-header"],
            &["--force-resync"],
            &["--clear-stray-bits"],
            &["--mark-clean", "0..1", "--unsafe-legs-identical"],
        ];
        for mode in modes {
            let mut args = mode.to_vec();
            args.extend(geometry);
            args.push(s(&log));
            refused(b.dir(), "log_repair", &args, &[1], &expect);
            // A region size with nothing to check it against is a usage error.
            let mut args = mode.to_vec();
            args.extend(["--region-size", &rs, s(&log)]);
            refused(b.dir(), "log_repair", &args, &[2], &["--length"]);
            rows += 2;
        }
        let mut args = geometry.to_vec();
        args.push(s(&log));
        refused(b.dir(), "log_dump", &args, &[1], &expect);
        rows += 1;
    }
    // The right geometry passes the same checks.
    accepted(
        "log_repair",
        &mirror_args(&["--verify", "--dry-run"], &[s(&leg0), s(&leg1)], s(&log)),
    );
    eprintln!("{rows} rows: wrong region sizes");
}

#[test]
fn writers_refuse_what_is_not_theirs() {
    let b = Bench::new();
    let (era, log, zeros) = (b.path("era.img"), b.path("log.img"), b.path("zeros.img"));
    let (era_xml, log_xml) = (b.path("era.xml"), b.path("log.xml"));
    let ext4 = b.ext4();
    let mut rows = 0;
    let mut foreign: Vec<(PathBuf, &str)> = vec![];
    if let Some(e) = &ext4 {
        foreign.push((e.clone(), "holds an ext4 filesystem"));
    }
    // The era writers onto a disk log, the log writers onto era metadata.
    for (target, what) in foreign
        .iter()
        .chain([(log.clone(), "holds a dm-log disk log")].iter())
    {
        refused(
            b.dir(),
            "era_restore",
            &["-i", s(&era_xml), "-o", s(target)],
            &[1],
            &[what, "--force"],
        );
        refused(
            b.dir(),
            "era_repair",
            &["-i", s(&era), "-o", s(target)],
            &[1],
            &[what, "--force"],
        );
        rows += 2;
    }
    let log_modes: [&[&str]; 4] = [
        &["--force-resync"],
        &["--rewrite-header", "--nr-regions", "512"],
        &["--clear-stray-bits"],
        &[
            "--mark-clean",
            "0..1",
            "--unsafe-legs-identical",
            "--region-size",
            "128",
            "--length",
            "65536",
        ],
    ];
    for (target, what) in foreign
        .iter()
        .chain([(era.clone(), "holds dm-era metadata")].iter())
    {
        refused(
            b.dir(),
            "log_restore",
            &["-i", s(&log_xml), "-o", s(target)],
            &[1],
            &[what, "--force"],
        );
        for mode in log_modes {
            let mut args = mode.to_vec();
            args.push(s(target));
            refused(b.dir(), "log_repair", &args, &[1], &[what, "--force"]);
        }
        let (leg0, leg1) = (b.path("leg0.img"), b.path("leg1.img"));
        for mode in ["--resync", "--verify"] {
            let args = mirror_args(&[mode], &[s(&leg0), s(&leg1)], s(target));
            refused(b.dir(), "log_repair", &args, &[1], &[what]);
        }
        rows += 7;
    }
    // Zeros: a new device. The normal case for era_restore, era_repair and log_restore; a
    // log_repair there is refused (there is no log to repair).
    for mode in log_modes {
        let mut args = mode.to_vec();
        args.push(s(&zeros));
        refused(
            b.dir(),
            "log_repair",
            &args,
            &[1],
            &["no disk log here (all zeros)"],
        );
        rows += 1;
    }
    let fresh = b.put("fresh.img", &vec![0u8; 4 << 20]);
    accepted("era_restore", &["-i", s(&era_xml), "-o", s(&fresh)]);
    accepted("era_check", &[s(&fresh)]);
    let fresh = b.put("fresh2.img", &vec![0u8; 4 << 20]);
    accepted("era_repair", &["-i", s(&era), "-o", s(&fresh)]);
    accepted("era_check", &[s(&fresh)]);
    let fresh = b.put("fresh3.img", &vec![0u8; 4096]);
    accepted("log_restore", &["-i", s(&log_xml), "-o", s(&fresh)]);
    // Writing era metadata over era metadata of the same geometry is the normal case too.
    let again = b.put("again.img", &fixture("era-basic.meta.img.gz"));
    accepted("era_restore", &["-i", s(&era_xml), "-o", s(&again)]);
    accepted("era_repair", &["-i", s(&era), "-o", s(&again)]);
    accepted("era_check", &[s(&again)]);
    // --force overrides the refusal.
    if let Some(e) = &ext4 {
        accepted("era_restore", &["--force", "-i", s(&era_xml), "-o", s(e)]);
        accepted("era_check", &[s(e)]);
    }
    eprintln!("{rows} rows: writers onto foreign targets and zeros");
}

/// era-large's geometry against era-basic's: the metadata of another target is not
/// replaced without --force, and the refusal gives both geometries.
#[test]
fn era_writers_refuse_the_metadata_of_another_target() {
    let b = Bench::new();
    let (era, era_xml) = (b.path("era.img"), b.path("era.xml"));
    let other = b.put("other.img", &fixture("era-large.meta.img.gz"));
    let held = "holds dm-era metadata of another target (block size 8 sectors, 2097152 blocks";
    refused(
        b.dir(),
        "era_restore",
        &["-i", s(&era_xml), "-o", s(&other)],
        &[1],
        &[
            &format!("era_restore: {}: error: {held}", s(&other)),
            "; the XML has 128 sectors, 1024 blocks); refusing to write dm-era metadata over it (check the device name; --force writes anyway)",
        ],
    );
    refused(
        b.dir(),
        "era_repair",
        &["-i", s(&era), "-o", s(&other)],
        &[1],
        &[
            held,
            "; the input has 128 sectors, 1024 blocks); refusing to write dm-era metadata over it (check the device name; --force writes anyway)",
        ],
    );
    accepted(
        "era_restore",
        &["--force", "-i", s(&era_xml), "-o", s(&other)],
    );
    accepted("era_check", &[s(&other)]);
    let other = b.put("other2.img", &fixture("era-large.meta.img.gz"));
    accepted("era_repair", &["--force", "-i", s(&era), "-o", s(&other)]);
    accepted("era_check", &[s(&other)]);
}

/// Block 0 of era-basic with its checksum broken: dm-era's magic, but no geometry to
/// compare. era_repair's output may be just that (a repair onto an old copy), so the
/// refusal says what it is and --force writes.
#[test]
fn era_writers_refuse_damaged_metadata_whose_geometry_cannot_be_read() {
    let b = Bench::new();
    let (era, era_xml) = (b.path("era.img"), b.path("era.xml"));
    let mut bytes = fixture("era-basic.meta.img.gz");
    bytes[300] ^= 1;
    let words = [
        "holds damaged dm-era metadata (bad checksum in superblock), whose geometry cannot be \
         read; refusing to write dm-era metadata over it (check the device name; --force \
         writes anyway)",
    ];
    let damaged = b.put("damaged.img", &bytes);
    refused(
        b.dir(),
        "era_restore",
        &["-i", s(&era_xml), "-o", s(&damaged)],
        &[1],
        &words,
    );
    refused(
        b.dir(),
        "era_repair",
        &["-i", s(&era), "-o", s(&damaged)],
        &[1],
        &words,
    );
    accepted(
        "era_restore",
        &["--force", "-i", s(&era_xml), "-o", s(&damaged)],
    );
    accepted("era_check", &[s(&damaged)]);
    let damaged = b.put("damaged2.img", &bytes);
    accepted("era_repair", &["--force", "-i", s(&era), "-o", s(&damaged)]);
    accepted("era_check", &[s(&damaged)]);
}

/// `len` bytes of `pattern` repeated, with `header` at `offset`.
fn image(len: usize, pattern: &[u8], offset: usize, header: &[u8]) -> Vec<u8> {
    let mut v: Vec<u8> = pattern.iter().copied().cycle().take(len).collect();
    v[offset..offset + header.len()].copy_from_slice(header);
    v
}

/// What the new-user trial wrote over: filesystems that wipefs knows and we did not, random
/// data, a text file. No writer replaces them without --force, and each refusal names
/// what it found.
#[test]
fn writers_refuse_what_they_cannot_call_theirs() {
    let b = Bench::new();
    let (era, era_xml, log_xml) = (b.path("era.img"), b.path("era.xml"), b.path("log.xml"));
    let size = 4 << 20;
    // minix v1 (inode and zone bitmaps of one block each), cramfs and BFS headers.
    let mut minix = image(size, &[0], 1024, &[0x20, 0, 0x40, 0, 1, 0, 1, 0]);
    minix[1040..1042].copy_from_slice(&[0x7F, 0x13]);
    let targets: Vec<(&str, Vec<u8>, &str)> = vec![
        ("minix.img", minix, "holds a minix filesystem"),
        (
            "cramfs.img",
            image(size, &[0], 0, &[0x45, 0x3D, 0xCD, 0x28]),
            "holds a cramfs filesystem",
        ),
        (
            "bfs.img",
            image(size, &[0], 0, &[0xCE, 0xFA, 0xAD, 0x1B]),
            "holds a BFS filesystem",
        ),
        (
            "random.img",
            noise(0x9E37_79B9_7F4A_7C15, size),
            "holds data that is neither zeros nor a signature we know",
        ),
        (
            "notes.txt",
            image(size, b"remember to renew the certificates\n", 0, &[]),
            "holds data that is neither zeros nor a signature we know",
        ),
        (
            "late.img",
            image(
                size,
                &[0],
                70_000,
                b"data past what is probed is not looked at, ",
            ),
            "",
        ),
    ];
    for (name, bytes, what) in &targets {
        let target = b.put(name, bytes);
        let t = s(&target);
        let runs: [(&str, [&str; 4]); 3] = [
            ("era_restore", ["-i", s(&era_xml), "-o", t]),
            ("era_repair", ["-i", s(&era), "-o", t]),
            ("log_restore", ["-i", s(&log_xml), "-o", t]),
        ];
        for (tool, args) in runs {
            if what.is_empty() {
                // Zeros as far as probed: a new device.
                accepted(tool, &args);
                b.put(name, bytes);
                continue;
            }
            let writing = if tool == "log_restore" {
                "refusing to write a disk log over it (check the device name; --force writes \
                 anyway)"
            } else {
                "refusing to write dm-era metadata over it (check the device name; --force \
                 writes anyway)"
            };
            refused(
                b.dir(),
                tool,
                &args,
                &[1],
                &[&format!("{tool}: {t}: error: {what}; {writing}")],
            );
            let mut forced = vec!["--force"];
            forced.extend(args);
            accepted(tool, &forced);
            b.put(name, bytes);
        }
    }
}

/// log_repair works in place, so a header it cannot name is its work, not a wrong target:
/// its own check of the magic asks for --force, and then it repairs.
#[test]
fn log_repair_still_repairs_a_header_overwritten_with_anything() {
    let b = Bench::new();
    let mut bytes = fixture("log-crash.log.img.gz");
    bytes[..4].copy_from_slice(b"XXXX");
    let log = b.put("overwritten.img", &bytes);
    refused(
        b.dir(),
        "log_repair",
        &["--rewrite-header", "--nr-regions", "512", s(&log)],
        &[1],
        &[
            "log header: bad magic 0x58585858",
            "--force repairs it anyway",
        ],
    );
    accepted(
        "log_repair",
        &[
            "--rewrite-header",
            "--force",
            "--nr-regions",
            "512",
            s(&log),
        ],
    );
    accepted("log_dump", &[s(&log)]);
}

/// A missing output: the message keeps thin-provisioning-tools' words and adds the size
/// the input needs, which is exactly the least size accepted. The same for an output too
/// small.
#[test]
fn a_missing_or_small_output_is_told_the_size_it_needs() {
    let b = Bench::new();
    let (era, era_xml, log_xml) = (b.path("era.img"), b.path("era.xml"), b.path("log.xml"));
    // era-basic: 1024 blocks, 4 writesets.
    let era_need = needed_size(
        b.dir(),
        "era_restore",
        &["-i", s(&era_xml), "-o"],
        "it must hold at least ",
        " bytes (truncate -s ",
    );
    let repair_need = needed_size(
        b.dir(),
        "era_repair",
        &["-i", s(&era), "-o"],
        "it must hold at least ",
        " bytes (truncate -s ",
    );
    assert_eq!(era_need, repair_need);
    // XML from stdin is read only once: the size is left to era_metadata_size.
    let missing = b.path("missing.img");
    let o = outcome(
        command("era_restore")
            .args(["-i", "-", "-o", s(&missing)])
            .stdin(fs::File::open(&era_xml).unwrap()),
    );
    let err = o.stderr;
    assert_eq!(o.code, 1, "{err}");
    assert!(
        err.contains("Couldn't find output file")
            && err.contains("; create it first: era_metadata_size --nr-blocks N --writesets W"),
        "{err}"
    );
    let log_need = needed_size(
        b.dir(),
        "log_restore",
        &["-i", s(&log_xml), "-o"],
        "an image file must hold at least ",
        " bytes (truncate -s ",
    );
    assert_eq!(
        log_need, 1536,
        "512 regions: 1024 + 64 bytes, in whole sectors"
    );
    for (tool, input, need, step) in [
        ("era_restore", &era_xml, era_need, 4096),
        ("era_repair", &era, era_need, 4096),
        ("log_restore", &log_xml, log_need, 1),
    ] {
        let small = b.put("small.img", &vec![0; (need - step) as usize]);
        let r = run(tool, &["-i", s(input), "-o", s(&small)]);
        assert_eq!(r.code, 1, "{tool}: {}", r.stderr);
        if tool != "log_restore" {
            let words = format!(
                "Output file too small. It holds {} blocks of 4096 bytes; it must hold at least \
                 {need} bytes (truncate -s {need} FILE, or a device of that size)",
                need / 4096 - 1
            );
            assert!(r.stderr.contains(&words), "{tool}: {}", r.stderr);
        }
        let fits = b.put("fits.img", &vec![0; need as usize]);
        accepted(tool, &["-i", s(input), "-o", s(&fits)]);
    }
}

/// Runs `tool args MISSING` and returns the size its message says MISSING needs, checking
/// the words around it.
fn needed_size(dir: &Path, tool: &str, args: &[&str], before: &str, after: &str) -> u64 {
    let missing = dir.join("missing.img");
    let mut all = args.to_vec();
    all.push(s(&missing));
    let r = run(tool, &all);
    assert_eq!(r.code, 1, "{tool}: {}", r.stderr);
    let start = format!(
        "{tool}: {m}: error: Couldn't find output file '{m}'; {before}",
        m = s(&missing)
    );
    let rest = r
        .stderr
        .strip_prefix(&start)
        .unwrap_or_else(|| panic!("{tool}: {}", r.stderr));
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    let need: u64 = digits.parse().unwrap();
    assert!(
        rest.starts_with(&format!("{need}{after}{need} FILE")),
        "{tool}: {}",
        r.stderr
    );
    assert!(!missing.exists(), "{tool} created its output");
    need
}

/// A directory given as the output: named as one, in the same words by every tool.
#[test]
fn a_directory_as_the_output_is_named_as_one() {
    let b = Bench::new();
    let (era, era_xml, log_xml) = (b.path("era.img"), b.path("era.xml"), b.path("log.xml"));
    let d = b.path("adir");
    fs::create_dir(&d).unwrap();
    let era_words = format!(
        "error: Not a block device or regular file '{}': is a directory",
        s(&d)
    );
    refused(
        b.dir(),
        "era_restore",
        &["-i", s(&era_xml), "-o", s(&d)],
        &[1],
        &[&era_words],
    );
    refused(
        b.dir(),
        "era_repair",
        &["-i", s(&era), "-o", s(&d)],
        &[1],
        &[&era_words],
    );
    refused(
        b.dir(),
        "log_restore",
        &["-i", s(&log_xml), "-o", s(&d)],
        &[1],
        &[&era_words],
    );
    for (tool, args) in [
        ("era_dump", vec![s(&era), "-o", s(&d)]),
        (
            "era_invalidate",
            vec!["--written-since", "0", s(&era), "-o", s(&d)],
        ),
    ] {
        refused(b.dir(), tool, &args, &[1], &[&era_words]);
    }
}

#[test]
fn the_output_is_never_the_input_under_another_name() {
    let b = Bench::new();
    let (era, log, era_xml, log_xml) = (
        b.path("era.img"),
        b.path("log.img"),
        b.path("era.xml"),
        b.path("log.xml"),
    );
    let mut rows = 0;
    for (target, kind) in [
        (&era, "era"),
        (&log, "log"),
        (&era_xml, "exml"),
        (&log_xml, "lxml"),
    ] {
        let hard = b.path(&format!("hard-{kind}"));
        fs::hard_link(target, &hard).unwrap();
        let soft = b.path(&format!("soft-{kind}"));
        std::os::unix::fs::symlink(target, &soft).unwrap();
        for alias in [&hard, &soft] {
            let a = s(alias);
            match kind {
                "era" => {
                    refused(b.dir(), "era_dump", &["-o", a, s(&era)], &[1], &["input"]);
                    refused(
                        b.dir(),
                        "era_invalidate",
                        &["--written-since", "0", "-o", a, s(&era)],
                        &[1],
                        &["input"],
                    );
                    refused(
                        b.dir(),
                        "era_repair",
                        &["-i", s(&era), "-o", a],
                        &[1],
                        &["input"],
                    );
                    rows += 3;
                }
                "log" => {
                    refused(b.dir(), "log_dump", &["-o", a, s(&log)], &[1], &["input"]);
                    let leg1 = b.path("leg1.img");
                    let legs = ["--leg", a, "--leg", s(&leg1)];
                    let mut args = vec!["--verify", "--region-size", "128", "--length", "65536"];
                    args.extend(legs);
                    args.push(s(&log));
                    refused(b.dir(), "log_repair", &args, &[1], &["is the log itself"]);
                    rows += 2;
                }
                "exml" => {
                    refused(
                        b.dir(),
                        "era_restore",
                        &["-i", s(&era_xml), "-o", a],
                        &[1],
                        &["input"],
                    );
                    rows += 1;
                }
                _ => {
                    refused(
                        b.dir(),
                        "log_restore",
                        &["-i", s(&log_xml), "-o", a],
                        &[1],
                        &["input"],
                    );
                    rows += 1;
                }
            }
        }
    }
    eprintln!("{rows} rows: output = input through hard links and symlinks");
}

#[test]
fn streams_that_went_away_never_make_a_tool_panic() {
    let b = Bench::new();
    let era = b.path("era.img");
    let damaged = b.path("damaged-era.img");
    let log = b.path("log.img");
    let missing = b.path("missing.img");
    let cases: Vec<(&str, Vec<&str>, i32)> = vec![
        ("era_check", vec![s(&damaged)], 1),
        ("era_check", vec![s(&missing)], 1),
        ("era_check", vec!["--no-such-option"], 2),
        ("era_dump", vec![s(&era)], 0),
        ("era_dump", vec![s(&missing)], 1),
        ("era_invalidate", vec!["--written-since", "0", s(&era)], 0),
        (
            "era_invalidate",
            vec!["--written-since", "1", s(&damaged)],
            1,
        ),
        ("era_restore", vec!["-i", s(&missing), "-o", s(&era)], 1),
        ("era_repair", vec!["-i", s(&missing), "-o", s(&era)], 1),
        ("log_dump", vec![s(&log)], 0),
        ("log_dump", vec![s(&missing)], 1),
        ("log_restore", vec!["-i", s(&missing), "-o", s(&log)], 1),
        (
            "log_repair",
            vec!["--force-resync", "--dry-run", s(&log)],
            0,
        ),
        ("log_repair", vec!["--no-such-option"], 2),
    ];
    for (tool, args, code) in &cases {
        // stderr broken: the exit status is what it would have been.
        let st = outcome(
            command(tool)
                .args(args)
                .stdout(Stdio::null())
                .stderr(broken_pipe()),
        );
        assert_eq!(st.code, *code, "{tool} {args:?} with stderr broken");
        // stdout broken: a report nobody reads ends the tool quietly, with 0 or 1.
        let o = outcome(command(tool).args(args).stdout(broken_pipe()));
        let err = o.stderr;
        assert!(
            matches!(o.code, 0..=2),
            "{tool} {args:?} with stdout broken: exit {} {err}",
            o.code
        );
        assert!(!err.contains("panicked"), "{tool} {args:?}: {err}");
    }
    eprintln!("{} rows: broken stdout and stderr", cases.len() * 2);
}

#[test]
fn an_interrupted_restore_is_named_by_every_reader() {
    use era_log_tools::era::restore::restore;
    use era_log_tools::pdata::fault_io::{FaultIo, Inject};
    use era_log_tools::pdata::io::MemIo;
    let b = Bench::new();
    let xml = b.path("era.xml");
    // A write that fails part-way, as on a full or failing device.
    let io = FaultIo::new(MemIo::new(1024), Inject::StopAt(5));
    let input = Box::new(std::fs::File::open(&xml).unwrap());
    assert!(restore(input, &io, &|_| {}).is_err());
    let half = b.put("half.img", &io.into_inner().into_bytes());
    assert!(half_written(&half));
    let again = "an interrupted era_restore or era_repair left this device half-written: run \
                 it again";
    let h = s(&half);
    let zeros = b.path("zeros.img");
    let readers: [(&str, Vec<&str>); 5] = [
        ("era_check", vec![h]),
        ("era_dump", vec![h]),
        ("era_dump", vec!["--repair", h]),
        ("era_invalidate", vec!["--written-since", "1", h]),
        ("era_repair", vec!["-i", h, "-o", s(&zeros)]),
    ];
    for (tool, args) in &readers {
        refused(
            b.dir(),
            tool,
            args,
            &[1],
            &[again, "bad checksum in superblock"],
        );
    }
    refused(
        b.dir(),
        "log_dump",
        &[h],
        &[1],
        &["this is dm-era metadata, not a disk log; use era_dump"],
    );
    // Running the restore again completes it.
    accepted("era_restore", &["-i", s(&xml), "-o", h]);
    accepted("era_check", &[h]);
}

#[test]
fn readers_say_what_they_were_given_instead() {
    let b = Bench::new();
    let cases: Vec<(&str, PathBuf, &str)> = [
        (
            "era_check",
            b.path("zeros.img"),
            "no dm-era metadata here (all zeros)",
        ),
        (
            "era_check",
            b.path("log.img"),
            "this is a mirror's disk log, not dm-era metadata; use log_dump",
        ),
        (
            "era_invalidate",
            b.path("log.img"),
            "this is a mirror's disk log",
        ),
        (
            "log_dump",
            b.path("era.img"),
            "this is dm-era metadata, not a disk log; use era_dump",
        ),
        (
            "log_dump",
            b.path("zeros.img"),
            "no disk log here (all zeros)",
        ),
    ]
    .into_iter()
    .collect();
    for (tool, input, words) in &cases {
        let mut args = vec![];
        if *tool == "era_invalidate" {
            args.extend(["--written-since", "1"]);
        }
        args.push(s(input));
        refused(b.dir(), tool, &args, &[1], &[words]);
    }
    if let Some(e) = b.ext4() {
        refused(
            b.dir(),
            "era_check",
            &[s(&e)],
            &[1],
            &[
                "bad checksum in superblock",
                "the device holds an ext4 filesystem, not dm-era metadata",
            ],
        );
        refused(
            b.dir(),
            "log_dump",
            &[s(&e)],
            &[1],
            &["the device holds an ext4 filesystem, not a disk log"],
        );
    }
}

/// Whether block 0 of `img` holds the marker of an unfinished build.
fn half_written(img: &Path) -> bool {
    fs::read(img).unwrap().starts_with(BUILD_IN_PROGRESS)
}

/// Sends `sig` to a running tool after `after`, and returns its exit status and stderr.
fn interrupt(mut cmd: Command, after: Duration, sig: i32) -> (i32, String) {
    let child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(after);
    // SAFETY: kill() only sends a signal to the child's pid.
    unsafe { libc::kill(child.id() as i32, sig) };
    let o = Outcome::from(child.wait_with_output().unwrap());
    (o.code, o.stderr)
}

#[test]
fn an_interrupted_dump_leaves_the_previous_file() {
    let b = Bench::new();
    // The pileup image dumps to gigabytes of XML: long enough to be stopped midway.
    let big = b.put("pileup.img", &fixture("era-writeset-pileup.meta.img.gz"));
    let out = b.put("dump.xml", b"yesterday");
    for (sig, code, name) in [
        (libc::SIGINT, 130, "SIGINT"),
        (libc::SIGTERM, 143, "SIGTERM"),
    ] {
        let before = snapshot(b.dir());
        let mut cmd = command("era_dump");
        cmd.args(["-o", s(&out), s(&big)]);
        let (status, err) = interrupt(cmd, Duration::from_millis(300), sig);
        assert_eq!(status, code, "{err}");
        assert!(err.contains(&format!("interrupted by {name}")), "{err}");
        assert!(snapshot(b.dir()) == before, "the dump changed its folder");
    }
}

#[test]
fn an_interrupted_writer_says_which_state_it_left() {
    let b = Bench::new();
    let before = fixture("era-writeset-pileup.meta.img.gz");
    let src = b.put("pileup.img", &before);
    let mut seen = (false, false);
    // Stopped at different moments, the repair either had not written yet (the output is
    // as it was) or had (the output holds the marker, or is complete); the message says
    // which, every time.
    for ms in [20u64, 50, 100, 150, 200, 300, 400] {
        let out = b.put("out.img", &before);
        let mut cmd = command("era_repair");
        cmd.args(["-i", s(&src), "-o", s(&out)]);
        let (status, err) = interrupt(cmd, Duration::from_millis(ms), libc::SIGINT);
        let now = fs::read(&out).unwrap();
        if status == 0 {
            // Finished before the signal came.
            accepted("era_check", &[s(&out)]);
        } else if err.contains("before anything was written") {
            assert_eq!(status, 130);
            assert!(now == before, "{ms} ms: 'unchanged' but the output changed");
            seen.0 = true;
        } else if err.contains("unfinished repair") {
            assert_eq!(status, 130);
            assert!(
                half_written(&out),
                "{ms} ms: 'unfinished' without the marker"
            );
            assert!(err.contains("run era_repair again"), "{err}");
            seen.1 = true;
        } else if err.contains("completely written") {
            accepted("era_check", &[s(&out)]);
        } else {
            panic!("{ms} ms: exit {status}: {err}");
        }
    }
    eprintln!("states seen: unchanged {}, unfinished {}", seen.0, seen.1);
}

#[test]
fn a_writer_stopped_before_its_first_write_says_the_output_is_unchanged() {
    use std::io::Write;
    let b = Bench::new();
    let log = b.path("log.img");
    let fifo = b.path("xml.fifo");
    let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    for (sig, code) in [(libc::SIGINT, 130), (libc::SIGTERM, 143)] {
        let before = state(&log);
        let child = command("log_restore")
            .args(["-i", s(&fifo), "-o", s(&log)])
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Half a document, and the writer keeps the pipe open: the tool waits for the rest.
        let mut w = fs::OpenOptions::new().write(true).open(&fifo).unwrap();
        w.write_all(b"<dirty_log version=\"2\" nr_regions=\"512\">\n")
            .unwrap();
        std::thread::sleep(Duration::from_millis(200));
        // SAFETY: kill() only sends a signal to the child's pid.
        unsafe { libc::kill(child.id() as i32, sig) };
        let o = Outcome::from(child.wait_with_output().unwrap());
        drop(w);
        let err = o.stderr;
        assert_eq!(o.code, code, "{err}");
        assert!(
            err.contains("before anything was written; the output is unchanged"),
            "{err}"
        );
        assert_eq!(state(&log), before);
    }
}

/// Two runs on one regular file at once (a second era_restore started while the first
/// writes, a log_repair while another repairs): a file has no O_EXCL, so each tool locks
/// the file it works on, and a run that finds it locked refuses, leaving it to the other.
/// Here the test holds the lock a running writer (exclusive) or reader (shared) would.
#[test]
fn a_file_another_run_works_on_is_left_to_it() {
    use std::os::fd::AsRawFd;
    let b = Bench::new();
    let (era, era_xml, log, log_xml) = (
        b.path("era.img"),
        b.path("era.xml"),
        b.path("log.img"),
        b.path("log.xml"),
    );
    let take = |path: &Path, how: i32| {
        let f = fs::File::open(path).unwrap();
        // SAFETY: flock only locks the descriptor `f` keeps open.
        let locked = unsafe { libc::flock(f.as_raw_fd(), how | libc::LOCK_NB) };
        assert_eq!(locked, 0);
        f
    };
    let words = "in use: another run of these tools is reading or writing it";
    // A writer at work: every other run, reader or writer, is refused.
    let held = take(&era, libc::LOCK_EX);
    refused(
        b.dir(),
        "era_restore",
        &["-i", s(&era_xml), "-o", s(&era)],
        &[1],
        &[words],
    );
    refused(b.dir(), "era_dump", &[s(&era)], &[1], &[words]);
    refused(b.dir(), "era_check", &[s(&era)], &[1], &[words]);
    drop(held);
    let held = take(&log, libc::LOCK_EX);
    refused(
        b.dir(),
        "log_repair",
        &["--force-resync", s(&log)],
        &[1],
        &[words],
    );
    refused(
        b.dir(),
        "log_restore",
        &["-i", s(&log_xml), "-o", s(&log)],
        &[1],
        &[words],
    );
    refused(b.dir(), "log_dump", &[s(&log)], &[1], &[words]);
    drop(held);
    // Readers at work: more readers are welcome, a writer is not.
    let held = take(&era, libc::LOCK_SH);
    accepted("era_check", &[s(&era)]);
    refused(
        b.dir(),
        "era_restore",
        &["-i", s(&era_xml), "-o", s(&era)],
        &[1],
        &[words],
    );
    drop(held);
    // Nobody at work: the writer writes.
    accepted("era_restore", &["-i", s(&era_xml), "-o", s(&era)]);
}

/// A write that fails after the first one (a full filesystem; here a file-size limit, so
/// that no mount is needed) leaves an era writer's output unfinished: the error line says
/// so, and how to finish it, and every reader names the state.
#[test]
fn an_era_writer_that_fails_half_way_says_the_output_is_unfinished() {
    let b = Bench::new();
    let (era, era_xml) = (b.path("era.img"), b.path("era.xml"));
    for (tool, args) in [
        ("era_restore", vec!["-i", s(&era_xml), "-o"]),
        ("era_repair", vec!["-i", s(&era), "-o"]),
    ] {
        let out = b.path(&format!("{tool}.out"));
        fs::write(&out, vec![0u8; 4 << 20]).unwrap();
        let mut cmd = command(tool);
        cmd.args(&args).arg(&out);
        // Past block 0, so that the marker is written.
        limit_file_size(&mut cmd, 2 * 4096);
        let o = outcome(&mut cmd);
        let err = o.stderr;
        assert_eq!(o.code, 1, "{tool}: {err}");
        assert_eq!(err.lines().count(), 1, "{tool}: {err}");
        assert!(
            err.starts_with(&format!("{tool}: {}: error: ", s(&out)))
                && err.contains(&format!("; run {tool} again")),
            "{tool}: {err}"
        );
        let check = run("era_check", &[s(&out)]);
        assert!(check.stderr.contains("interrupted"), "{}", check.stderr);
    }
}
