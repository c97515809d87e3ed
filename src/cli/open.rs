//! Opening what a tool reads and writes, with the messages scripts grep for, and a look at
//! what a device holds before a writer writes over it.

use std::io;
use std::os::unix::fs::FileTypeExt;
use std::path::Path;

use anyhow::{anyhow, bail};

use crate::era::superblock::{Superblock, SUPERBLOCK_LOCATION};
use crate::identify::{probe, Content, Family};
use crate::pdata::error::Fault;
use crate::pdata::io::{same_file, BlockIo, ByteIo, FileIo, OpenMode};

/// Opens a binary metadata input the way the era tools do, with the messages scripts grep
/// for: a missing file, a file of the wrong type, a file too small to be metadata, and XML
/// given where binary metadata was expected. When block 0 is not a dm-era superblock but
/// something we can name (zeros, a disk log, a filesystem, an interrupted restore), the
/// error says what it is.
pub fn open_era_input(path: &Path, mode: OpenMode) -> anyhow::Result<FileIo> {
    let meta = std::fs::metadata(path)
        .map_err(|_| anyhow!("Couldn't find input file '{}'", path.display()))?;
    let ft = meta.file_type();
    if !ft.is_file() && !ft.is_block_device() {
        bail!("Not a block device or regular file '{}'.", path.display());
    }
    let io = FileIo::open(path, mode).map_err(|e| open_error(path, e))?;
    let head = if io.nr_blocks() > 0 {
        io.read_new(SUPERBLOCK_LOCATION)
            .map_err(|e| anyhow!("{}: read error in block 0: {e}", path.display()))?
            .to_vec()
    } else {
        std::fs::read(path).unwrap_or_default()
    };
    if looks_like_xml(&head) {
        bail!("This looks like XML.  This tool only supports the binary metadata format.");
    }
    if io.nr_blocks() == 0 {
        bail!("Metadata device/file too small.  Is this binary metadata?");
    }
    if let Err(fault) = Superblock::parse(&head, SUPERBLOCK_LOCATION) {
        let found = probe(&io).unwrap_or(Content::Unknown);
        if let Some(advice) = found.advice(Family::Era) {
            let what = match fault {
                Fault::BadChecksum => "bad checksum in superblock".to_string(),
                other => other.to_string(),
            };
            bail!(
                "{}: superblock at block 0: {what}; {advice}",
                path.display()
            );
        }
    }
    Ok(io)
}

/// Opens the device or file a tool writes metadata to, with the messages scripts grep for:
/// it must already exist, be a regular file or a block device, not be the input, and not
/// be held open by anyone else (block devices are opened with `O_EXCL`). What it holds is
/// checked with [`check_target`].
pub fn open_era_output(path: &Path, input: &Path, force: bool) -> anyhow::Result<FileIo> {
    let meta = std::fs::metadata(path)
        .map_err(|_| anyhow!("Couldn't find output file '{}'", path.display()))?;
    let ft = meta.file_type();
    if !ft.is_file() && !ft.is_block_device() {
        bail!("Not a block device or regular file '{}'.", path.display());
    }
    refuse_input_as_output(path, input)?;
    let io = FileIo::open(path, OpenMode::Write).map_err(|e| {
        if e.raw_os_error() == Some(libc::EBUSY) {
            anyhow!(
                "{} is in use (is a live target holding it?); refusing to write to it",
                path.display()
            )
        } else {
            anyhow!("{}: {e}", path.display())
        }
    })?;
    check_target(&io, path, Family::Era, force)?;
    Ok(io)
}

/// Refuses to write `family`'s format over a device that holds something else we can name
/// (a filesystem, LVM, LUKS, swap, a partition table, the other format), unless `force`.
/// Zeros, the writer's own format and unrecognised bytes (damage) are written over.
pub fn check_target(
    io: &dyn ByteIo,
    path: &Path,
    family: Family,
    force: bool,
) -> anyhow::Result<()> {
    let found = probe(io).map_err(|e| anyhow!("{}: reading what it holds: {e}", path.display()))?;
    if force || found.writable_by(family) {
        return Ok(());
    }
    let what = match family {
        Family::Era => "dm-era metadata",
        Family::Log => "a disk log",
    };
    bail!(
        "{}: holds {found}; refusing to write {what} over it (check the device name; --force \
         writes anyway)",
        path.display()
    )
}

/// What to tell a reader of `family` about a device that does not hold its format, when
/// the device holds something we can name.
pub fn advice(io: &dyn ByteIo, family: Family) -> Option<String> {
    probe(io).ok()?.advice(family)
}

/// Refuses an output that is the input (the same file, a hard link, a symlink, or another
/// node of the same block device).
pub fn refuse_input_as_output(output: &Path, input: &Path) -> anyhow::Result<()> {
    if same_file(output, input) {
        bail!(
            "the output '{}' is the input; write to another device or file",
            output.display()
        );
    }
    Ok(())
}

fn open_error(path: &Path, e: io::Error) -> anyhow::Error {
    if e.raw_os_error() == Some(libc::EBUSY) {
        anyhow!(
            "{} is in use (is a live target holding it?); read its held metadata snapshot \
             with --metadata-snap instead",
            path.display()
        )
    } else {
        anyhow!("{}: {e}", path.display())
    }
}

/// Whether a file starts like XML (after optional white space): `<` and then a name, `?` or
/// `!`.
pub fn looks_like_xml(head: &[u8]) -> bool {
    let mut bytes = head.iter().skip_while(|b| b.is_ascii_whitespace());
    bytes.next() == Some(&b'<')
        && bytes
            .next()
            .is_some_and(|b| b.is_ascii_alphabetic() || *b == b'?' || *b == b'!')
}
