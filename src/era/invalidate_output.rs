//! Writing the answer of `era_invalidate`: the peer's XML, or text and JSON for scripts,
//! in blocks, sectors or bytes.

use std::io::{self, Write};

use super::invalidate::WrittenBlocks;
use super::output::{put_u64, Pieces};

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `<blocks>` with `<range begin end>` (end exclusive) and `<block block>`, exactly as
    /// thin-provisioning-tools 1.x prints it. Always in blocks.
    Xml,
    /// One `BEGIN END` line per run, end exclusive.
    Text,
    /// One JSON object with the runs as `{"begin": …, "end": …}`, end exclusive.
    Json,
}

/// Unit of the numbers written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Units {
    /// Origin blocks.
    Blocks,
    /// 512-byte sectors.
    Sectors,
    /// Bytes.
    Bytes,
}

impl Units {
    fn name(self) -> &'static str {
        match self {
            Units::Blocks => "blocks",
            Units::Sectors => "sectors",
            Units::Bytes => "bytes",
        }
    }

    /// How many of this unit one origin block of `block_size` sectors spans.
    fn per_block(self, block_size: u32) -> u64 {
        match self {
            Units::Blocks => 1,
            Units::Sectors => block_size as u64,
            Units::Bytes => block_size as u64 * 512,
        }
    }
}

/// Blocks per piece of output formatted on one core: small enough that the buffers, reused
/// from one batch of pieces to the next, stay in the cache (at most a few hundred KiB).
const PIECE_BLOCKS: u64 = 1 << 16;

/// Where the pieces of `set` start: near every [`PIECE_BLOCKS`], moved on to a block that
/// is not listed, so that no run spans two pieces.
fn piece_starts(set: &WrittenBlocks) -> Vec<u64> {
    let mut starts = vec![0];
    let mut at = PIECE_BLOCKS;
    while at < set.nr_blocks {
        // Only a run through `at` is followed to its end; nothing is searched otherwise.
        let start = if set.contains(at) {
            set.runs_in(at, set.nr_blocks).next().map_or(at, |(_, e)| e)
        } else {
            at
        };
        if start >= set.nr_blocks {
            break;
        }
        starts.push(start);
        at = start.max(at) + PIECE_BLOCKS;
    }
    starts
}

/// Writes `set` to `out`. `block_size` is the origin block size in sectors, `since` the era
/// asked for (both echoed in JSON). The runs are formatted on every core, a piece of the
/// origin each, and written in order.
pub fn write(
    out: &mut dyn Write,
    set: &WrittenBlocks,
    format: Format,
    units: Units,
    block_size: u32,
    since: u32,
) -> io::Result<()> {
    let k = units.per_block(block_size);
    let mut head = Vec::new();
    match format {
        Format::Xml => head.extend_from_slice(b"<blocks>"),
        Format::Text => {}
        Format::Json => {
            head.extend_from_slice(b"{\"written_since\":");
            put_u64(&mut head, since as u64);
            head.extend_from_slice(b",\"units\":\"");
            head.extend_from_slice(units.name().as_bytes());
            head.extend_from_slice(b"\",\"block_size_sectors\":");
            put_u64(&mut head, block_size as u64);
            head.extend_from_slice(b",\"nr_blocks\":");
            put_u64(&mut head, set.nr_blocks);
            head.extend_from_slice(b",\"ranges\":[");
        }
    }
    out.write_all(&head)?;
    let starts = piece_starts(set);
    // JSON separates entries with commas: the first run of all has none before it.
    let first = set.runs().next().map_or(0, |(b, _)| b);
    let first_piece = starts.partition_point(|&s| s <= first).saturating_sub(1);
    Pieces::new().write(out, starts.len(), &|i, b| {
        let end = starts.get(i + 1).copied().unwrap_or(set.nr_blocks);
        for (j, (begin, end)) in set.runs_in(starts[i], end).enumerate() {
            match format {
                Format::Xml if end - begin == 1 => {
                    b.extend_from_slice(b"\n  <block block=\"");
                    put_u64(b, begin);
                    b.extend_from_slice(b"\"/>");
                }
                Format::Xml => {
                    b.extend_from_slice(b"\n  <range begin=\"");
                    put_u64(b, begin);
                    b.extend_from_slice(b"\" end=\"");
                    put_u64(b, end);
                    b.extend_from_slice(b"\"/>");
                }
                Format::Text => {
                    put_u64(b, begin * k);
                    b.push(b' ');
                    put_u64(b, end * k);
                    b.push(b'\n');
                }
                Format::Json => {
                    if i != first_piece || j > 0 {
                        b.push(b',');
                    }
                    b.extend_from_slice(b"{\"begin\":");
                    put_u64(b, begin * k);
                    b.extend_from_slice(b",\"end\":");
                    put_u64(b, end * k);
                    b.push(b'}');
                }
            }
        }
    })?;
    match format {
        Format::Xml => out.write_all(b"\n</blocks>")?,
        Format::Text => {}
        Format::Json => out.write_all(b"]}\n")?,
    }
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outputs(set: &WrittenBlocks) -> Vec<String> {
        let mut all = Vec::new();
        for (format, units) in [
            (Format::Xml, Units::Blocks),
            (Format::Text, Units::Sectors),
            (Format::Json, Units::Bytes),
        ] {
            let mut out = Vec::new();
            write(&mut out, set, format, units, 8, 3).unwrap();
            all.push(String::from_utf8(out).unwrap());
        }
        all
    }

    /// What the formats say, written the plain way, run by run.
    fn expected(set: &WrittenBlocks) -> Vec<String> {
        let runs: Vec<(u64, u64)> = set.runs().collect();
        let mut xml = "<blocks>".to_string();
        let mut text = String::new();
        let mut json = format!(
            "{{\"written_since\":3,\"units\":\"bytes\",\"block_size_sectors\":8,\"nr_blocks\":{},\"ranges\":[",
            set.nr_blocks
        );
        for (i, &(b, e)) in runs.iter().enumerate() {
            if e - b == 1 {
                xml += &format!("\n  <block block=\"{b}\"/>");
            } else {
                xml += &format!("\n  <range begin=\"{b}\" end=\"{e}\"/>");
            }
            text += &format!("{} {}\n", b * 8, e * 8);
            let sep = if i == 0 { "" } else { "," };
            json += &format!("{sep}{{\"begin\":{},\"end\":{}}}", b * 4096, e * 4096);
        }
        xml += "\n</blocks>";
        json += "]}\n";
        vec![xml, text, json]
    }

    #[test]
    fn pieces_written_in_parallel_read_as_one_list() {
        let nr = 9 * PIECE_BLOCKS + 77;
        let mut rng = 0x1234_5678_9abc_def0u64;
        for density in [0u64, 1, 15, 16] {
            let mut set = WrittenBlocks {
                nr_blocks: nr,
                words: vec![0; nr.div_ceil(64) as usize],
                warnings: Vec::new(),
            };
            for w in set.words.iter_mut() {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                // density/16 of the words full, the rest random bits.
                *w = match rng % 16 {
                    x if x < density => u64::MAX,
                    _ if density == 0 => 0,
                    _ => rng,
                };
            }
            // Runs across every piece boundary.
            for p in 1..=9 {
                let b = p * PIECE_BLOCKS;
                for x in b - 3..b + 3 {
                    set.words[(x / 64) as usize] |= 1 << (x % 64);
                }
            }
            if density == 0 {
                set.words.fill(0);
            }
            let last = set.words.len() - 1;
            set.words[last] &= (1u64 << (nr % 64)) - 1;
            assert_eq!(outputs(&set), expected(&set), "density {density}");
        }
    }
}
