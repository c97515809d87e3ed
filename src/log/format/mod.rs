//! The dm-log disk dirty log's on-disk format (docs/dirty-log-format.md): the header, the
//! clean bitmap, and the sizes that follow from a log's geometry. The tools built on it
//! live beside this module, in [`crate::log`].

pub mod bitmap;
pub mod geometry;
pub mod header;

use byteorder::{ByteOrder, LittleEndian as LE};

use crate::identify::{Format, State};
use header::MAGIC;

/// The first 8 bytes of the header an undo writes over the log while it puts the log's
/// bits back; bytes 8..16 are the crc32c of the bytes it puts back and the record's
/// `new_crc` (little-endian), naming the backup. The kernel knows no such magic: it trusts
/// no bit of the log (it resynchronises the whole mirror at the next activation, and writes
/// its own header then), and every reader names the log as an interrupted undo.
pub const UNDO_IN_PROGRESS: &[u8; 8] = b"LOGUNDO\0";

/// The dm-log disk dirty log, as identification and the writers' refusals speak of it.
pub static FORMAT: Format = Format {
    name: "a disk log",
    held: "a dm-log disk log (a mirror's region log)",
    held_unfinished: "a disk log left half-written by an interrupted log_repair --undo",
    called: "a mirror's disk log",
    reader: "log_dump",
    absent: "no disk log here",
    unfinished_advice: "an interrupted log_repair --undo left this log half-written: run the \
                        same --undo again",
    rewrites_unfinished: false,
    recognise,
};

/// The header of our interrupted undo, or the log's magic.
fn recognise(head: &[u8]) -> Option<State> {
    if head.starts_with(UNDO_IN_PROGRESS) {
        return Some(State::Unfinished);
    }
    (head.get(..4).map(LE::read_u32) == Some(MAGIC)).then_some(State::Intact)
}
