//! era_repair and era_dump --repair: intact metadata comes through unchanged, lost blocks
//! are reported and filled in on the safe side, and the result is valid metadata.

mod common;

use common::*;
use era_log_tools::era::format::superblock::Superblock;
use era_log_tools::pdata::btree::node::{NodeHeader, NODE_HEADER_SIZE};
use era_log_tools::pdata::checksum::BlockKind;

/// The leftmost leaf under `root`, and the offset of its values.
fn first_leaf(img: &[u8], mut loc: u64) -> (u64, usize) {
    loop {
        let h = NodeHeader::unpack(block(img, loc));
        let v = NODE_HEADER_SIZE + 8 * h.max_entries as usize;
        if h.flags == 2 {
            assert!(h.nr_entries > 0, "non-empty tree");
            return (loc, v);
        }
        loc = le64(block(img, loc), v);
    }
}

/// The first key and value of the leftmost leaf under `root`.
fn first_entry(img: &[u8], root: u64) -> (u64, &[u8]) {
    let (loc, v) = first_leaf(img, root);
    let size = NodeHeader::unpack(block(img, loc)).value_size as usize;
    let key = le64(block(img, loc), NODE_HEADER_SIZE);
    (key, &block(img, loc)[v..v + size])
}

fn first_value(img: &[u8], root: u64) -> &[u8] {
    first_entry(img, root).1
}

fn repair_to_file(img: &tempfile::NamedTempFile, size: u64) -> (Outcome, tempfile::NamedTempFile) {
    let out = temp_zeroed(size);
    let o = run("era_repair", &["-i", path_str(img), "-o", path_str(&out)]);
    (o, out)
}

#[test]
fn intact_metadata_comes_through_unchanged() {
    for name in ["era-snap-held.live-snap-held.img.gz", "era-odd.meta.img.gz"] {
        let bytes = fixture(name);
        let img = temp_image(&bytes);
        let (o, out) = repair_to_file(&img, bytes.len() as u64);
        assert_eq!((o.code, o.stderr.as_str()), (0, ""), "{name}");
        assert_eq!(run("era_check", &[path_str(&out)]).code, 0, "{name}");
        let a = run("era_dump", &[path_str(&img)]);
        let b = run("era_dump", &[path_str(&out)]);
        assert!(a.code == 0 && a.stdout == b.stdout, "{name}");
    }
}

fn lines_with(text: &str, from: &str, to: &str) -> Vec<String> {
    let s = text.find(from).expect("section start");
    let e = s + text[s..].find(to).expect("section end");
    text[s..e].lines().map(str::to_string).collect()
}

#[test]
fn a_lost_writeset_block_is_reported_and_counts_as_written() {
    let mut bytes = fixture("era-basic.meta.img.gz");
    let sb = Superblock::unpack(block(&bytes, 0));
    let (key, ws) = first_entry(&bytes, sb.writeset_tree_root);
    let ws = ws.to_vec();
    let (nr_bits, root) = (le32(&ws, 0), le64(&ws, 4));
    let ablock = le64(first_value(&bytes, root), 0);
    block_mut(&mut bytes, ablock)[100] ^= 0xFF;
    let img = temp_image(&bytes);

    let o = run("era_dump", &[path_str(&img)]);
    o.assert_error(&format!("array block at block {ablock}: bad checksum"));

    let o = run("era_dump", &["--repair", path_str(&img)]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert!(
        o.stderr.contains(&format!("block {ablock}")),
        "{}",
        o.stderr
    );
    assert!(o.stderr.contains("taken as written"), "{}", o.stderr);
    // A salvage that succeeded (exit 0) reports what it replaced as warnings, not errors.
    assert!(!o.stderr.contains(": error: "), "{}", o.stderr);
    assert!(
        o.stderr.contains(": warning: ") && o.stderr.contains("bad checksum"),
        "{}",
        o.stderr
    );
    let section = lines_with(
        &o.stdout,
        &format!("<writeset era=\"{key}\""),
        "</writeset>",
    );
    let bits: Vec<&String> = section.iter().filter(|l| l.contains("<bit ")).collect();
    assert_eq!((bits.len(), nr_bits), (sb.nr_blocks as usize, sb.nr_blocks));
    assert!(bits.iter().all(|l| l.contains("value=\"true\"")));
    let salvaged = o.stdout;

    let xml = temp_image(salvaged.as_bytes());
    let out = temp_zeroed(bytes.len() as u64);
    assert_eq!(
        run("era_restore", &["-i", path_str(&xml), "-o", path_str(&out)]).code,
        0
    );

    let (o, out) = repair_to_file(&img, bytes.len() as u64);
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert!(o.stderr.contains("taken as written"), "{}", o.stderr);
    assert!(!o.stderr.contains(": error: "), "{}", o.stderr);
    assert_eq!(run("era_check", &[path_str(&out)]).code, 0);
    assert_eq!(run("era_dump", &[path_str(&out)]).stdout, salvaged);

    let o = run(
        "era_repair",
        &["-q", "-i", path_str(&img), "-o", path_str(&out)],
    );
    assert_eq!((o.code, o.stderr.as_str()), (0, ""));
}

/// era-basic with its archived writeset's length set to `nr_bits` and, when given, its
/// bitset's root moved to `root`; the writeset's era.
fn with_writeset(bytes: &mut [u8], nr_bits: u32, root: Option<u64>) -> u64 {
    let sb = Superblock::unpack(block(bytes, 0));
    let (leaf, v) = first_leaf(bytes, sb.writeset_tree_root);
    put32(block_mut(bytes, leaf), v, nr_bits);
    if let Some(root) = root {
        put64(block_mut(bytes, leaf), v + 4, root);
    }
    reseal(bytes, leaf, BlockKind::BTREE_NODE);
    le64(block(bytes, leaf), NODE_HEADER_SIZE)
}

/// The `<bit>` lines of writeset `era` in a dump, with the writeset's opening line.
fn bit_lines(xml: &str, era: u64) -> (String, Vec<String>) {
    let section = lines_with(xml, &format!("<writeset era=\"{era}\""), "</writeset>");
    let bits = section[1..].iter().filter(|l| l.contains("<bit ")).cloned();
    (section[0].clone(), bits.collect())
}

/// A writeset 100 times as long as the origin (as an archived one is after a shrink) whose
/// bitset holds only the origin's words: the words past them are lost, and count as
/// written only for the origin's blocks, that is not at all. Blocks past the origin count
/// for nothing, and a damaged length must not turn a few lost words into a list of its
/// whole length (2^31 lines of XML for a few KiB of metadata).
#[test]
fn lost_words_past_the_origin_are_not_taken_as_written() {
    let mut bytes = fixture("era-basic.meta.img.gz");
    let sb = Superblock::unpack(block(&bytes, 0));
    let before = ok("era_dump", &[path_str(&temp_image(&bytes))]);
    let nr_bits = sb.nr_blocks * 100 + 7;
    let era = with_writeset(&mut bytes, nr_bits, None);
    let img = temp_image(&bytes);

    let o = run("era_dump", &["--repair", path_str(&img)]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    let said = "their 0 blocks of the origin are taken as written";
    assert!(o.stderr.contains(said), "{}", o.stderr);
    let (head, bits) = bit_lines(&o.stdout, era);
    assert!(head.contains(&format!("nr_bits=\"{nr_bits}\"")), "{head}");
    assert_eq!(bits, bit_lines(&before, era).1);
    assert_eq!(bits.len(), sb.nr_blocks as usize);
}

/// The same length with a bitset whose root cannot be read: the writeset is cut to the
/// origin (nothing is known past it), every block of the origin is taken as written, and
/// the repair fits on a device of the input's size, where the length read would have asked
/// for 130 MB.
#[test]
fn a_lost_bitset_longer_than_the_origin_is_cut_to_it() {
    let mut bytes = fixture("era-basic.meta.img.gz");
    let sb = Superblock::unpack(block(&bytes, 0));
    let nr_bits = 1 << 30;
    // Its bitset's root on the space map's index block.
    let era = with_writeset(&mut bytes, nr_bits, Some(sb.sm_root.bitmap_root));
    let img = temp_image(&bytes);

    let o = run("era_dump", &["--repair", path_str(&img)]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    let n = sb.nr_blocks;
    for said in [
        format!(
            "nr_bits {nr_bits} is past the origin's {n} blocks and its bitset's root cannot \
             be read: taken as {n} bits"
        ),
        format!(
            "{w} of its {w} words could not be read; their {n} blocks of the origin are taken \
             as written in era {era}",
            w = n.div_ceil(64)
        ),
    ] {
        assert!(o.stderr.contains(&said), "{}", o.stderr);
    }
    let (head, bits) = bit_lines(&o.stdout, era);
    assert!(head.contains(&format!("nr_bits=\"{n}\"")), "{head}");
    assert_eq!(bits.len(), n as usize);
    assert!(bits.iter().all(|l| l.contains("value=\"true\"")));

    let (o, out) = repair_to_file(&img, bytes.len() as u64);
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert_eq!(run("era_check", &[path_str(&out)]).code, 0);
    assert_eq!(
        run("era_dump", &[path_str(&out)]).stdout,
        ok("era_dump", &["--repair", path_str(&img)])
    );
}

#[test]
fn a_lost_era_array_block_counts_as_the_current_era() {
    let mut bytes = fixture("era-basic.meta.img.gz");
    let sb = Superblock::unpack(block(&bytes, 0));
    let ablock = le64(first_value(&bytes, sb.era_array_root), 0);
    block_mut(&mut bytes, ablock)[50] ^= 1;
    let img = temp_image(&bytes);
    let o = run("era_dump", &["--repair", path_str(&img)]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert!(o.stderr.contains("current era"), "{}", o.stderr);
    let eras = lines_with(&o.stdout, "<era_array>", "</era_array>");
    let want = format!("era=\"{}\"/>", sb.current_era);
    let filled = eras.iter().filter(|l| l.ends_with(&want)).count();
    assert!(filled >= 1018.min(sb.nr_blocks as usize), "{filled}");
    let (o, out) = repair_to_file(&img, bytes.len() as u64);
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert_eq!(run("era_check", &[path_str(&out)]).code, 0);
}

#[test]
fn a_bad_superblock_cannot_be_repaired_and_the_output_is_left_alone() {
    let mut bytes = fixture("era-basic.meta.img.gz");
    block_mut(&mut bytes, 0)[300] ^= 1;
    let img = temp_image(&bytes);
    let (o, out) = repair_to_file(&img, bytes.len() as u64);
    assert_eq!(o.code, 1);
    assert!(o.stderr.contains("bad checksum"), "{}", o.stderr);
    assert!(std::fs::read(out.path())
        .expect("read")
        .iter()
        .all(|&b| b == 0));
    let o = run("era_repair", &["-i", path_str(&img), "-o", path_str(&img)]);
    assert_eq!(o.code, 1);
    assert!(o.stderr.contains("is the input"), "{}", o.stderr);
}

/// Found by the mutation tests: a superblock whose block size is 0 was copied into the
/// repaired metadata, which era_check then rejected. Nothing tells what the size should
/// have been (the kernel's table line must match it), so repair refuses.
#[test]
fn an_impossible_block_size_is_refused_not_copied() {
    let mut img = fixture("era-basic.meta.img.gz");
    put32(block_mut(&mut img, 0), 172, 0);
    reseal(&mut img, 0, era_log_tools::era::format::SUPERBLOCK);
    let input = temp_image(&img);
    let out = temp_zeroed(img.len() as u64);
    let before = std::fs::read(out.path()).unwrap();
    let o = run(
        "era_repair",
        &["-i", path_str(&input), "-o", path_str(&out)],
    );
    assert_eq!(o.code, 1, "{}", o.stderr);
    assert!(
        o.stderr
            .contains("data block size 0 is not a positive multiple of 8"),
        "{}",
        o.stderr
    );
    assert_eq!(
        std::fs::read(out.path()).unwrap(),
        before,
        "nothing written"
    );
    let o = run("era_dump", &["--repair", path_str(&input)]);
    assert_eq!(o.code, 1, "{}", o.stderr);
}
