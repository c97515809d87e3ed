//! Writing the answer of `era_invalidate`: the peer's XML, or text and JSON for scripts,
//! in blocks, sectors or bytes.

use std::io::{self, Write};

use super::{list_written_since, wrapped_after_listing, ListError, Runs, Span, WrittenBlocks};
use crate::era::live::SessionInfo;
use crate::era::reader::EraMetadata;
use crate::era::view::View;
use crate::json::Object;
use crate::pdata::error::{Error, Fault};
use crate::pdata::io::BlockIo;
use crate::pdata::report::Problem;
use crate::text::{put_u64, put_u64_pair, Pieces};

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `<blocks>` with `<range begin end>` (end exclusive) and `<block block>`, as
    /// thin-provisioning-tools prints it, ending with a newline as its 0.9 did. Always in
    /// blocks.
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
    pub(super) fn per_block(self, block_size: u32) -> u64 {
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

/// Blocks per piece of output formatted on one core of several: small enough that the
/// buffers, reused from one batch of pieces to the next, stay in the cache (at most a few
/// hundred KiB).
const PIECE_BLOCKS: u64 = 1 << 16;

/// Lists of fewer blocks are formatted on one core: the list is written once, and starting
/// the pool's threads and sharing the cores with them cost more than they take over (a
/// million blocks: 0.87 of the time on one core of two).
const PARALLEL_BLOCKS: u64 = 1 << 22;

/// Blocks per piece when one core formats them all: a few tens of KiB of text, in one
/// buffer that stays in the cache and takes few pages of fresh memory (each costs
/// microseconds to fault in).
const SERIAL_PIECE_BLOCKS: u64 = 1 << 13;

/// What an offline era_invalidate read, echoed in its JSON beside the ranges.
#[derive(Debug, Clone, Copy)]
pub struct Offline {
    /// The era asked for.
    pub since: u32,
    /// Origin block size in sectors.
    pub block_size: u32,
    /// The current era in block 0.
    pub era: u32,
    /// The era of the held snapshot, when that is what was read.
    pub snapshot_era: Option<u32>,
}

impl Offline {
    /// What reading `md` for `--written-since since` found.
    pub fn of(md: &EraMetadata, since: u32) -> Offline {
        Offline {
            since,
            block_size: md.superblock().data_block_size,
            era: md.block0().current_era,
            snapshot_era: md.is_snapshot().then_some(md.superblock().current_era),
        }
    }

    /// How many `units` one origin block spans, when the end of each of `nr_blocks` blocks
    /// can be said in them: the superblock may claim blocks so large (up to 2^32 sectors)
    /// that the origin's last ones end past 2^64 bytes.
    pub fn per_block(&self, units: Units, nr_blocks: u64) -> Result<u64, Error> {
        let k = units.per_block(self.block_size);
        match nr_blocks.checked_mul(k) {
            Some(_) => Ok(k),
            None => Err(Error::structure(
                "superblock",
                Fault::Invalid(format!(
                    "{nr_blocks} blocks of {} sectors end past 2^64 {}; ask for --units \
                     sectors",
                    self.block_size,
                    units.name()
                )),
            )),
        }
    }

    /// The `--written-since` value for the next incremental run: every write the metadata
    /// read does not cover is in this era or a later one.
    pub fn next_written_since(&self) -> u32 {
        self.snapshot_era.unwrap_or(self.era)
    }
}

/// Writes the answer of an offline run to `out`:
///
/// ```text
/// {"written_since":N,"era":E,"next_written_since":X,"snapshot_read":false,"units":"blocks",
///  "block_size_sectors":S,"nr_blocks":n,"past_current_era":false,
///  "ranges":[{"begin":B,"end":E},...]}
/// ```
pub fn write(
    out: &mut dyn Write,
    set: &WrittenBlocks,
    format: Format,
    units: Units,
    read: &Offline,
) -> io::Result<()> {
    let k = read
        .per_block(units, set.nr_blocks)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
    let mut lister = Lister::new(format, k, None, set.nr_blocks, true);
    write_head(out, format, |o| {
        offline_fields(o, read, units, set.nr_blocks, set.past_current_era)
    })?;
    lister.span(out, set.span())?;
    write_tail(out, format)
}

/// The fields of an offline run's JSON before its ranges.
fn offline_fields(
    o: &mut Object,
    read: &Offline,
    units: Units,
    nr_blocks: u64,
    past_current_era: bool,
) -> io::Result<()> {
    o.field("written_since", read.since)?
        .field("era", read.era)?
        .field("next_written_since", read.next_written_since())?
        .field("snapshot_read", read.snapshot_era.is_some())?
        .field("units", units.name())?
        .field("block_size_sectors", read.block_size)?
        .field("nr_blocks", nr_blocks)?
        .field("past_current_era", past_current_era)?;
    Ok(())
}

/// Why a listing written as it is read stopped.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    /// The metadata is damaged, or the output cannot say it (see [`Offline::per_block`]).
    #[error(transparent)]
    Metadata(Error),
    /// Writing the output failed.
    #[error("{0}")]
    Io(#[from] io::Error),
}

/// Writes the answer of an offline run on the metadata `view` of `io` to `out` as
/// [`write()`] does, while it is read: the memory taken does not grow with the origin.
/// Nothing is written before the first window of blocks is known intact; damage found
/// later leaves what was written before it (a regular file given as the output is not put
/// in place then). The problems that do not stop it go to `warn` as soon as they are known
/// (see [`list_written_since`]).
pub fn write_while_reading(
    out: &mut dyn Write,
    io: &dyn BlockIo,
    view: &View,
    format: Format,
    units: Units,
    read: &Offline,
    warn: &mut dyn FnMut(Problem),
) -> Result<(), StreamError> {
    let nr_blocks = view.nr_blocks();
    let k = read
        .per_block(units, nr_blocks)
        .map_err(StreamError::Metadata)?;
    let past_current_era = read.since > view.current_era();
    // Formatted on the calling thread: the readers keep the other cores busy, and waking
    // the pool for each window would cost more than it takes over.
    let mut lister = Lister::new(format, k, None, nr_blocks, false);
    let mut begun = false;
    let fields = |o: &mut Object| offline_fields(o, read, units, nr_blocks, past_current_era);
    let mut each = |span: Span| -> io::Result<()> {
        if !begun {
            write_head(out, format, fields)?;
            begun = true;
        }
        lister.span(out, span)
    };
    let outcome = match list_written_since(io, view, read.since, &mut each, warn) {
        Ok(outcome) => outcome,
        Err(ListError::Metadata(e)) => return Err(StreamError::Metadata(e)),
        Err(ListError::Handing(e)) => return Err(StreamError::Io(e)),
    };
    if let Some(at) = outcome.wrapped_at {
        return Err(StreamError::Metadata(wrapped_after_listing(view, at)));
    }
    if !begun {
        write_head(out, format, fields)?;
    }
    write_tail(out, format)?;
    Ok(())
}

/// Writes the answer of a live session (`era_invalidate --live`). Text and JSON ranges end
/// at the end of the origin (the last block may be partial). The JSON object also carries
/// what the next incremental run needs:
///
/// ```text
/// {"written_since":N,"era":E,"next_written_since":X,"snapshot_era":X,"units":"bytes",
///  "block_size_sectors":S,"block_size_bytes":B,"nr_blocks":n,"origin_sectors":o,
///  "origin_bytes":O,"device":"era0","metadata_device":"/dev/vg/meta","checkpoint":true,
///  "snapshot_read":true,"snapshot_root":R,"snapshot_taken":true,"past_current_era":false,
///  ...,"ranges":[...]}
/// ```
///
/// `more` writes further fields before the ranges (`...`).
pub fn write_live(
    out: &mut dyn Write,
    set: &WrittenBlocks,
    format: Format,
    units: Units,
    since: u32,
    info: &SessionInfo,
    more: impl FnOnce(&mut Object) -> io::Result<()>,
) -> io::Result<()> {
    let bs = info.table.block_size;
    // No conversion below overflows: the table was refused when read if its last block
    // ends past 2^64 bytes (`EraTable::from_lines`), and the runs written stop at that
    // block (`Lister` cuts them at `end`).
    let end = (format != Format::Xml).then(|| units.origin_end(info.origin_sectors(), bs));
    let k = units.per_block(bs);
    let mut lister = Lister::new(format, k, end, set.nr_blocks, true);
    write_head(out, format, |o| {
        o.field("written_since", since)?
            .field("era", info.era)?
            .field("next_written_since", info.next_written_since())?
            .field("snapshot_era", info.snapshot_era)?
            .field("units", units.name())?
            .field("block_size_sectors", bs)?
            .field("block_size_bytes", bs as u64 * 512)?
            .field("nr_blocks", set.nr_blocks)?
            .field("origin_sectors", info.origin_sectors())?
            .field("origin_bytes", info.origin_sectors() * 512)?
            .field("device", &info.device)?
            .field("metadata_device", &*info.metadata_dev.to_string_lossy())?
            .field("checkpoint", info.checkpoint)?
            .field("snapshot_read", true)?
            .field("snapshot_root", info.snapshot_root)?
            .field("snapshot_taken", info.snapshot_taken)?
            .field("past_current_era", set.past_current_era)?;
        more(o)
    })?;
    lister.span(out, set.span())?;
    write_tail(out, format)
}

/// Writes what comes before the runs in `format`; `fields` writes the JSON object's fields
/// before its `ranges`.
fn write_head(
    out: &mut dyn Write,
    format: Format,
    fields: impl FnOnce(&mut Object) -> io::Result<()>,
) -> io::Result<()> {
    match format {
        Format::Xml => out.write_all(b"<blocks>"),
        Format::Text => Ok(()),
        Format::Json => {
            let mut o = Object::begin(out)?;
            fields(&mut o)?;
            o.raw("ranges", |w| w.write_all(b"["))?;
            Ok(())
        }
    }
}

/// Writes what comes after the runs in `format`, and flushes.
fn write_tail(out: &mut dyn Write, format: Format) -> io::Result<()> {
    match format {
        Format::Xml => out.write_all(b"\n</blocks>\n")?,
        Format::Text => {}
        Format::Json => out.write_all(b"]}\n")?,
    }
    out.flush()
}

/// Writes the runs of a list handed over a span at a time, in order, `k` units per block,
/// cut at `end` units when given: each run whole, though it may span several spans.
struct Lister {
    format: Format,
    k: u64,
    end: Option<u64>,
    /// Blocks that begin at or after `end` are not written: the blocks below this.
    limit: u64,
    pieces: Pieces,
    piece_blocks: u64,
    /// The start of the run through the end of the last span, not written yet.
    carry: Option<u64>,
    /// No run was written yet (the first has no comma before it in JSON).
    first_due: bool,
}

impl Lister {
    /// A lister of the runs of `nr_blocks` blocks; their text is formatted on every core
    /// with `parallel` (when there are enough), else on the calling thread.
    fn new(format: Format, k: u64, end: Option<u64>, nr_blocks: u64, parallel: bool) -> Lister {
        let (pieces, piece_blocks) = if !parallel || nr_blocks < PARALLEL_BLOCKS {
            (Pieces::serial(), SERIAL_PIECE_BLOCKS)
        } else {
            (Pieces::new(), PIECE_BLOCKS)
        };
        Lister {
            format,
            k,
            end,
            limit: end.map_or(nr_blocks, |e| e.div_ceil(k).min(nr_blocks)),
            pieces,
            piece_blocks,
            carry: None,
            first_due: true,
        }
    }

    /// Writes the runs of `span`, the next stretch of the list; the run through its end is
    /// held back, to be written with the next span, unless the list ends there.
    fn span(&mut self, out: &mut dyn Write, span: Span) -> io::Result<()> {
        let (from, to) = (span.base(), span.end().min(self.limit));
        if from >= to {
            return Ok(());
        }
        let held =
            (to < self.limit && span.contains(to - 1)).then(|| span.last_run_start(self.carry));
        let stop = match held {
            // One run through the whole span.
            Some(h) if h <= from => {
                self.carry = Some(h);
                return Ok(());
            }
            Some(h) => h,
            None => to,
        };
        // Pieces start near every `piece_blocks`, moved on to a block that is not listed,
        // so that no run spans two pieces.
        let mut starts = vec![from];
        let mut at = from + self.piece_blocks;
        while at < stop {
            let start = span.cut_near(at);
            if start >= stop {
                break;
            }
            starts.push(start);
            at = start + self.piece_blocks;
        }
        let carry = self.carry;
        let first = match carry {
            Some(_) => Some(from),
            None => span.runs_in(from, stop, None).next().map(|(b, _)| b),
        };
        let first_piece = first.map(|b| starts.partition_point(|&s| s <= b).saturating_sub(1));
        let first_due = self.first_due;
        let (format, k, end) = (self.format, self.k, self.end);
        self.pieces.write(out, starts.len(), &|i, b| {
            let to = starts.get(i + 1).copied().unwrap_or(stop);
            let runs = span.runs_in(starts[i], to, if i == 0 { carry } else { None });
            let comma = !(first_due && first_piece == Some(i));
            put_runs(b, format, k, runs, end, comma);
        })?;
        if first.is_some() {
            self.first_due = false;
        }
        self.carry = held;
        Ok(())
    }
}

/// Appends `runs` in `format`, `k` units per block, their ends cut at `end` units when
/// given; in JSON the first after a comma when `comma` (the others always). One loop per
/// format: the format is not asked again for every run.
fn put_runs(b: &mut Vec<u8>, format: Format, k: u64, runs: Runs, end: Option<u64>, comma: bool) {
    let units = |(begin, stop): (u64, u64)| {
        let stop = stop * k;
        (begin * k, end.map_or(stop, |e| stop.min(e)))
    };
    match format {
        Format::Xml => {
            for (begin, stop) in runs {
                if stop - begin == 1 {
                    b.extend_from_slice(b"\n  <block block=\"");
                    put_u64(b, begin);
                } else {
                    b.extend_from_slice(b"\n  <range begin=\"");
                    put_u64_pair(b, begin, b"\" end=\"", stop);
                }
                b.extend_from_slice(b"\"/>");
            }
        }
        Format::Text => {
            for run in runs {
                let (from, until) = units(run);
                put_u64_pair(b, from, b" ", until);
                b.push(b'\n');
            }
        }
        Format::Json => {
            for (j, run) in runs.enumerate() {
                let (from, until) = units(run);
                if comma || j > 0 {
                    b.push(b',');
                }
                b.extend_from_slice(b"{\"begin\":");
                put_u64_pair(b, from, b",\"end\":", until);
                b.push(b'}');
            }
        }
    }
}

#[cfg(test)]
// Tests build their fixtures with casts of small, known values.
#[allow(clippy::cast_possible_truncation)]
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
            past_current_era: false,
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
            |_| Ok(()),
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
            |_| Ok(()),
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
            |_| Ok(()),
        )
        .unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "<blocks>\n  <range begin=\"3\" end=\"5\"/>\n</blocks>\n"
        );
    }

    fn outputs(set: &WrittenBlocks) -> Vec<String> {
        let mut all = Vec::new();
        for (format, units) in [
            (Format::Xml, Units::Blocks),
            (Format::Text, Units::Sectors),
            (Format::Json, Units::Bytes),
        ] {
            let mut out = Vec::new();
            write(
                &mut out,
                set,
                format,
                units,
                &Offline {
                    since: 3,
                    block_size: 8,
                    era: 5,
                    snapshot_era: None,
                },
            )
            .unwrap();
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
            "{{\"written_since\":3,\"era\":5,\"next_written_since\":5,\"snapshot_read\":false,\
             \"units\":\"bytes\",\"block_size_sectors\":8,\"nr_blocks\":{},\
             \"past_current_era\":false,\"ranges\":[",
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
        xml += "\n</blocks>\n";
        json += "]}\n";
        vec![xml, text, json]
    }

    /// Blocks of 2^32 − 8 sectors (a multiple of 8, as the superblock check asks) whose
    /// last ones end past 2^64 bytes: refused before a byte is written, in any units that
    /// cannot say it; sectors can.
    #[test]
    fn an_origin_past_two_to_the_sixty_four_bytes_is_refused_in_bytes() {
        let nr = 1u64 << 24;
        let mut words = vec![0u64; (nr / 64) as usize];
        words[(nr / 64) as usize - 1] = 1 << 63;
        let set = WrittenBlocks {
            nr_blocks: nr,
            words,
            warnings: Vec::new(),
            past_current_era: false,
        };
        let read = Offline {
            since: 1,
            block_size: u32::MAX - 7,
            era: 2,
            snapshot_era: None,
        };
        let mut out = Vec::new();
        let e = write(&mut out, &set, Format::Text, Units::Bytes, &read).unwrap_err();
        assert!(e.to_string().contains("end past 2^64 bytes"), "{e}");
        assert!(out.is_empty());
        write(&mut out, &set, Format::Text, Units::Sectors, &read).unwrap();
        let last = (nr - 1) * (u32::MAX as u64 - 7);
        let want = format!("{} {}\n", last, last + u32::MAX as u64 - 7);
        assert_eq!(String::from_utf8(out).unwrap(), want);
    }

    /// Lists formatted on one core and on several: one list either way, with runs across
    /// every piece boundary.
    #[test]
    fn pieces_read_as_one_list() {
        let mut rng = 0x1234_5678_9abc_def0u64;
        for (nr, densities) in [
            (9 * PIECE_BLOCKS + 77, &[0u64, 1, 15, 16][..]),
            (PARALLEL_BLOCKS + 8 * PIECE_BLOCKS + 77, &[0, 15]),
        ] {
            for &density in densities {
                let mut set = WrittenBlocks {
                    nr_blocks: nr,
                    words: vec![0; nr.div_ceil(64) as usize],
                    warnings: Vec::new(),
                    past_current_era: false,
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
                for b in (SERIAL_PIECE_BLOCKS..nr - 3).step_by(SERIAL_PIECE_BLOCKS as usize) {
                    for x in b - 3..b + 3 {
                        set.words[(x / 64) as usize] |= 1 << (x % 64);
                    }
                }
                if density == 0 {
                    set.words.fill(0);
                }
                let last = set.words.len() - 1;
                set.words[last] &= (1u64 << (nr % 64)) - 1;
                assert_eq!(
                    outputs(&set),
                    expected(&set),
                    "{nr} blocks, density {density}"
                );
            }
        }
    }
}

#[cfg(test)]
// Tests build their fixtures with casts of small, known values.
#[allow(clippy::cast_possible_truncation)]
mod streamed {
    use super::*;
    use crate::era::build::{fixed_blocks, EraBuilder};
    use crate::era::invalidate::{written_since, WINDOW_BLOCKS};
    use crate::era::sink::{EraSink, Summary};
    use crate::pdata::io::MemIo;

    /// Metadata of two windows and a bit, in era 5, without writesets: block `b`'s era is
    /// `era(b)`.
    fn metadata(era: impl Fn(u64) -> u32) -> (MemIo, View) {
        let nr_blocks = (WINDOW_BLOCKS * 2 + 100) as u32;
        let io = MemIo::new(fixed_blocks(nr_blocks, 0, 0) * 9 / 8 + 64);
        let mut b = EraBuilder::new(&io, nr_blocks, &[]).unwrap();
        let header = Summary {
            block_size: 8,
            nr_blocks,
            current_era: 5,
        };
        b.superblock_begin(&header).unwrap();
        b.era_array_begin().unwrap();
        let eras: Vec<u32> = (0..u64::from(nr_blocks)).map(era).collect();
        b.eras(&eras).unwrap();
        b.era_array_end().unwrap();
        b.superblock_end().unwrap();
        b.finish().unwrap();
        let view = View::open(&io, false).unwrap();
        (io, view)
    }

    fn read(since: u32) -> Offline {
        Offline {
            since,
            block_size: 8,
            era: 5,
            snapshot_era: None,
        }
    }

    /// What `write_while_reading` writes and returns, and the warnings it gave.
    fn streamed(io: &MemIo, view: &View, format: Format) -> (Vec<u8>, Result<(), String>) {
        let mut out = Vec::new();
        let r = write_while_reading(
            &mut out,
            io,
            view,
            format,
            Units::Blocks,
            &read(2),
            &mut drop,
        );
        (out, r.map_err(|e| e.to_string()))
    }

    #[test]
    fn runs_across_windows_are_written_whole_as_from_the_whole_list() {
        // Runs that end at, start at and span the windows' edges, and a window all listed.
        let w = WINDOW_BLOCKS;
        let (io, view) = metadata(|b| match b {
            _ if (w - 3..w + 5).contains(&b) => 3,
            _ if (w + 40..2 * w + 1).contains(&b) => 4,
            _ => u32::from(b % 3 == 0) * 2,
        });
        let set = written_since(&io, &view, 2).unwrap();
        for format in [Format::Xml, Format::Text, Format::Json] {
            let mut whole = Vec::new();
            write(&mut whole, &set, format, Units::Blocks, &read(2)).unwrap();
            let (out, r) = streamed(&io, &view, format);
            assert_eq!(r, Ok(()));
            assert_eq!(
                String::from_utf8(out).unwrap(),
                String::from_utf8(whole).unwrap()
            );
        }
    }

    #[test]
    fn an_era_above_the_current_one_lists_every_block_or_says_why_it_cannot() {
        // In the first window: nothing written yet, every block listed.
        let (io, view) = metadata(|b| if b == 7 { 9 } else { u32::from(b % 3 == 0) * 2 });
        let (out, r) = streamed(&io, &view, Format::Text);
        assert_eq!(r, Ok(()));
        assert_eq!(
            String::from_utf8(out).unwrap(),
            format!("0 {}\n", view.nr_blocks())
        );
        // Past it: the list has begun, and cannot be taken back.
        let at = WINDOW_BLOCKS + 7;
        let (io, view) = metadata(|b| {
            if b == at {
                9
            } else {
                u32::from(b % 3 == 0) * 2
            }
        });
        let set = written_since(&io, &view, 2).unwrap();
        assert_eq!(set.runs().collect::<Vec<_>>(), [(0, view.nr_blocks())]);
        let (out, r) = streamed(&io, &view, Format::Text);
        let e = r.unwrap_err();
        assert!(e.contains("--written-since 0 lists every block"), "{e}");
        assert!(out.starts_with(b"0 1\n3 4\n"));
    }
}
