//! One voice across the suite: every tool, put in the same situation, answers in the same
//! grammar (`TOOL: FILE: SEVERITY: what`), one line, with the same words for the same
//! mistake, and the exit status the man pages give. Held devices are in block_devices.rs
//! (they need loop devices).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::{exe, outcome, Outcome};

/// A tool's command line with `F` where the file under test goes. Writers get their input
/// in `F` and a valid output, or a valid input and their output in `O`.
const READERS: &[(&str, &[&str])] = &[
    ("era_check", &["F"]),
    ("era_dump", &["F"]),
    ("era_invalidate", &["--written-since", "1", "F"]),
    ("era_repair", &["-i", "F", "-o", "OUT"]),
    ("log_dump", &["F"]),
    ("log_repair", &["--rewrite-header", "--dry-run", "F"]),
];

/// Tools whose input is XML text.
const XML_READERS: &[(&str, &[&str])] = &[
    ("era_restore", &["-i", "F", "-o", "OUT"]),
    ("log_restore", &["-i", "F", "-o", "OUT"]),
];

/// `tool` with `args`, `F` and `OUT` replaced by `f` and `out`.
fn with_file(tool: &str, args: &[&str], f: &Path, out: &Path) -> Command {
    let path = Path::new(tool);
    let mut cmd = Command::new(if path.is_absolute() {
        path.to_path_buf()
    } else {
        exe(tool)
    });
    for &a in args {
        cmd.arg(match a {
            "F" => f.as_os_str(),
            "OUT" => out.as_os_str(),
            a => a.as_ref(),
        });
    }
    cmd
}

/// [`with_file`] run to its end.
fn run_on(tool: &str, args: &[&str], f: &Path, out: &Path) -> Outcome {
    outcome(&mut with_file(tool, args, f, out))
}

/// One line `TOOL: FILE: error: …` containing `words`, exit 1, nothing on stdout.
fn assert_one_error_line(tool: &str, r: &Outcome, file: &Path, words: &str) {
    let prefix = format!("{tool}: {}: error: ", file.display());
    assert_eq!(r.code, 1, "{tool}: {}", r.stderr);
    assert_eq!(r.stderr.lines().count(), 1, "{tool}: {}", r.stderr);
    assert!(
        r.stderr.starts_with(&prefix),
        "{tool}: not in the grammar `{prefix}…`: {}",
        r.stderr
    );
    assert!(
        r.stderr.contains(words),
        "{tool}: `{words}` missing: {}",
        r.stderr
    );
    assert!(r.stdout.is_empty(), "{tool}: {}", r.stdout);
}

struct Bench {
    dir: tempfile::TempDir,
}

impl Bench {
    fn new() -> Bench {
        Bench {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn put(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let p = self.dir.path().join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    }

    /// A disk log of 64 regions, every one dirty.
    fn small_log(&self) -> PathBuf {
        let mut log = vec![0u8; 4096];
        log[0..4].copy_from_slice(&0x4D69_5272u32.to_le_bytes());
        log[4..8].copy_from_slice(&2u32.to_le_bytes());
        log[8..16].copy_from_slice(&64u64.to_le_bytes());
        self.put("log.img", &log)
    }

    /// A zeroed output of 4 MiB: room for any test's metadata or log.
    fn output(&self) -> PathBuf {
        self.put("out.img", &vec![0; 4 << 20])
    }
}

/// Every tool given `f` as its input says `words` about it, in the one grammar.
fn every_tool_says(f: &Path, words: &str, out: &Path) {
    for (tool, args) in READERS.iter().chain(XML_READERS) {
        assert_one_error_line(tool, &run_on(tool, args, f, out), f, words);
    }
}

#[test]
fn a_missing_input_is_named_the_same_way_by_every_tool() {
    let b = Bench::new();
    let missing = b.dir.path().join("nosuch");
    let words = format!("Couldn't find input file '{}'", missing.display());
    every_tool_says(&missing, &words, &b.output());
}

#[test]
fn a_directory_is_named_the_same_way_by_every_tool() {
    let b = Bench::new();
    let dir = b.dir.path().join("adir");
    std::fs::create_dir(&dir).unwrap();
    let words = format!(
        "Not a block device or regular file '{}': is a directory",
        dir.display()
    );
    every_tool_says(&dir, &words, &b.output());
}

#[test]
fn an_input_too_small_is_one_line_naming_it() {
    let b = Bench::new();
    let tiny = b.put("tiny", b"abcdefgh");
    let out = b.output();
    for (tool, args) in READERS {
        let r = run_on(tool, args, &tiny, &out);
        // The era tools keep thin-provisioning-tools' words, which scripts grep for.
        let words = if tool.starts_with("era_") {
            "Metadata device/file too small.  Is this binary metadata?"
        } else {
            "log header: device holds 8 bytes, but 16 bytes are needed"
        };
        assert_one_error_line(tool, &r, &tiny, words);
    }
}

#[test]
fn an_output_too_small_or_missing_is_named_the_same_way_by_every_writer() {
    let b = Bench::new();
    let era_xml = b.put(
        "era.xml",
        b"<superblock uuid=\"\" block_size=\"128\" nr_blocks=\"4\" current_era=\"1\">\n</superblock>\n",
    );
    let log_xml = b.put(
        "log.xml",
        b"<dirty_log version=\"2\" nr_regions=\"64\">\n</dirty_log>\n",
    );
    let small = b.put("small", &[0; 100]);
    let missing = b.dir.path().join("nosuch");
    for (tool, input, too_small) in [
        ("era_restore", &era_xml, "Output file too small."),
        // Our own tools say the sizes, as the log readers do for an input too small.
        (
            "log_restore",
            &log_xml,
            "log buffer: device holds 100 bytes, but 1536 bytes are needed",
        ),
    ] {
        let args = ["-i", "F", "-o", "OUT"];
        let r = run_on(tool, &args, input, &small);
        assert_one_error_line(tool, &r, &small, too_small);
        assert_eq!(std::fs::read(&small).unwrap(), [0; 100], "{tool} wrote");
        let r = run_on(tool, &args, input, &missing);
        let words = format!("Couldn't find output file '{}'", missing.display());
        assert_one_error_line(tool, &r, &missing, &words);
        assert!(!missing.exists(), "{tool} created its output");
    }
}

/// A report that cannot be written (a full device, given with `-o` or as stdout) is one
/// error line naming the output, from every tool that writes one; a closed pipe stays
/// quiet.
#[test]
fn a_full_output_is_named_by_every_tool_that_writes_a_report() {
    let b = Bench::new();
    let era = b.put("era.img", &common::fixture("era-basic.meta.img.gz"));
    let log = b.small_log();
    let full = Path::new("/dev/full");
    for (tool, args, input) in [
        ("era_dump", &["F"][..], &era),
        ("era_dump", &["--logical", "F"][..], &era),
        ("era_invalidate", &["--written-since", "0", "F"][..], &era),
        ("log_dump", &["F"][..], &log),
    ] {
        let mut with_output = args.to_vec();
        with_output.extend(["-o", "/dev/full"]);
        let r = run_on(tool, &with_output, input, full);
        assert_one_error_line(tool, &r, full, "No space left on device");

        let mut cmd = with_file(tool, args, input, full);
        cmd.stdout(std::fs::File::create(full).unwrap());
        let r = outcome(&mut cmd);
        assert_one_error_line(tool, &r, Path::new("stdout"), "No space left on device");

        // A pipe whose reader is gone before the tool starts: every write fails.
        let mut fds = [0; 2];
        // SAFETY: `fds` has room for the two descriptors pipe returns.
        assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
        // SAFETY: both descriptors were just opened and are owned here alone.
        let (reader, writer) = unsafe {
            use std::os::fd::{FromRawFd, OwnedFd};
            (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1]))
        };
        drop(reader);
        let mut cmd = with_file(tool, args, input, full);
        cmd.stdout(Stdio::from(writer));
        let r = outcome(&mut cmd);
        assert_eq!(r.code, 1, "{tool}: a closed pipe");
        assert!(r.stderr.is_empty(), "{tool}: {}", r.stderr);
    }
}

#[test]
fn an_unreadable_input_is_named_the_same_way_by_every_tool() {
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::process::CommandExt;
    let b = Bench::new();
    std::fs::set_permissions(b.dir.path(), PermissionsExt::from_mode(0o755)).unwrap();
    let locked = b.put("locked", &[0; 8192]);
    std::fs::set_permissions(&locked, PermissionsExt::from_mode(0o000)).unwrap();
    let out = b.output();
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    for (tool, args) in READERS.iter().chain(XML_READERS) {
        let mut cmd = with_file(tool, args, &locked, &out);
        if root {
            // Permissions do not stop root: the tool runs as nobody, from a copy that nobody
            // can run wherever the checkout lies.
            let copy = b.dir.path().join(tool);
            std::fs::copy(exe(tool), &copy).unwrap();
            std::fs::set_permissions(&copy, PermissionsExt::from_mode(0o755)).unwrap();
            cmd = with_file(copy.to_str().unwrap(), args, &locked, &out);
            cmd.uid(65534).gid(65534);
        }
        let r = outcome(&mut cmd);
        assert_one_error_line(tool, &r, &locked, "Permission denied");
        // The system's words for an ordinary file, without a hint about devices.
        assert!(!r.stderr.contains("root"), "{tool}: {}", r.stderr);
    }
}

#[test]
fn a_bad_option_is_a_usage_error_with_exit_2() {
    let b = Bench::new();
    let f = b.put("any", &[0; 8192]);
    let out = b.output();
    for (tool, args) in READERS.iter().chain(XML_READERS) {
        let mut with_bogus = args.to_vec();
        with_bogus.insert(0, "--bogus");
        let r = run_on(tool, &with_bogus, &f, &out);
        assert_eq!(r.code, 2, "{tool}: {}", r.stderr);
        assert!(
            r.stderr.starts_with(&format!(
                "{tool}: error: unexpected argument '--bogus' found"
            )),
            "{tool}: {}",
            r.stderr
        );
        assert!(
            r.stderr.contains(&format!("Usage: {tool} ")),
            "{tool}: {}",
            r.stderr
        );
        assert!(r.stdout.is_empty(), "{tool}");
    }
    let r = run_on("era_metadata_size", &["--bogus"], &f, &out);
    assert_eq!(r.code, 2, "era_metadata_size: {}", r.stderr);
    assert!(
        r.stderr.starts_with("era_metadata_size: error: "),
        "{}",
        r.stderr
    );
}

/// A stdout closed before the tool starts (`TOOL >&-`) would swallow the report with exit
/// status 0: every tool that writes one there refuses it, in one line, before reading.
#[test]
fn a_closed_stdout_is_an_error_for_every_tool_that_writes_there() {
    use std::os::unix::process::CommandExt;
    let b = Bench::new();
    let era = b.put("era.img", &common::fixture("era-basic.meta.img.gz"));
    let log = b.small_log();
    let out = b.output();
    for (tool, args, input) in [
        ("era_dump", &["F"][..], &era),
        ("era_dump", &["--logical", "F"][..], &era),
        ("era_invalidate", &["--written-since", "0", "F"][..], &era),
        ("era_check", &["--format", "json", "F"][..], &era),
        ("log_dump", &["F"][..], &log),
        (
            "era_metadata_size",
            &["--nr-blocks", "1000", "--writesets", "1"][..],
            &era,
        ),
    ] {
        let mut cmd = with_file(tool, args, input, &out);
        // SAFETY: close is async-signal-safe; the child closes its own stdout before exec.
        unsafe {
            cmd.pre_exec(|| {
                libc::close(1);
                Ok(())
            });
        }
        let r = outcome(&mut cmd);
        assert_one_error_line(tool, &r, Path::new("stdout"), "is closed");
        // The same run with its output discarded on purpose succeeds.
        let mut cmd = with_file(tool, args, input, &out);
        cmd.stdout(Stdio::null());
        assert_eq!(outcome(&mut cmd).code, 0, "{tool} > /dev/null");
    }
    // A tool that writes nothing on stdout does not care.
    let mut cmd = with_file("era_check", &["F"], &era, &out);
    // SAFETY: as above.
    unsafe {
        cmd.pre_exec(|| {
            libc::close(1);
            Ok(())
        });
    }
    assert_eq!(outcome(&mut cmd).code, 0);
}

/// era_check and era_invalidate print JSON whatever happens when it is asked for, failures
/// included, so that a script parsing it never meets an empty stdout.
#[test]
fn json_is_printed_when_a_run_fails_too() {
    let b = Bench::new();
    let zeros = b.put("zeros.img", &[0; 65536]);
    let xml = b.put("dump.xml", b"<superblock uuid=\"\" block_size=\"8\">\n");
    let missing = b.dir.path().join("missing.img");
    let out = b.output();
    for (f, words) in [
        (&zeros, "all zeros"),
        (&xml, "This looks like XML."),
        (&missing, "Couldn't find input file"),
    ] {
        let r = run_on("era_check", &["--format", "json", "F"], f, &out);
        assert_eq!(r.code, 1, "{}", r.stderr);
        let v: serde_json::Value = serde_json::from_str(r.stdout.trim()).expect(&r.stdout);
        assert_eq!(v["worst"], "error", "{}", r.stdout);
        assert_eq!(v["file"], f.to_str().unwrap());
        assert!(
            v["error"].as_str().is_some_and(|e| e.contains(words)),
            "{}",
            r.stdout
        );
        assert_one_line_on_stderr(&r, words);

        let args = ["--written-since", "1", "--format", "json", "F"];
        let r = run_on("era_invalidate", &args, f, &out);
        assert_eq!(r.code, 1, "{}", r.stderr);
        let v: serde_json::Value = serde_json::from_str(r.stdout.trim()).expect(&r.stdout);
        assert!(
            v["error"].as_str().is_some_and(|e| e.contains(words)),
            "{}",
            r.stdout
        );
        assert_one_line_on_stderr(&r, words);
    }
}

fn assert_one_line_on_stderr(r: &Outcome, words: &str) {
    assert_eq!(r.stderr.lines().count(), 1, "{}", r.stderr);
    assert!(r.stderr.contains(words), "{}", r.stderr);
}

#[test]
fn counts_are_said_in_the_singular_and_the_plural() {
    let b = Bench::new();
    let out = b.output();
    // Logs of 63 and 62 regions whose 64-bit clean bitmap word is all ones: 1 and 2 bits
    // past the last region. log_dump notes them, a finding in the one grammar.
    for (regions, count) in [(63u64, "1 stray bit set"), (62, "2 stray bits set")] {
        let mut log = vec![0u8; 4096];
        log[0..4].copy_from_slice(&0x4D69_5272u32.to_le_bytes());
        log[4..8].copy_from_slice(&2u32.to_le_bytes());
        log[8..16].copy_from_slice(&regions.to_le_bytes());
        log[1024..1032].fill(0xFF);
        let f = b.put("log.img", &log);
        let r = run_on("log_dump", &["F"], &f, &out);
        assert_eq!(r.code, 0, "{}", r.stderr);
        let want = format!(
            "log_dump: {}: note: clean bitmap: {count} past the last region ({regions})",
            f.display()
        );
        assert_eq!(r.stderr.lines().count(), 1, "{}", r.stderr);
        assert!(r.stderr.starts_with(&want), "{}", r.stderr);
    }
}

/// Binary metadata (or a disk log, or zeros) given to a tool that reads XML is said to be
/// what it is, by both such tools, from a file or a pipe, instead of "unexpected text".
#[test]
fn binary_given_as_xml_is_named_by_both_xml_readers() {
    let b = Bench::new();
    let era = b.put("era.img", &common::fixture("era-basic.meta.img.gz"));
    let out = b.output();
    for (tool, args) in XML_READERS {
        let r = run_on(tool, args, &era, &out);
        let words = match *tool {
            "era_restore" => "holds dm-era metadata, not XML: give the XML era_dump writes",
            _ => "holds dm-era metadata, not XML: give the XML log_dump writes",
        };
        assert_one_error_line(tool, &r, &era, words);
        let mut piped: Vec<&str> = args.to_vec();
        piped[1] = "-";
        let mut cmd = with_file(tool, &piped, &era, &out);
        cmd.stdin(std::fs::File::open(&era).unwrap());
        let r = outcome(&mut cmd);
        assert_one_error_line(tool, &r, Path::new("-"), words);
    }
}

/// The XML of one family given to the other's restore names the tool that reads it.
#[test]
fn the_other_familys_xml_names_its_tool() {
    let b = Bench::new();
    let era = b.put("era.img", &common::fixture("era-basic.meta.img.gz"));
    let log = b.small_log();
    let out = b.output();
    let era_xml = b.dir.path().join("era.xml");
    let log_xml = b.dir.path().join("log.xml");
    let dump = |tool: &str, input: &Path, xml: &Path| {
        let r = run_on(tool, &["-o", xml.to_str().unwrap(), "F"], input, &out);
        assert_eq!(r.code, 0, "{tool}: {}", r.stderr);
    };
    dump("era_dump", &era, &era_xml);
    dump("log_dump", &log, &log_xml);
    let r = run_on("log_restore", &["-i", "F", "-o", "OUT"], &era_xml, &out);
    assert_one_error_line("log_restore", &r, &era_xml, "era_restore reads");
    let r = run_on("era_restore", &["-i", "F", "-o", "OUT"], &log_xml, &out);
    assert_one_error_line("era_restore", &r, &log_xml, "log_restore reads");
}

/// A usage error with --format json is an object whose error has clap's whole first
/// paragraph: a missing argument is named, not cut off after "not provided:".
#[test]
fn a_usage_error_in_json_names_what_is_missing() {
    let b = Bench::new();
    let f = b.put("any", &[0; 8192]);
    let out = b.output();
    for (tool, args, missing) in [
        ("era_check", &["--format", "json"][..], "<INPUT>"),
        (
            "era_invalidate",
            &["--format", "json", "F"][..],
            "--written-since",
        ),
        (
            "log_dump",
            &["--format", "json", "--region-size", "8", "F"][..],
            "--length",
        ),
        (
            "log_repair",
            &["--format", "json", "--force-resync"][..],
            "<LOG>",
        ),
        (
            "era_metadata_size",
            &["--format", "json", "--writesets", "1"][..],
            "--nr-blocks",
        ),
    ] {
        let r = run_on(tool, args, &f, &out);
        assert_eq!(r.code, 2, "{tool}: {}", r.stderr);
        let v: serde_json::Value = serde_json::from_str(&r.stdout).expect(&r.stdout);
        let error = v["error"].as_str().unwrap_or_default();
        assert!(
            error.starts_with("the following required arguments were not provided: ")
                && error.contains(missing),
            "{tool}: {}",
            r.stdout
        );
    }
}

/// A compressed dump given as XML is named as such, with the way to read it.
#[test]
fn a_compressed_dump_is_named_by_both_xml_readers() {
    let b = Bench::new();
    let gz = b.put(
        "dump.xml.gz",
        &[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 1, 2, 3],
    );
    let out = b.output();
    for (tool, args) in XML_READERS {
        let r = run_on(tool, args, &gz, &out);
        let words = format!("holds gzip-compressed data, not XML: decompress it into the tool, e.g. zcat FILE | {tool} -i -");
        assert_one_error_line(tool, &r, &gz, &words);
    }
}
