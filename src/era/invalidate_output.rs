//! Writing the answer of `era_invalidate`: the peer's XML, or text and JSON for scripts,
//! in blocks, sectors or bytes.

use std::io::{self, Write};

use super::invalidate::WrittenBlocks;

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
    let k = units.per_block(block_size);
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
        Format::Text => {
            for (b, e) in set.runs() {
                writeln!(out, "{} {}", b * k, e * k)?;
            }
        }
        Format::Json => {
            write!(
                out,
                "{{\"written_since\":{since},\"units\":\"{}\",\"block_size_sectors\":{block_size},\
                 \"nr_blocks\":{},\"ranges\":[",
                units.name(),
                set.nr_blocks
            )?;
            for (i, (b, e)) in set.runs().enumerate() {
                let sep = if i == 0 { "" } else { "," };
                write!(out, "{sep}{{\"begin\":{},\"end\":{}}}", b * k, e * k)?;
            }
            out.write_all(b"]}\n")?;
        }
    }
    out.flush()
}
