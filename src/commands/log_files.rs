//! What the log tools open: a log or a leg, and the device or image log_restore writes,
//! with the words of the suite's other tools (cli::open).

use std::path::Path;

use crate::cli::open::{open_device, open_writer_output, refuse_unless};
use crate::identify::Content;
use crate::log::format::FORMAT;
use crate::pdata::io::{FileIo, OpenMode};

/// What to do about a device someone holds, for the log tools.
const LOG_BUSY: &str = "deactivate the mirror first (on every cluster node)";

/// Opens a dirty log (or a leg) for reading, or for writing with `OpenMode::Write`.
pub fn open_log(path: &Path, mode: OpenMode) -> anyhow::Result<FileIo> {
    let role = if mode == OpenMode::Write {
        "output"
    } else {
        "input"
    };
    open_device(path, mode, role, LOG_BUSY)
}

/// Opens the log device or image log_restore writes, as the era writers open theirs (a
/// missing one is told to need `need_bytes`), and refuses, unless `force`, anything but
/// zeros and a disk log (whose region count the restore compares).
pub fn open_log_output(
    path: &Path,
    input: &Path,
    need_bytes: u64,
    force: bool,
) -> anyhow::Result<FileIo> {
    let io = open_writer_output(path, input, &mut || {
        format!(
            "an image file must hold at least {need_bytes} bytes (truncate -s {need_bytes} \
             FILE)"
        )
    })?;
    if !force {
        refuse_unless(&io, path, &FORMAT, Content::replaceable_by)?;
    }
    Ok(io)
}
