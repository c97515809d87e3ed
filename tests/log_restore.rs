//! log_restore: log_dump's XML written back, on every kernel log image.

mod common;

use std::path::Path;

use common::log::*;
use common::peak_kib;

#[test]
fn dump_then_restore_undoes_a_repair_on_every_kernel_image() {
    let dir = tempfile::tempdir().unwrap();
    let images = kernel_log_images();
    assert!(images.len() >= 20);
    for file in images {
        let log = unpack(&file, dir.path());
        let orig = std::fs::read(&log).unwrap();
        let xml = dir.path().join("dump.xml");
        ok("log_dump", &["-o", s(&xml), s(&log)]);
        ok("log_repair", &["--force-resync", s(&log)]);
        assert_ne!(
            std::fs::read(&log).unwrap(),
            orig,
            "{file}: repair changed nothing"
        );
        ok("log_restore", &["-i", s(&xml), "-o", s(&log)]);
        assert!(
            std::fs::read(&log).unwrap() == orig,
            "{file}: not restored byte for byte"
        );
    }
}

#[test]
fn restore_writes_a_new_image_that_exists_and_refuses_a_missing_one() {
    let dir = tempfile::tempdir().unwrap();
    let log = unpack("log-crash.log.img.gz", dir.path());
    let xml = dir.path().join("dump.xml");
    ok(
        "log_dump",
        &[&CRASH_GEOMETRY[..], &["-o", s(&xml), s(&log)]].concat(),
    );
    let new = dir.path().join("new.img");
    // As with era_restore, the output must exist: no file is created for a typo.
    let o = run("log_restore", &["-i", s(&xml), "-o", s(&new)]);
    assert_eq!(o.code, 1);
    let err = o.stderr.as_str();
    assert!(
        err.contains(&format!("Couldn't find output file '{}'", s(&new))),
        "{err}"
    );
    assert!(!new.exists());
    // A zeroed image is the normal new target; one too small for the log is refused.
    std::fs::write(&new, vec![0u8; 1024]).unwrap();
    let o = run("log_restore", &["-i", s(&xml), "-o", s(&new)]);
    assert_eq!(o.code, 1);
    assert!(o.stderr.as_str().contains("1536 bytes are needed"));
    assert_eq!(std::fs::read(&new).unwrap(), vec![0u8; 1024]);
    std::fs::write(&new, vec![0u8; 4096]).unwrap();
    ok("log_restore", &["-i", s(&xml), "-o", s(&new)]);
    let made = std::fs::read(&new).unwrap();
    assert_eq!(made[..1536], std::fs::read(&log).unwrap()[..1536]);
    assert_eq!(made[1536..], vec![0u8; 4096 - 1536]);
    assert_eq!(ok("log_dump", &[s(&new)]), ok("log_dump", &[s(&log)]));
}

#[test]
fn bad_xml_is_refused_with_line_and_column_and_nothing_written() {
    let dir = tempfile::tempdir().unwrap();
    let log = unpack("log-crash.log.img.gz", dir.path());
    let cases = [
        (
            "<dirty_log version=\"2\" nr_regions=\"512\">\n  <dirty begin=\"10\" end=\"513\"/>\n</dirty_log>\n",
            "line 2, column 3: <dirty>: range 10..513 goes past the last region",
        ),
        (
            "<dirty_log version=\"7\" nr_regions=\"512\">\n</dirty_log>\n",
            "line 1, column 1: <dirty_log>: version 7",
        ),
        (
            "<dirty_log version=\"2\" nr_regions=\"512\">\n  <dirty begin=\"x\" end=\"2\"/>\n",
            "line 2, column 3: <dirty>: attribute begin=\"x\" is not an unsigned integer",
        ),
        (
            "<dirty_log version=\"2\" nr_regions=\"512\">\n  <dirty begin=\"1\" end=\"2\">\n</dirty_log>\n",
            "line 3, column 1: malformed XML",
        ),
        (
            "<dirty_log version=\"2\" nr_regions=\"512\" dirty=\"3\">\n  <dirty begin=\"1\" end=\"2\"/>\n</dirty_log>\n",
            "line 1, column 1: <dirty_log>: dirty=\"3\", but the ranges hold 1 regions",
        ),
    ];
    for (xml, expect) in cases {
        assert_refused(dir.path(), &log, xml, expect);
    }
}

/// log_restore refuses `xml` with `expect` after the file name, exit status 1, one line,
/// and leaves `log` as it was; given a new output, it creates nothing.
fn assert_refused(dir: &Path, log: &Path, xml: &str, expect: &str) {
    let orig = std::fs::read(log).unwrap();
    let x = dir.join("bad.xml");
    std::fs::write(&x, xml).unwrap();
    let o = run("log_restore", &["-i", s(&x), "-o", s(log)]);
    let err = o.stderr.as_str();
    assert_eq!(o.code, 1, "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with(&format!("log_restore: {}: error: {expect}", s(&x))),
        "{err}"
    );
    assert_eq!(std::fs::read(log).unwrap(), orig);
    let new = dir.join("never.img");
    let o = run("log_restore", &["-i", s(&x), "-o", s(&new)]);
    assert_eq!(o.code, 1);
    assert!(!new.exists(), "a target was created for bad XML");
}

#[test]
fn sector_attributes_that_disagree_with_the_regions_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let log = unpack("log-crash.log.img.gz", dir.path());
    let root = "<dirty_log version=\"2\" nr_regions=\"512\" region_size=\"128\">\n";
    let cases = [
        (
            format!("{root}  <dirty begin=\"96\" end=\"98\" begin_sector=\"12289\" end_sector=\"12544\"/>\n</dirty_log>\n"),
            "line 2, column 3: <dirty>: begin_sector=\"12289\", but region 96 begins at sector 12288 (region_size 128)",
        ),
        (
            format!("{root}  <dirty begin=\"96\" end=\"98\" begin_sector=\"12288\" end_sector=\"12543\"/>\n</dirty_log>\n"),
            "line 2, column 3: <dirty>: end_sector=\"12543\", but range 96..98 ends at sector 12544 (region_size 128)",
        ),
        (
            // Only the range ending at the last region may be clipped.
            format!("{root}  <dirty begin=\"1\" end=\"2\" end_sector=\"256\"/>\n  <dirty begin=\"96\" end=\"98\" end_sector=\"12500\"/>\n</dirty_log>\n"),
            "line 3, column 3: <dirty>: end_sector=\"12500\", but range 96..98 ends at sector 12544 (region_size 128)",
        ),
        (
            format!("{root}  <dirty begin=\"510\" end=\"512\" end_sector=\"65408\"/>\n</dirty_log>\n"),
            "line 2, column 3: <dirty>: end_sector=\"65408\", but range 510..512 ends after sector 65408 and at sector 65536 at most (region_size 128)",
        ),
        (
            format!("{root}  <dirty begin=\"510\" end=\"512\" end_sector=\"65537\"/>\n</dirty_log>\n"),
            "line 2, column 3: <dirty>: end_sector=\"65537\", but range 510..512 ends after sector 65408 and at sector 65536 at most (region_size 128)",
        ),
        (
            "<dirty_log version=\"2\" nr_regions=\"512\">\n  <dirty begin=\"96\" end=\"98\" begin_sector=\"12288\" end_sector=\"12544\"/>\n</dirty_log>\n".into(),
            "line 2, column 3: <dirty>: begin_sector given, but <dirty_log> has no region_size",
        ),
        (
            "<dirty_log version=\"2\" nr_regions=\"512\">\n  <dirty begin=\"96\" end=\"98\" end_sector=\"12544\"/>\n</dirty_log>\n".into(),
            "line 2, column 3: <dirty>: end_sector given, but <dirty_log> has no region_size",
        ),
        (
            "<dirty_log version=\"2\" nr_regions=\"512\" region_size=\"0\">\n</dirty_log>\n".into(),
            "line 1, column 1: <dirty_log>: region_size is 0",
        ),
    ];
    for (xml, expect) in &cases {
        assert_refused(dir.path(), &log, xml, expect);
    }
}

#[test]
fn a_dump_with_a_clipped_last_range_is_restored() {
    let dir = tempfile::tempdir().unwrap();
    // Regions 0, 3..5 and the last one dirty, written on zeros.
    let spec = dir.path().join("spec.xml");
    std::fs::write(
        &spec,
        "<dirty_log version=\"2\" nr_regions=\"100\">\n  <dirty begin=\"0\" end=\"1\"/>\n  <dirty begin=\"3\" end=\"5\"/>\n  <dirty begin=\"99\" end=\"100\"/>\n</dirty_log>\n",
    )
    .unwrap();
    let log = dir.path().join("log.img");
    std::fs::write(&log, vec![0u8; 4096]).unwrap();
    ok("log_restore", &["-i", s(&spec), "-o", s(&log)]);
    // 100 regions of 128 sectors, the last one 28 sectors short.
    let xml = dir.path().join("dump.xml");
    ok(
        "log_dump",
        &[
            "--region-size",
            "128",
            "--length",
            "12772",
            "-o",
            s(&xml),
            s(&log),
        ],
    );
    let dump = std::fs::read_to_string(&xml).unwrap();
    assert!(
        dump.contains("<dirty begin=\"3\" end=\"5\" begin_sector=\"384\" end_sector=\"640\"/>"),
        "{dump}"
    );
    assert!(
        dump.contains(
            "<dirty begin=\"99\" end=\"100\" begin_sector=\"12672\" end_sector=\"12772\"/>"
        ),
        "{dump}"
    );
    let copy = dir.path().join("copy.img");
    std::fs::write(&copy, vec![0u8; 4096]).unwrap();
    ok("log_restore", &["-i", s(&xml), "-o", s(&copy)]);
    assert!(std::fs::read(&copy).unwrap() == std::fs::read(&log).unwrap());
}

#[test]
fn restore_refuses_to_write_the_log_over_its_input() {
    let dir = tempfile::tempdir().unwrap();
    let log = unpack("log-crash.log.img.gz", dir.path());
    let xml = dir.path().join("dump.xml");
    ok("log_dump", &["-o", s(&xml), s(&log)]);
    let before = std::fs::read(&xml).unwrap();
    // The same file under another name too.
    let link = dir.path().join("link.xml");
    std::fs::hard_link(&xml, &link).unwrap();
    for out in [&xml, &link] {
        let o = run("log_restore", &["-i", s(&xml), "-o", s(out)]);
        let err = o.stderr.as_str();
        assert_eq!(o.code, 1, "{err}");
        assert!(
            err.contains(&format!(
                "error: is the input {}; write the output somewhere else",
                s(&xml)
            )),
            "{err}"
        );
        assert_eq!(std::fs::read(&xml).unwrap(), before);
    }
}

#[test]
fn restore_memory_is_at_most_the_buffer_it_writes() {
    // log_restore holds the one buffer it writes (32 MiB here), within the margin; the log
    // it writes is the one dumped.
    let dir = tempfile::tempdir().unwrap();
    let peak = |nr: u64| {
        let log = dir.path().join(format!("{nr}.img"));
        spread_log(&log, nr);
        let xml = dir.path().join(format!("{nr}.xml"));
        ok("log_dump", &["-o", s(&xml), s(&log)]);
        let out = dir.path().join(format!("{nr}.out"));
        let f = std::fs::File::create(&out).unwrap();
        f.set_len(std::fs::metadata(&log).unwrap().len()).unwrap();
        let kib = peak_kib("log_restore", &["-i", s(&xml), "-o", s(&out)]);
        // Compared a MiB at a time: the test's own memory counts in the next child's peak.
        assert!(same_bytes(&out, &log), "{nr} regions");
        kib
    };
    let small_kib = peak(8192);
    let large_kib = peak(LARGE_LOG_REGIONS);
    let bitmap_kib = LARGE_LOG_REGIONS / 8 / 1024;
    assert!(
        large_kib <= small_kib + bitmap_kib + MEMORY_MARGIN_KIB,
        "{small_kib} KiB, then {large_kib} KiB"
    );
}

/// Whether two files hold the same bytes, read a MiB at a time.
fn same_bytes(a: &Path, b: &Path) -> bool {
    use std::io::Read;
    let (mut a, mut b) = (
        std::fs::File::open(a).unwrap(),
        std::fs::File::open(b).unwrap(),
    );
    let (mut x, mut y) = (vec![0u8; 1 << 20], vec![0u8; 1 << 20]);
    loop {
        let n = a.read(&mut x).unwrap();
        let m = b.read(&mut y[..n.max(1)]).unwrap();
        if n != m || x[..n] != y[..m] {
            return false;
        }
        if n == 0 {
            return true;
        }
    }
}
