//! The era XML reader's fast path and its markup reader agree: random documents, valid and
//! broken, written every way XML allows (attribute order, quotes, white space, comments
//! across lines, several elements on a line, CRLF), read with the fast path, with it off,
//! and in chunks small enough to split every construct, give the same elements, the same
//! error at the same line and column, and restore to the same bytes.

// Tests cast small, known values where they build or look into images.
#![allow(clippy::cast_possible_truncation)]

mod common;

use common::{Event, Recorder, Rng};
use era_log_tools::era::restore::restore_with;
use era_log_tools::era::xml::read::{parse, ParseOptions};
use era_log_tools::pdata::io::MemIo;

/// An element with its attributes written some way XML allows.
fn element(rng: &mut Rng, name: &str, attrs: &[(&str, String)], plain: bool) -> String {
    let mut attrs: Vec<&(&str, String)> = attrs.iter().collect();
    if plain {
        let list: Vec<String> = attrs.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
        return format!("<{name} {}/>", list.join(" "));
    }
    if rng.below(2) == 0 {
        attrs.reverse();
    }
    let space =
        |rng: &mut Rng| [" ", "  ", "\t", "\n   ", "\r\n "][rng.below(5) as usize].to_string();
    let mut s = format!("<{name}");
    for (k, v) in attrs {
        let q = if rng.below(2) == 0 { '"' } else { '\'' };
        let eq = if rng.below(3) == 0 { " = " } else { "=" };
        s.push_str(&format!("{}{k}{eq}{q}{v}{q}", space(rng)));
    }
    s.push_str(if rng.below(3) == 0 { " />" } else { "/>" });
    s
}

fn line_end(rng: &mut Rng) -> &'static str {
    ["\n", "\n", "\n", "\r\n", "  \n", "\n\n", " <!-- x -->\n"][rng.below(7) as usize]
}

/// A random document; `plain` lines are written as era_dump writes them. An `evil` one has
/// one value out of range among its lines: those the fast path hands over whole.
fn document(rng: &mut Rng, evil: bool) -> String {
    let nr_blocks = 1 + rng.below(300);
    let current = 3 + rng.below(5);
    let mut d = String::new();
    if rng.below(4) == 0 {
        d.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    }
    d.push_str(&format!(
        "<superblock uuid=\"\" block_size=\"128\" nr_blocks=\"{nr_blocks}\" current_era=\"{current}\">\n"
    ));
    let mut eras: Vec<u64> = (0..=current).collect();
    for _ in 0..rng.below(4) {
        let era = eras.remove(rng.below(eras.len() as u64) as usize);
        let nr_bits = nr_blocks + rng.below(3) - rng.below(3).min(nr_blocks - 1);
        d.push_str(&format!(
            "  <writeset era=\"{era}\" nr_bits=\"{nr_bits}\">\n"
        ));
        for b in 0..nr_blocks.min(nr_bits) {
            let plain = rng.below(8) != 0;
            let v = if rng.below(3) == 0 { "true" } else { "false" };
            let mut attrs = [("block", b.to_string()), ("value", v.to_string())];
            if evil && rng.below(nr_blocks * 4) == 0 {
                let past = if v == "true" {
                    nr_bits
                } else {
                    nr_bits.max(nr_blocks)
                };
                attrs[0].1 = (past + rng.below(2)).to_string();
            }
            d.push_str("    ");
            d.push_str(&element(rng, "bit", &attrs, plain));
            d.push_str(line_end(rng));
            if rng.below(40) == 0 {
                let begin = rng.below(nr_bits);
                let len = 1 + rng.below(nr_bits - begin);
                let attrs = [("block_begin", begin.to_string()), ("len", len.to_string())];
                let plain = rng.below(2) == 0;
                d.push_str(&element(rng, "marked", &attrs, plain));
                d.push('\n');
            }
            if rng.below(60) == 0 {
                d.push_str("<!--\n    <bit block=\"1\" value=\"true\"/>\n-->\n");
            }
        }
        d.push_str("  </writeset>\n");
    }
    d.push_str("  <era_array>\n");
    let mut b = 0;
    while b < nr_blocks {
        let plain = rng.below(8) != 0;
        let mut attrs = [
            ("block", b.to_string()),
            ("era", rng.below(current).to_string()),
        ];
        if evil && rng.below(nr_blocks) == 0 {
            if rng.below(2) == 0 {
                attrs[0].1 = nr_blocks.to_string();
            } else {
                attrs[1].1 = (current + 1).to_string();
            }
        }
        d.push_str("    ");
        d.push_str(&element(rng, "era", &attrs, plain));
        d.push_str(line_end(rng));
        b += 1 + rng.below(10) / 8;
    }
    d.push_str("  </era_array>\n</superblock>");
    d
}

/// The same document, broken somewhere.
fn break_it(rng: &mut Rng, doc: &str) -> String {
    let mut d = doc.as_bytes().to_vec();
    let at = rng.below(d.len() as u64) as usize;
    match rng.below(9) {
        0 => d.truncate(at),
        1 => {
            let n = (rng.below(30) as usize).min(d.len() - at);
            d.drain(at..at + n);
        }
        2 => d.insert(at, b"x<>&\"'/= 9-"[rng.below(11) as usize]),
        3 => {
            // A line repeated: duplicated entries, unordered eras.
            let start = doc[..at].rfind('\n').map_or(0, |i| i + 1);
            let end = doc[at..].find('\n').map_or(doc.len(), |i| at + i + 1);
            d.splice(start..start, doc[start..end].bytes());
        }
        4 => d
            .splice(at..at, b"<!-- open".iter().copied())
            .for_each(drop),
        5 => d
            .splice(
                at..at,
                b"\n<bit block=\"9999\" value=\"true\"/>\n".iter().copied(),
            )
            .for_each(drop),
        6 => d
            .splice(
                at..at,
                b"\n<era block=\"1\" era=\"666\"/>\n".iter().copied(),
            )
            .for_each(drop),
        7 => d
            .splice(
                at..at,
                b"\n<era block=\"99999999999\" era=\"1\"/>\n"
                    .iter()
                    .copied(),
            )
            .for_each(drop),
        _ => d
            .splice(at..at, b"<!DOCTYPE x>".iter().copied())
            .for_each(drop),
    }
    String::from_utf8_lossy(&d).into_owned()
}

/// What the reader makes of `doc`: the elements it visited, and its verdict. The visitor
/// refuses era 666, which the broken documents may hold.
fn read(doc: &str, opts: &ParseOptions) -> (Vec<Event>, Result<(), String>) {
    let mut r = Recorder::refusing(666);
    let input = Box::new(std::io::Cursor::new(doc.as_bytes().to_vec()));
    let res = parse(input, &mut r, opts, &|_| {}).map_err(|e| e.to_string());
    (r.events, res)
}

fn restored(doc: &str, opts: &ParseOptions) -> Result<Vec<u8>, String> {
    let out = MemIo::new(256);
    let input = Box::new(std::io::Cursor::new(doc.as_bytes().to_vec()));
    restore_with(input, &out, opts, &|_| {}).map_err(|e| e.to_string())?;
    Ok(out.into_bytes())
}

#[test]
fn the_fast_path_and_the_markup_reader_agree_on_random_documents() {
    let mut rng = Rng(2024);
    let mut broken_seen = 0;
    let mut refused = 0;
    for round in 0..400 {
        let doc = document(&mut rng, round % 4 == 3);
        let doc = if round % 4 == 1 {
            break_it(&mut rng, &doc)
        } else {
            doc
        };
        let slow = ParseOptions {
            fast: false,
            ..ParseOptions::default()
        };
        let tiny = ParseOptions {
            chunk_size: 64 + rng.below(200) as usize,
            fast: true,
        };
        let whole = read(&doc, &ParseOptions::default());
        assert_eq!(whole, read(&doc, &slow), "round {round}, slow:\n{doc}");
        assert_eq!(
            whole,
            read(&doc, &tiny),
            "round {round}, chunks of {}:\n{doc}",
            tiny.chunk_size
        );
        if round % 4 == 0 || round % 4 == 2 {
            assert_eq!(whole.1, Ok(()), "round {round}:\n{doc}");
        } else if let (1, Err(e)) = (round % 4, &whole.1) {
            broken_seen += 1;
            assert!(e.starts_with("line "), "round {round}: {e}");
        }
        let bytes = restored(&doc, &ParseOptions::default());
        refused += usize::from(round % 4 == 3 && bytes.is_err());
        assert_eq!(
            bytes,
            restored(&doc, &slow),
            "round {round}: restored, slow"
        );
        assert_eq!(
            bytes,
            restored(&doc, &tiny),
            "round {round}: restored, chunks"
        );
    }
    assert!(broken_seen > 60, "only {broken_seen} broken documents");
    assert!(
        refused > 40,
        "only {refused} documents with a value out of range"
    );
}

#[test]
fn errors_on_fast_lines_name_their_line_and_column() {
    let doc = "<superblock uuid=\"\" block_size=\"8\" nr_blocks=\"4\" current_era=\"3\">\n\
               <writeset era=\"1\" nr_bits=\"4\">\n\
               \t<bit block=\"1\" value=\"true\"/>\n   <bit block=\"4\" value=\"true\"/>\n\
               </writeset>\n<era_array>\n  <era block=\"0\" era=\"1\"/>\n  <era block=\"0\" era=\"1\"/>\n";
    for fast in [true, false] {
        let opts = ParseOptions {
            fast,
            ..ParseOptions::default()
        };
        let e = restored(doc, &opts).unwrap_err();
        assert!(e.starts_with("line 4, column 4: bit 4 is set"), "{e}");
        let fixed = doc.replace("block=\"4\"", "block=\"3\"");
        let e = restored(&fixed, &opts).unwrap_err();
        assert!(
            e.starts_with("line 8, column 3: duplicated era entry"),
            "{e}"
        );
        let e = restored(
            &fixed.replace("  <era block=\"0\" era=\"1\"/>\n  <era", "  <era"),
            &opts,
        )
        .unwrap_err();
        assert_eq!(
            e,
            "line 8, column 1: unexpected end of input in <era_array> (truncated?)"
        );
    }
}
