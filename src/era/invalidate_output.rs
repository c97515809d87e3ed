//! Writing the answer of `era_invalidate`: the peer's XML, or text and JSON for scripts,
//! in blocks, sectors or bytes.

use std::io::{self, Write};

use super::invalidate::WrittenBlocks;
use super::live::SessionInfo;

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

    /// The end of an origin of `sectors` sectors in this unit (blocks: the partial last one
    /// counts).
    fn origin_end(self, sectors: u64, block_size: u32) -> u64 {
        match self {
            Units::Blocks => sectors.div_ceil(block_size as u64),
            Units::Sectors => sectors,
            Units::Bytes => sectors * 512,
        }
    }
}

/// The runs of `set` in `units`, the last one cut at `end` when given.
fn ranges(
    set: &WrittenBlocks,
    units: Units,
    block_size: u32,
    end: Option<u64>,
) -> impl Iterator<Item = (u64, u64)> + '_ {
    let k = units.per_block(block_size);
    set.runs().filter_map(move |(b, e)| {
        let (b, e) = (b * k, e * k);
        let e = end.map_or(e, |end| e.min(end));
        (b < e).then_some((b, e))
    })
}

/// Writes `set` to `out`. `block_size` is the origin block size in sectors, `since` the era
/// asked for (both echoed in JSON).
pub fn write(
    out: &mut dyn Write,
    set: &WrittenBlocks,
    format: Format,
    units: Units,
    block_size: u32,
    since: u32,
) -> io::Result<()> {
    match format {
        Format::Xml => {
            out.write_all(b"<blocks>")?;
            for (b, e) in set.runs() {
                if e - b == 1 {
                    write!(out, "\n  <block block=\"{b}\"/>")?;
                } else {
                    write!(out, "\n  <range begin=\"{b}\" end=\"{e}\"/>")?;
                }
            }
            out.write_all(b"\n</blocks>")?;
        }
        Format::Text => write_text(out, ranges(set, units, block_size, None))?,
        Format::Json => {
            write!(
                out,
                "{{\"written_since\":{since},\"units\":\"{}\",\"block_size_sectors\":{block_size},\
                 \"nr_blocks\":{},\"ranges\":[",
                units.name(),
                set.nr_blocks
            )?;
            write_json_ranges(out, ranges(set, units, block_size, None))?;
        }
    }
    out.flush()
}

fn write_text(out: &mut dyn Write, runs: impl Iterator<Item = (u64, u64)>) -> io::Result<()> {
    for (b, e) in runs {
        writeln!(out, "{b} {e}")?;
    }
    Ok(())
}

fn write_json_ranges(
    out: &mut dyn Write,
    runs: impl Iterator<Item = (u64, u64)>,
) -> io::Result<()> {
    for (i, (b, e)) in runs.enumerate() {
        let sep = if i == 0 { "" } else { "," };
        write!(out, "{sep}{{\"begin\":{b},\"end\":{e}}}")?;
    }
    out.write_all(b"]}\n")
}

/// Writes the answer of a live session (`era_invalidate --live`). Text and JSON ranges end
/// at the end of the origin (the last block may be partial). The JSON object also carries
/// what the next incremental run needs:
///
/// ```text
/// {"written_since":N,"era":E,"next_written_since":X,"snapshot_era":X,"units":"bytes",
///  "block_size_sectors":S,"block_size_bytes":B,"nr_blocks":n,"origin_sectors":o,
///  "origin_bytes":O,"device":"era0","metadata_device":"/dev/vg/meta","checkpoint":true,
///  "snapshot_read":true,"snapshot_root":R,"snapshot_taken":true,"ranges":[...]}
/// ```
pub fn write_live(
    out: &mut dyn Write,
    set: &WrittenBlocks,
    format: Format,
    units: Units,
    since: u32,
    info: &SessionInfo,
) -> io::Result<()> {
    let bs = info.table.block_size;
    let end = Some(units.origin_end(info.origin_sectors(), bs));
    match format {
        Format::Xml => return write(out, set, format, units, bs, since),
        Format::Text => write_text(out, ranges(set, units, bs, end))?,
        Format::Json => {
            write!(
                out,
                "{{\"written_since\":{since},\"era\":{},\"next_written_since\":{},\
                 \"snapshot_era\":{},\"units\":\"{}\",\"block_size_sectors\":{bs},\
                 \"block_size_bytes\":{},\"nr_blocks\":{},\"origin_sectors\":{},\
                 \"origin_bytes\":{},\"device\":{},\"metadata_device\":{},\
                 \"checkpoint\":{},\"snapshot_read\":true,\"snapshot_root\":{},\
                 \"snapshot_taken\":{},\"ranges\":[",
                info.era,
                info.next_written_since(),
                info.snapshot_era,
                units.name(),
                bs as u64 * 512,
                set.nr_blocks,
                info.origin_sectors(),
                info.origin_sectors() * 512,
                json_string(&info.device),
                json_string(&info.metadata_dev.to_string_lossy()),
                info.checkpoint,
                info.snapshot_root,
                info.snapshot_taken,
            )?;
            write_json_ranges(out, ranges(set, units, bs, end))?;
        }
    }
    out.flush()
}

/// `s` as a JSON string literal.
fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dm::DevId;
    use crate::era::live::target::EraTable;

    /// 1001 blocks of 24 sectors over 24010 sectors: the last block has 10 sectors.
    fn info() -> SessionInfo {
        let dev = DevId {
            major: 253,
            minor: 0,
        };
        SessionInfo {
            device: "era\"0".into(),
            metadata_dev: "/dev/meta".into(),
            table: EraTable {
                length: 24010,
                metadata: dev,
                origin: dev,
                block_size: 24,
            },
            era: 7,
            checkpoint: true,
            snapshot_root: 412,
            snapshot_taken: true,
            snapshot_era: 8,
            snapshot_nr_blocks: 1001,
        }
    }

    fn set(blocks: &[u64]) -> WrittenBlocks {
        let mut words = vec![0u64; 1001usize.div_ceil(64)];
        for b in blocks {
            words[(b / 64) as usize] |= 1 << (b % 64);
        }
        WrittenBlocks {
            nr_blocks: 1001,
            words,
            warnings: Vec::new(),
        }
    }

    fn text(units: Units) -> String {
        let mut out = Vec::new();
        write_live(
            &mut out,
            &set(&[0, 999, 1000]),
            Format::Text,
            units,
            1,
            &info(),
        )
        .unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn the_last_range_ends_at_the_end_of_the_origin() {
        assert_eq!(text(Units::Bytes), "0 12288\n12275712 12293120\n");
        assert_eq!(text(Units::Sectors), "0 24\n23976 24010\n");
        assert_eq!(text(Units::Blocks), "0 1\n999 1001\n");
    }

    #[test]
    fn live_json_says_what_the_next_run_needs() {
        let mut out = Vec::new();
        write_live(
            &mut out,
            &set(&[1000]),
            Format::Json,
            Units::Bytes,
            5,
            &info(),
        )
        .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["written_since"], 5);
        assert_eq!(v["era"], 7);
        assert_eq!(v["next_written_since"], 8);
        assert_eq!(v["block_size_sectors"], 24);
        assert_eq!(v["block_size_bytes"], 12288);
        assert_eq!(v["nr_blocks"], 1001);
        assert_eq!(v["origin_sectors"], 24010);
        assert_eq!(v["origin_bytes"], 24010 * 512);
        assert_eq!(v["device"], "era\"0");
        assert_eq!(v["metadata_device"], "/dev/meta");
        assert_eq!(v["snapshot_read"], true);
        assert_eq!(v["snapshot_root"], 412);
        assert_eq!(v["snapshot_taken"], true);
        assert_eq!(v["checkpoint"], true);
        assert_eq!(
            v["ranges"],
            serde_json::json!([{"begin": 12288000, "end": 12293120}])
        );
    }

    #[test]
    fn live_xml_is_the_peers_format_in_blocks() {
        let mut out = Vec::new();
        write_live(
            &mut out,
            &set(&[3, 4]),
            Format::Xml,
            Units::Blocks,
            1,
            &info(),
        )
        .unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "<blocks>\n  <range begin=\"3\" end=\"5\"/>\n</blocks>"
        );
    }
}
