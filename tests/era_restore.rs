//! era_restore: the byte format of docs/era-xml.md §2.3 and §3, the accepted input variants,
//! and hostile input (exit 1, a line:column message, the output left alone).

// Tests cast small, known values where they build or look into images.
#![allow(clippy::cast_possible_truncation)]

mod common;

use common::*;

/// docs/era-xml.md §5.1: the compact form thin-provisioning-tools' tests use (the library's
/// examples read it too).
const COMPACT: &str = era_log_tools::era::reader::EXAMPLE_XML;

/// docs/era-xml.md §2.3: what thin-provisioning-tools 1.3.3 dumps for it (no final newline).
const DUMPED: &str = r#"<superblock uuid="" block_size="128" nr_blocks="4" current_era="3">
  <writeset era="2" nr_bits="4">
    <bit block="0" value="false"/>
    <bit block="1" value="true"/>
    <bit block="2" value="true"/>
    <bit block="3" value="false"/>
  </writeset>
  <writeset era="3" nr_bits="4">
    <bit block="0" value="true"/>
    <bit block="1" value="false"/>
    <bit block="2" value="false"/>
    <bit block="3" value="false"/>
  </writeset>
  <era_array>
    <era block="0" era="1"/>
    <era block="1" era="0"/>
    <era block="2" era="1"/>
    <era block="3" era="0"/>
  </era_array>
</superblock>
"#;

/// docs/era-xml.md §3: `--logical` of the same metadata.
const LOGICAL: &str = r#"<superblock uuid="" block_size="128" nr_blocks="4" current_era="3">
  <era_array>
    <era block="0" era="3"/>
    <era block="1" era="2"/>
    <era block="2" era="2"/>
    <era block="3" era="0"/>
  </era_array>
</superblock>
"#;

const OUT_SIZE: u64 = 1 << 20;

fn restore(xml: &str, out: &tempfile::NamedTempFile) -> Outcome {
    let input = temp_image(xml.as_bytes());
    run(
        "era_restore",
        &["-i", path_str(&input), "-o", path_str(out)],
    )
}

fn dump(out: &tempfile::NamedTempFile, args: &[&str]) -> String {
    let mut all = args.to_vec();
    all.push(path_str(out));
    ok("era_dump", &all)
}

#[test]
fn the_compact_example_dumps_as_the_peer_prints_it() {
    let out = temp_zeroed(OUT_SIZE);
    let o = restore(COMPACT, &out);
    assert_eq!((o.code, o.stdout.as_str(), o.stderr.as_str()), (0, "", ""));
    assert_eq!(dump(&out, &[]), DUMPED);
    assert_eq!(dump(&out, &["--logical"]), LOGICAL);
    assert_eq!(run("era_check", &[path_str(&out)]).code, 0);
}

#[test]
fn the_dump_restores_to_itself_with_a_declaration_and_bits_in_any_order() {
    let out = temp_zeroed(OUT_SIZE);
    assert_eq!(restore(DUMPED, &out).code, 0);
    assert_eq!(dump(&out, &[]), DUMPED);

    let shuffled = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<!-- hand-written -->\n{}",
        DUMPED
            .replace(
                "<bit block=\"1\" value=\"true\"/>\n    <bit block=\"2\" value=\"true\"/>",
                "<bit block=\"2\" value=\"true\"/>\n    <marked block_begin=\"1\" len=\"2\"/>\n    <bit block=\"1\" value=\"true\"/>",
            )
    );
    let out = temp_zeroed(OUT_SIZE);
    let o = restore(&shuffled, &out);
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert_eq!(dump(&out, &[]), DUMPED);
}

#[test]
fn writesets_may_follow_the_era_array_and_bits_past_a_short_writeset_are_false() {
    let xml = r#"<superblock uuid="x" block_size="8" nr_blocks="70" current_era="9">
  <era_array>
    <era block="69" era="2"/>
  </era_array>
  <writeset era="9" nr_bits="66">
    <marked block_begin="60" len="6"/>
    <bit block="69" value="false"/>
  </writeset>
  <writeset era="4" nr_bits="80"><bit block="79" value="true"/></writeset>
</superblock>"#;
    let out = temp_zeroed(OUT_SIZE);
    let o = restore(xml, &out);
    assert_eq!(o.code, 0, "{}", o.stderr);
    let text = dump(&out, &[]);
    let ws4 = text
        .find("<writeset era=\"4\" nr_bits=\"80\">")
        .expect("era 4 first");
    let ws9 = text
        .find("<writeset era=\"9\" nr_bits=\"66\">")
        .expect("era 9");
    assert!(ws4 < ws9);
    // A writeset longer than the origin prints its set bits past nr_blocks.
    assert!(text[ws4..ws9].contains("<bit block=\"79\" value=\"true\"/>"));
    assert!(!text[ws4..ws9].contains("<bit block=\"70\""));
    let ws9_text = &text[ws9..];
    for b in 60..66 {
        assert!(ws9_text.contains(&format!("<bit block=\"{b}\" value=\"true\"/>")));
    }
    assert!(ws9_text.contains("<bit block=\"69\" value=\"false\"/>"));
    assert!(text.contains("<era block=\"68\" era=\"0\"/>\n    <era block=\"69\" era=\"2\"/>"));
    assert_eq!(run("era_check", &[path_str(&out)]).code, 0);
}

/// Each hostile input, with a fragment its message must contain.
fn hostile() -> Vec<(&'static str, String, &'static str)> {
    let sb = r#"<superblock uuid="" block_size="128" nr_blocks="4" current_era="3">"#;
    let doc = |body: &str| format!("{sb}\n{body}\n</superblock>");
    let mut garbage = Vec::new();
    let mut rng = Rng(7);
    for _ in 0..3000 {
        garbage.push((rng.next() % 95 + 32) as u8);
    }
    vec![
        ("truncated", DUMPED[..DUMPED.len() - 60].to_string(), "end of input"),
        ("empty", String::new(), "no <superblock>"),
        ("garbage", String::from_utf8(garbage).expect("ascii"), "line 1, column 1: unexpected text in the document"),
        (
            "huge number",
            doc(r#"<era_array><era block="0" era="99999999999"/></era_array>"#),
            "does not fit in 32 bits",
        ),
        (
            "negative",
            doc(r#"<era_array><era block="-1" era="1"/></era_array>"#),
            "not a non-negative integer",
        ),
        (
            "duplicated writeset",
            doc("<writeset era=\"2\" nr_bits=\"4\"/>\n<writeset era=\"2\" nr_bits=\"4\"/>"),
            "duplicated writeset era 2",
        ),
        (
            "duplicated era entry",
            doc(r#"<era_array><era block="1" era="1"/><era block="1" era="1"/></era_array>"#),
            "duplicated era entry",
        ),
        (
            "unordered era entries",
            doc(r#"<era_array><era block="2" era="1"/><era block="1" era="1"/></era_array>"#),
            "must ascend",
        ),
        ("era past nr_blocks", doc(r#"<era_array><era block="4" era="1"/></era_array>"#), "nr_blocks"),
        ("era above current", doc(r#"<era_array><era block="0" era="4"/></era_array>"#), "above current_era"),
        ("writeset above current", doc(r#"<writeset era="4" nr_bits="4"/>"#), "above current_era"),
        (
            "bit past nr_bits",
            doc(r#"<writeset era="1" nr_bits="4"><bit block="4" value="true"/></writeset>"#),
            "only 4 bits",
        ),
        (
            "zero-length range",
            doc(r#"<writeset era="1" nr_bits="4"><marked block_begin="0" len="0"/></writeset>"#),
            "length 0",
        ),
        (
            "range past nr_bits",
            doc(r#"<writeset era="1" nr_bits="4"><marked block_begin="3" len="2"/></writeset>"#),
            "runs past",
        ),
        (
            "bit in era array",
            doc(r#"<era_array><bit block="0" value="true"/></era_array>"#),
            "not allowed in <era_array>",
        ),
        (
            "nested writesets",
            doc(r#"<writeset era="1" nr_bits="4"><writeset era="2" nr_bits="4"/></writeset>"#),
            "not allowed in <writeset>",
        ),
        ("writeset outside", r#"<writeset era="1" nr_bits="4"/>"#.to_string(), "not allowed"),
        ("second superblock", format!("{}\n{sb}</superblock>", doc("")), "duplicated <superblock>"),
        ("unknown element", doc("<foo/>"), "unknown element <foo>"),
        ("unknown attribute", doc(r#"<writeset era="1" nr_bits="4" x="1"/>"#), "unknown attribute 'x'"),
        ("missing attribute", doc(r#"<writeset era="1"/>"#), "missing attribute 'nr_bits'"),
        (
            "duplicated attribute",
            doc(r#"<era_array><era block="0" era="1" era="2"/></era_array>"#),
            "duplicated attribute 'era'",
        ),
        ("bad bool", doc(r#"<writeset era="1" nr_bits="4"><bit block="0" value="1"/></writeset>"#), "true or false"),
        ("text", doc("hello"), "unexpected text"),
        ("doctype", format!("<!DOCTYPE x>\n{}", doc("")), "DOCTYPE"),
        ("mismatched end", doc("<era_array></writeset>"), "line 2, column 12: unexpected </writeset> in <era_array>"),
        (
            "too many blocks",
            r#"<superblock uuid="" block_size="128" nr_blocks="2147483648" current_era="3"></superblock>"#.to_string(),
            "2^31",
        ),
        (
            "block size",
            r#"<superblock uuid="" block_size="12" nr_blocks="4" current_era="3"></superblock>"#.to_string(),
            "multiple of 8",
        ),
    ]
}

#[test]
fn hostile_xml_fails_with_a_position_and_writes_nothing() {
    for (what, xml, fragment) in hostile() {
        let out = temp_zeroed(OUT_SIZE);
        let o = restore(&xml, &out);
        assert_eq!(o.code, 1, "{what}: {}", o.stderr);
        assert_eq!(o.stderr.lines().count(), 1, "{what}: {}", o.stderr);
        assert!(
            o.stderr.contains("line ") && o.stderr.contains("column "),
            "{what}: {}",
            o.stderr
        );
        assert!(o.stderr.contains(fragment), "{what}: {}", o.stderr);
        assert!(!o.stderr.contains("panicked"), "{what}");
        let bytes = std::fs::read(out.path()).expect("output");
        assert!(bytes.iter().all(|&b| b == 0), "{what}: output written");
        assert_eq!(run("era_check", &[path_str(&out)]).code, 1, "{what}");
    }
}

#[test]
fn a_failed_restore_leaves_earlier_metadata_untouched() {
    let out = temp_zeroed(OUT_SIZE);
    assert_eq!(restore(COMPACT, &out).code, 0);
    let before = std::fs::read(out.path()).expect("output");
    for (what, xml, _) in hostile() {
        assert_eq!(restore(&xml, &out).code, 1, "{what}");
        assert!(
            std::fs::read(out.path()).expect("output") == before,
            "{what}"
        );
    }
    assert_eq!(run("era_check", &[path_str(&out)]).code, 0);
}

#[test]
fn the_line_and_column_point_at_the_offending_element() {
    let xml = "<superblock uuid=\"\" block_size=\"128\" nr_blocks=\"4\" current_era=\"3\">\n  <era_array>\n     <era block=\"9\" era=\"1\"/>\n  </era_array>\n</superblock>";
    let o = restore(xml, &temp_zeroed(OUT_SIZE));
    assert!(o.stderr.contains("line 3, column 6:"), "{}", o.stderr);
}

#[test]
fn outputs_that_are_too_small_missing_or_the_input_are_refused() {
    let small = temp_zeroed(40_959);
    let o = restore(COMPACT, &small);
    assert_eq!(o.code, 1);
    assert!(o.stderr.contains("Output file too small."), "{}", o.stderr);

    // 40960 bytes is the minimum, but this metadata needs more blocks.
    let big =
        r#"<superblock uuid="" block_size="128" nr_blocks="100000" current_era="3"></superblock>"#;
    let o = restore(big, &temp_zeroed(40_960));
    assert_eq!(o.code, 1);
    assert!(o.stderr.contains("Output file too small."), "{}", o.stderr);

    let input = temp_image(COMPACT.as_bytes());
    let o = run(
        "era_restore",
        &["-i", path_str(&input), "-o", "/nonexistent/out"],
    );
    assert_eq!(o.code, 1);
    assert!(o
        .stderr
        .contains("Couldn't find output file '/nonexistent/out'"));
    let o = run(
        "era_restore",
        &["-i", "/nonexistent/in", "-o", path_str(&input)],
    );
    assert!(o
        .stderr
        .contains("Couldn't find input file '/nonexistent/in'"));

    let padded = temp_zeroed(OUT_SIZE);
    std::fs::write(padded.path(), COMPACT).expect("write");
    padded.as_file().set_len(OUT_SIZE).expect("size");
    let o = run(
        "era_restore",
        &["-i", path_str(&padded), "-o", path_str(&padded)],
    );
    assert_eq!(o.code, 1);
    assert!(o.stderr.contains("is the input"), "{}", o.stderr);
    assert!(std::fs::read(padded.path())
        .expect("read")
        .starts_with(COMPACT.as_bytes()));

    let o = run("era_restore", &["-i", path_str(&input)]);
    assert_eq!(o.code, 2, "usage error");
    let o = run(
        "era_restore",
        &["-q", "-i", path_str(&input), "-o", path_str(&small)],
    );
    assert_eq!((o.code, o.stdout.as_str(), o.stderr.as_str()), (1, "", ""));
}

/// Random `<marked>` ranges and `<bit>`s, crossing 64-bit words and bitset array blocks
/// (32,576 bits each), in shuffled order: era_invalidate on the restored metadata lists
/// exactly the blocks they mark.
#[test]
fn marked_ranges_across_words_and_array_blocks_restore_exactly() {
    let nr_blocks: u64 = 70_001;
    let mut rng = Rng(99);
    for round in 0..4 {
        let mut expected = vec![false; nr_blocks as usize];
        let mut items = Vec::new();
        for _ in 0..60 {
            let begin = rng.below(nr_blocks);
            let longest = if rng.below(2) == 0 { 130 } else { 40_000 };
            let len = 1 + rng.below(longest);
            let len = len.min(nr_blocks - begin);
            expected[begin as usize..(begin + len) as usize].fill(true);
            items.push(format!("<marked block_begin=\"{begin}\" len=\"{len}\"/>"));
            let bit = rng.below(nr_blocks);
            expected[bit as usize] = true;
            items.push(format!("<bit block=\"{bit}\" value=\"true\"/>"));
        }
        for i in (1..items.len()).rev() {
            items.swap(i, rng.below(i as u64 + 1) as usize);
        }
        let xml = format!(
            "<superblock uuid=\"\" block_size=\"8\" nr_blocks=\"{nr_blocks}\" current_era=\"7\">\n\
             <writeset era=\"7\" nr_bits=\"{nr_blocks}\">\n{}\n</writeset>\n</superblock>",
            items.join("\n")
        );
        let out = temp_zeroed(OUT_SIZE);
        let o = restore(&xml, &out);
        assert_eq!(o.code, 0, "round {round}: {}", o.stderr);
        let o = run(
            "era_invalidate",
            &["--written-since", "7", "--format", "text", path_str(&out)],
        );
        assert_eq!(o.code, 0, "{}", o.stderr);
        let mut got = vec![false; nr_blocks as usize];
        for line in o.stdout.lines() {
            let (b, e) = line.split_once(' ').expect("BEGIN END");
            let (b, e): (usize, usize) = (b.parse().unwrap(), e.parse().unwrap());
            got[b..e].fill(true);
        }
        let diff = (0..nr_blocks as usize).find(|&b| got[b] != expected[b]);
        assert_eq!(diff, None, "round {round}: first differing block");
        let o = run("era_check", &[path_str(&out)]);
        assert_eq!(o.code, 0, "{}", o.stderr);
    }
}

/// Runs era_restore with `stdin` piped in, written by another thread as the tool reads.
fn restore_piped(args: &[&str], stdin: Vec<u8>) -> Outcome {
    outcome_fed(command("era_restore").args(args), stdin)
}

/// era_dump's XML of synthetic metadata of `nr_blocks` blocks: several read chunks long.
fn synthetic_xml(nr_blocks: u32) -> Vec<u8> {
    use era_log_tools::era::sink::{EraSink, Summary};
    use era_log_tools::era::xml::write::XmlWriter;
    let mut x = XmlWriter::new(Vec::new());
    let mut rng = Rng(5);
    x.superblock_begin(&Summary {
        block_size: 128,
        nr_blocks,
        current_era: 20,
    })
    .unwrap();
    for era in [18, 19, 20] {
        x.writeset_begin(era, nr_blocks).unwrap();
        let words: Vec<u64> = (0..nr_blocks.div_ceil(64))
            .map(|i| {
                let w = rng.next() & rng.next();
                if (i as u64 + 1) * 64 > nr_blocks as u64 {
                    w & ((1u64 << (nr_blocks % 64)) - 1)
                } else {
                    w
                }
            })
            .collect();
        x.writeset_words(&words).unwrap();
        x.writeset_end().unwrap();
    }
    x.era_array_begin().unwrap();
    let eras: Vec<u32> = (0..nr_blocks).map(|_| rng.below(18) as u32).collect();
    x.eras(&eras).unwrap();
    x.era_array_end().unwrap();
    x.superblock_end().unwrap();
    x.into_inner().unwrap()
}

#[test]
fn a_pipe_restores_byte_for_byte_what_the_file_restores() {
    // (XML, whether era_dump gives it back)
    let mut inputs: Vec<(Vec<u8>, bool)> = vec![(DUMPED.into(), true), (COMPACT.into(), false)];
    // 20 MB of XML: several chunks of the reader, and a shape not divisible by 64.
    inputs.push((synthetic_xml(150_001), true));
    for name in ["era-many-eras.meta.img.gz", "era-resize.meta.img.gz"] {
        let img = temp_image(&fixture(name));
        let o = run("era_dump", &[path_str(&img)]);
        assert_eq!(o.code, 0, "{}", o.stderr);
        inputs.push((o.stdout.into_bytes(), true));
    }
    for (xml, round_trips) in inputs {
        let size = 64 << 20;
        let from_file = temp_zeroed(size);
        let input = temp_image(&xml);
        let o = run(
            "era_restore",
            &["-i", path_str(&input), "-o", path_str(&from_file)],
        );
        assert_eq!(o.code, 0, "{}", o.stderr);
        let file_bytes = std::fs::read(from_file.path()).unwrap();
        for name in ["-", "/dev/stdin"] {
            let from_pipe = temp_zeroed(size);
            let o = restore_piped(&["-i", name, "-o", path_str(&from_pipe)], xml.clone());
            assert_eq!((o.code, o.stderr.as_str()), (0, ""), "-i {name}");
            assert!(
                std::fs::read(from_pipe.path()).unwrap() == file_bytes,
                "-i {name}: the pipe restored other bytes than the file"
            );
        }
        if round_trips {
            let o = run("era_dump", &[path_str(&from_file)]);
            assert!(
                o.stdout.as_bytes() == xml,
                "the restore does not dump as its input"
            );
        }
    }
}

#[test]
fn hostile_xml_from_a_pipe_fails_the_same_way_and_writes_nothing() {
    for (what, xml, fragment) in hostile() {
        let out = temp_zeroed(OUT_SIZE);
        let from_file = restore(&xml, &out);
        let o = restore_piped(&["-i", "-", "-o", path_str(&out)], xml.into_bytes());
        assert_eq!(o.code, 1, "{what}: {}", o.stderr);
        assert!(o.stderr.contains(fragment), "{what}: {}", o.stderr);
        // The same message, naming the input as given.
        let name = from_file.stderr.split(": ").nth(1).unwrap_or("");
        assert_eq!(o.stderr.replacen("-", name, 1), from_file.stderr, "{what}");
        let bytes = std::fs::read(out.path()).expect("output");
        assert!(bytes.iter().all(|&b| b == 0), "{what}: output written");
    }
}

/// An output too small for an XML of many writesets is told the size the whole XML needs
/// (the check stops at the first writeset that does not fit, and the size known there was
/// short of it): that size is accepted and one block less refused. Through a pipe, read
/// once, it is told how to work the size out instead of a number.
#[test]
fn a_small_output_is_told_the_size_of_the_whole_xml() {
    let img = temp_image(&fixture("era-many-eras.meta.img.gz"));
    let xml = run("era_dump", &[path_str(&img)]).stdout;
    let xml_file = temp_image(xml.as_bytes());
    let needed = |out: &tempfile::NamedTempFile| {
        let o = run(
            "era_restore",
            &["-i", path_str(&xml_file), "-o", path_str(out)],
        );
        assert_eq!(o.code, 1, "{}", o.stderr);
        let n: u64 = o
            .stderr
            .split("at least ")
            .nth(1)
            .and_then(|t| t.split(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no size in: {}", o.stderr));
        n
    };
    let n = needed(&temp_zeroed(40960));
    // The second figure is the same: the first was the whole XML's already.
    assert_eq!(needed(&temp_zeroed(n - 4096)), n);
    let out = temp_zeroed(n);
    let o = run(
        "era_restore",
        &["-i", path_str(&xml_file), "-o", path_str(&out)],
    );
    assert_eq!(o.code, 0, "{}", o.stderr);
    let o = outcome(
        command("era_restore")
            .args(["-i", "-", "-o", path_str(&temp_zeroed(n - 4096))])
            .stdin(std::fs::File::open(xml_file.path()).unwrap()),
    );
    let stderr = o.stderr;
    assert!(stderr.contains("era_metadata_size --nr-blocks"), "{stderr}");
    assert!(!stderr.contains("at least 1"), "{stderr}");
}

/// XML of `nr_blocks` blocks whose sixteen writesets each have a range set in every 4 KiB of
/// their bits, so that a restore holding the bits in memory would touch all of them.
fn spread_writesets(nr_blocks: u32) -> String {
    let mut xml = format!(
        "<superblock uuid=\"\" block_size=\"8\" nr_blocks=\"{nr_blocks}\" current_era=\"30\">\n"
    );
    for era in 5..21 {
        xml += &format!("  <writeset era=\"{era}\" nr_bits=\"{nr_blocks}\">\n");
        for b in (era..nr_blocks).step_by(4096 * 8) {
            xml += &format!("    <marked block_begin=\"{b}\" len=\"3\"/>\n");
        }
        xml += "  </writeset>\n";
    }
    let last = nr_blocks - 1;
    xml += &format!("  <era_array>\n    <era block=\"{last}\" era=\"4\"/>\n  </era_array>\n");
    xml + "</superblock>\n"
}

#[test]
fn memory_does_not_grow_with_the_writesets() {
    let peak = |nr_blocks: u32| {
        let dir = tempfile::tempdir().unwrap();
        let xml = dir.path().join("in.xml");
        std::fs::write(&xml, spread_writesets(nr_blocks)).unwrap();
        let out = temp_zeroed(96 << 20);
        let mut cmd = command("era_restore");
        cmd.args(["-q", "-i"])
            .arg(&xml)
            .args(["-o", path_str(&out)]);
        // The era array waits in the test's own folder, not in a shared one.
        cmd.env("TMPDIR", dir.path());
        let (o, kib) = common::memory::peak_memory_kib(&cmd);
        assert!(o.success(), "{o:?}");
        // Every writeset's ranges came back: eras 5 to 20 overlap into one run a range.
        let listed = run(
            "era_invalidate",
            &["--written-since", "5", "--format", "text", path_str(&out)],
        );
        let runs: Vec<&str> = listed.stdout.lines().collect();
        assert_eq!(
            runs.len(),
            (nr_blocks as usize).div_ceil(4096 * 8),
            "{listed:?}"
        );
        assert_eq!(runs[1], "32773 32791");
        kib
    };
    // Sixteen writesets of 2^23 bits hold 16 MiB; held in memory they would all be
    // touched. Many writesets of a small origin keep the era array, and the test, small.
    let (small, large) = (peak(1 << 16), peak(1 << 23));
    assert!(
        large < small + 10 * 1024,
        "{small} KiB at 2^16 blocks, {large} KiB at 2^23"
    );
}
