//! A failed run's error as the user sees it: about the file it concerns (the log, a leg,
//! the backup), with what to do about the header problems the options can fix.

use std::path::Path;

use crate::cli::open::advice;
use crate::cli::report::file_error;
use crate::log::error::Subject;
use crate::log::format::FORMAT;
use crate::log::LogError;
use crate::pdata::io::ByteIo;

/// `e` about the file it concerns, `log_path` for the log itself (whose content `log` is
/// probed to name what a device without the magic holds).
pub(super) fn explain(log_path: &Path, log: &dyn ByteIo, e: LogError) -> anyhow::Error {
    let hint = match e {
        LogError::BadMagic { .. } => {
            let advice = advice(log, &FORMAT)
                .map(|a| format!("; {a}"))
                .unwrap_or_default();
            format!("{advice}; --force repairs it anyway")
        }
        LogError::BadVersion { .. } => {
            "; fix it first with --rewrite-header (or --force-resync)".into()
        }
        LogError::RegionCountMismatch { .. } => " (if the header's count is what is wrong, \
            rewrite it with --rewrite-header --nr-regions N)"
            .into(),
        _ => String::new(),
    };
    match e.subject() {
        Subject::Log => file_error(log_path, format!("{e}{hint}")),
        Subject::Leg(name) => file_error(name, format!("{e}{hint}")),
        Subject::File(path) => file_error(path, format!("{e}{hint}")),
    }
}
