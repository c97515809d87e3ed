//! Typed errors of the dirty-log library. Each message names the structure at fault; the
//! binaries add the file name in front.

use std::fmt;
use std::io;

/// Everything that can go wrong while reading, checking or rewriting a dirty log.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// An I/O error, with what was being done when it happened. The OS error is not the
    /// error's source: the message already quotes it.
    #[error(fmt = io_error)]
    Io {
        /// What the tool was doing, e.g. "reading the log buffer".
        doing: String,
        /// The OS error.
        error: io::Error,
    },
    /// The device is too short to hold the structure named.
    #[error("{what}: device holds {size} bytes, but {need} bytes are needed")]
    Truncated {
        /// The structure that does not fit ("log header", "clean bitmap", "log buffer").
        what: &'static str,
        /// Bytes from offset 0 the structure needs.
        need: u64,
        /// Bytes the device holds.
        size: u64,
    },
    /// The first four bytes are not the disk log magic.
    #[error(fmt = bad_magic)]
    BadMagic {
        /// The magic as read (little-endian).
        found: u32,
    },
    /// A version other than 1 or 2.
    #[error(
        "log header: unsupported version {found} (expected 2, or 1): the kernel marks such a \
         log failed and resynchronises the whole mirror at every activation"
    )]
    BadVersion {
        /// The version as read.
        found: u32,
    },
    /// `nr_regions` is at least 2^32 and not LVM's all-ones value.
    #[error("log header: nr_regions {found} is not below 2^32 (the kernel would truncate it)")]
    BadNrRegions {
        /// The value as read.
        found: u64,
    },
    /// `nr_regions` is LVM's "initialised, never activated" value and no count was given.
    #[error(
        "log header: nr_regions is all ones (initialised by LVM, never activated); the region \
         count must be given (--nr-regions, or --region-size with --length)"
    )]
    UnknownNrRegions,
    /// `nr_regions` is 0, which no mirror has, and no count was given.
    #[error(
        "log header: nr_regions is 0, which no mirror has; the region count must be given \
         (--nr-regions, or --region-size with --length)"
    )]
    NoRegions,
    /// Region size, length or region count do not describe a valid mirror.
    #[error("mirror geometry: {0}")]
    Geometry(String),
    /// A mirror leg cannot be used.
    #[error("leg {index}: {message}")]
    Leg {
        /// Position of the leg in table order (0 = default mirror).
        index: usize,
        /// The leg's path, as given.
        name: String,
        /// What is wrong.
        message: String,
    },
    /// The XML input of `log_restore` is malformed or inconsistent.
    #[error("{0}")]
    Xml(crate::xml::XmlError),
    /// The log's bytes changed between two reads of one run: what was compared (and saved)
    /// is not what the write would replace.
    #[error(
        "log buffer: changed while this run read it (another writer?); nothing was written to \
         it; make sure nothing else writes to the log, then run again"
    )]
    Changed,
    /// A command-line value (ranges, leg specification) is malformed.
    #[error("{0}")]
    Invalid(String),
    /// The header's `nr_regions` is not the region count of the mirror described by the
    /// region size and length given.
    // No value is suggested: several region sizes and lengths give the same count, and
    // only the mirror's table says which one the mirror has.
    #[error(
        "mirror geometry: the log has {header} regions, but a length of {length} sectors in \
         regions of {region_size} sectors makes {mirror}; {GEOMETRY_SOURCE}"
    )]
    RegionCountMismatch {
        /// `nr_regions` in the header.
        header: u64,
        /// The mirror's region count.
        mirror: u64,
        /// The region size given, in sectors.
        region_size: u64,
        /// The mirror length given, in sectors.
        length: u64,
    },
    /// `--nr-regions` and `--region-size`/`--length` give different region counts.
    #[error("--nr-regions {given} disagrees with --region-size/--length ({geometry} regions)")]
    CountConflict {
        /// The count given directly.
        given: u64,
        /// The count from the region size and length.
        geometry: u64,
    },
    /// The device holds a log for another region count than the one being restored.
    #[error(
        "log header: the device holds a log of {on_device} regions, the XML describes \
         {described}: a dump of another mirror? (--force writes it anyway)"
    )]
    OtherMirror {
        /// `nr_regions` of the log on the device.
        on_device: u64,
        /// `nr_regions` of the log being written.
        described: u64,
    },
    /// `log_repair --undo` refuses to put a backup back onto the log.
    #[error("{0}")]
    Undo(String),
    /// The backup file of `log_repair` cannot be made.
    #[error("backup: {message}")]
    Backup {
        /// The backup file.
        path: std::path::PathBuf,
        /// What is wrong.
        message: String,
    },
}

/// What a [`LogError`] is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Subject<'a> {
    /// The log device or image.
    Log,
    /// A mirror leg, by its path as given.
    Leg(&'a str),
    /// Another file (the backup).
    File(&'a std::path::Path),
}

impl LogError {
    /// The file the error is about: a leg, the backup file, or else the log. The binaries
    /// put its name in front of the message.
    pub fn subject(&self) -> Subject<'_> {
        match self {
            LogError::Leg { name, .. } => Subject::Leg(name),
            LogError::Backup { path, .. } => Subject::File(path),
            _ => Subject::Log,
        }
    }

    /// Wraps an I/O error with what was being done.
    pub fn io(doing: impl Into<String>, error: io::Error) -> LogError {
        LogError::Io {
            doing: doing.into(),
            error,
        }
    }
}

fn io_error(doing: &str, error: &io::Error, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    if error.raw_os_error() == Some(libc::EBUSY) {
        write!(
            f,
            "{doing}: {}; deactivate the mirror first (on every cluster node)",
            crate::dm::IN_USE
        )
    } else {
        write!(f, "{doing}: {error}")
    }
}

fn bad_magic(found: &u32, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    if found.swap_bytes() == super::format::header::MAGIC {
        write!(
            f,
            "log header: magic {found:#010x} is the disk-log magic in big-endian byte order (a \
             clustered-disk log written on a big-endian host?); not supported"
        )
    } else {
        write!(
            f,
            "log header: bad magic {found:#010x} (expected {:#010x} \"MiRr\"): not a dm-log \
             disk log, or never initialised",
            super::format::header::MAGIC
        )
    }
}

/// Refuses a device of `size` bytes for `what`, which needs `need` bytes.
pub fn require_bytes(what: &'static str, need: u64, size: u64) -> Result<(), LogError> {
    match size < need {
        true => Err(LogError::Truncated { what, need, size }),
        false => Ok(()),
    }
}

/// Where the operator reads the mirror's geometry.
pub const GEOMETRY_SOURCE: &str = "take both from the mirror's table: `dmsetup table` (the \
    length is the mirror line's 2nd field, the region size the disk log's 2nd argument) or \
    `lvs --units s -o +regionsize,size`";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn busy_devices_get_a_message_that_says_what_to_do() {
        let e = LogError::io("opening", io::Error::from_raw_os_error(libc::EBUSY));
        assert!(e.to_string().contains("deactivate the mirror"));
    }

    #[test]
    fn a_byte_swapped_magic_is_recognised() {
        let e = LogError::BadMagic {
            found: super::super::format::header::MAGIC.swap_bytes(),
        };
        assert!(e.to_string().contains("big-endian"));
        let e = LogError::BadMagic { found: 0 };
        assert!(e.to_string().contains("bad magic 0x00000000"));
    }
}
