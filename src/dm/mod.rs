//! Talking to device-mapper: the few requests a live session needs (is the device there and
//! resumed, its table, its status, a message, and for a cache a suspend and a resume), behind
//! one trait so that the sessions' logic is tested against mocks.
//!
//! The real implementation ([`ioctl::Control`]) issues the kernel's ioctls on
//! `/dev/mapper/control` itself (`DM_DEV_STATUS`, `DM_TABLE_STATUS`, `DM_TARGET_MSG`), with
//! `libc`, which the crate already uses. The `devicemapper` crate was evaluated and not
//! taken: its `devicemapper-sys` build script generates bindings with `bindgen` from
//! libdevmapper's headers, so it needs `libdevmapper-dev` (found through `pkg-config`) and
//! libclang on the build machine, fails on a fresh one, and brings about 80 crates for three
//! requests. Nor is `dmsetup` run as a fallback: it is a second way to fail (missing binary,
//! locale-dependent output, udev waits) for no gain once the ioctls work.

mod failure;
pub mod ioctl;
#[cfg(test)]
pub mod mock;

pub use failure::{open_metadata, DeviceError, DeviceFault, NodeError};

use std::fmt;
use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

/// What every tool says of a device someone else holds open exclusively (`EBUSY` on an
/// `O_EXCL` open): most often a device-mapper target using it.
pub const IN_USE: &str =
    "in use: held open exclusively (by a live target, an active mirror or a mounted filesystem?)";

/// A block device number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DevId {
    /// Major number.
    pub major: u32,
    /// Minor number.
    pub minor: u32,
}

impl DevId {
    /// The device number of a `stat` result (`st_rdev`).
    pub fn from_rdev(rdev: u64) -> DevId {
        DevId {
            major: libc::major(rdev),
            minor: libc::minor(rdev),
        }
    }

    /// The encoding `stat` and the device-mapper ioctls use.
    pub fn rdev(self) -> u64 {
        libc::makedev(self.major, self.minor)
    }

    /// Parses `MAJOR:MINOR`, as device-mapper prints devices in tables.
    pub fn parse(s: &str) -> Option<DevId> {
        let (a, b) = s.split_once(':')?;
        Some(DevId {
            major: a.parse().ok()?,
            minor: b.parse().ok()?,
        })
    }

    /// The device node of this device: the name the kernel gives it in sysfs, under `/dev`,
    /// checked to be that very device; otherwise the first block device with this number
    /// under `/dev` or `/dev/mapper`.
    pub fn node(self) -> Option<PathBuf> {
        let is_it = |p: &Path| {
            std::fs::metadata(p)
                .is_ok_and(|m| m.file_type().is_block_device() && m.rdev() == self.rdev())
        };
        let uevent = format!("/sys/dev/block/{self}/uevent");
        if let Ok(text) = std::fs::read_to_string(uevent) {
            if let Some(name) = text.lines().find_map(|l| l.strip_prefix("DEVNAME=")) {
                let p = Path::new("/dev").join(name);
                if is_it(&p) {
                    return Some(p);
                }
            }
        }
        ["/dev/mapper", "/dev"].iter().find_map(|dir| {
            std::fs::read_dir(dir)
                .ok()?
                .filter_map(|e| e.ok())
                .map(|e| e.path())
                .find(|p| is_it(p))
        })
    }
}

impl fmt::Display for DevId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.major, self.minor)
    }
}

/// Which device-mapper device a request is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DmDevice {
    /// By name (`dmsetup ls`).
    Name(String),
    /// By device number, from a path such as `/dev/mapper/NAME` or `/dev/dm-3`.
    Dev {
        /// The path given.
        path: PathBuf,
        /// Its device number.
        dev: DevId,
    },
}

impl DmDevice {
    /// A name, or, when `arg` contains a `/`, the block device at that path.
    pub fn parse(arg: &str) -> Result<DmDevice, DmError> {
        if !arg.contains('/') {
            if arg.is_empty() || arg.len() >= ioctl::NAME_LEN {
                return Err(DmError::BadName(arg.to_string()));
            }
            return Ok(DmDevice::Name(arg.to_string()));
        }
        let path = PathBuf::from(arg);
        let meta = std::fs::metadata(&path).map_err(DmError::Path)?;
        if !meta.file_type().is_block_device() {
            return Err(DmError::Path(io::Error::new(
                io::ErrorKind::InvalidInput,
                "not a block device",
            )));
        }
        Ok(DmDevice::Dev {
            path,
            dev: DevId::from_rdev(meta.rdev()),
        })
    }
}

impl fmt::Display for DmDevice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DmDevice::Name(n) => f.write_str(n),
            DmDevice::Dev { path, .. } => write!(f, "{}", path.display()),
        }
    }
}

/// What `DM_DEV_STATUS` says about a device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeviceInfo {
    /// Its device number.
    pub dev: DevId,
    /// Whether it is suspended.
    pub suspended: bool,
    /// Whether it has a live table.
    pub active_table: bool,
    /// Whether a table is loaded but not yet made live: the next resume would make it live.
    pub inactive_table: bool,
    /// Targets in the live table.
    pub target_count: u32,
}

/// One line of a table or of a status: `START LENGTH TYPE PARAMS`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetLine {
    /// First sector.
    pub start: u64,
    /// Length in sectors.
    pub length: u64,
    /// Target type, e.g. `era`.
    pub target_type: String,
    /// The target's own text.
    pub params: String,
}

/// The one line of a table holding one target of type `target_type` at sector 0, or why
/// not (a live session's target numbers its blocks by absolute sector, so it is only
/// meaningful there).
pub fn single_target<'a>(
    lines: &'a [TargetLine],
    target_type: &str,
) -> Result<&'a TargetLine, String> {
    let line = match lines {
        [] => return Err("the device has no table loaded".into()),
        [one] => one,
        more => {
            let types: Vec<&str> = more.iter().map(|l| l.target_type.as_str()).collect();
            return Err(format!(
                "the table has {} targets ({}); expected one {target_type} target",
                more.len(),
                types.join(", ")
            ));
        }
    };
    if line.target_type != target_type {
        return Err(format!(
            "the target is '{}', not '{target_type}'",
            line.target_type
        ));
    }
    if line.start != 0 {
        return Err(format!(
            "the {target_type} target starts at sector {}, not 0",
            line.start
        ));
    }
    Ok(line)
}

/// The requests a live session makes.
pub trait DeviceMapper: Send + Sync {
    /// Whether the device exists, is suspended, has a table.
    fn info(&self, dev: &DmDevice) -> Result<DeviceInfo, DmError>;
    /// The live table (`dmsetup table`).
    fn table(&self, dev: &DmDevice) -> Result<Vec<TargetLine>, DmError>;
    /// The status (`dmsetup status`).
    fn status(&self, dev: &DmDevice) -> Result<Vec<TargetLine>, DmError>;
    /// Sends `message` to the target at `sector` (`dmsetup message`).
    fn message(&self, dev: &DmDevice, sector: u64, message: &str) -> Result<(), DmError>;
    /// Suspends the device (`dmsetup suspend`: in-flight I/O is completed and flushed first).
    fn suspend(&self, dev: &DmDevice) -> Result<(), DmError>;
    /// Resumes the device (`dmsetup resume`).
    fn resume(&self, dev: &DmDevice) -> Result<(), DmError>;
}

/// Why a device-mapper request failed. The OS errors are not sources: the messages quote
/// them.
#[derive(Debug, thiserror::Error)]
pub enum DmError {
    /// `/dev/mapper/control` could not be opened.
    #[error(fmt = control_error)]
    Control(io::Error),
    /// The caller may not use device-mapper (it needs root, or `CAP_SYS_ADMIN`).
    #[error("Permission denied by device-mapper (it needs root, or CAP_SYS_ADMIN)")]
    Permission,
    /// No such device.
    #[error("no such device-mapper device")]
    NoDevice,
    /// A name device-mapper cannot hold.
    #[error("'{0}' is not a device-mapper name")]
    BadName(String),
    /// A path that is not a usable block device.
    #[error("{0}")]
    Path(io::Error),
    /// The kernel refused a request.
    #[error("device-mapper refused {what}: {}", io::Error::from_raw_os_error(*.errno))]
    Request {
        /// What was asked (`table`, `status`, `message 'checkpoint'`).
        what: String,
        /// The error number.
        errno: i32,
    },
    /// The kernel's answer could not be read.
    #[error("unexpected answer from device-mapper: {0}")]
    Malformed(String),
}

/// What is wrong with the control device, with what to do for the two usual causes.
fn control_error(e: &io::Error, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    match e.kind() {
        io::ErrorKind::NotFound => write!(
            f,
            "cannot open {}: {e} (is the dm-mod module loaded?)",
            ioctl::CONTROL
        ),
        io::ErrorKind::PermissionDenied => write!(
            f,
            "Permission denied opening {} (device-mapper needs root)",
            ioctl::CONTROL
        ),
        _ => write!(f, "cannot open {}: {e}", ioctl::CONTROL),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_numbers_parse_and_print_as_tables_show_them() {
        let d = DevId::parse("253:16").unwrap();
        assert_eq!(
            d,
            DevId {
                major: 253,
                minor: 16
            }
        );
        assert_eq!(d.to_string(), "253:16");
        assert_eq!(DevId::from_rdev(d.rdev()), d);
        for bad in ["253", "253:", ":1", "a:1", "1:2:3", "-1:2"] {
            assert_eq!(DevId::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_name_is_a_name_and_a_path_must_be_a_block_device() {
        assert_eq!(
            DmDevice::parse("era0").unwrap(),
            DmDevice::Name("era0".into())
        );
        assert!(matches!(DmDevice::parse(""), Err(DmError::BadName(_))));
        assert!(matches!(
            DmDevice::parse(&"x".repeat(128)),
            Err(DmError::BadName(_))
        ));
        let f = tempfile::NamedTempFile::new().unwrap();
        let e = DmDevice::parse(f.path().to_str().unwrap()).unwrap_err();
        assert!(e.to_string().contains("not a block device"), "{e}");
        assert!(matches!(
            DmDevice::parse("/no/such/device"),
            Err(DmError::Path(_))
        ));
    }

    #[test]
    fn control_errors_say_what_to_do() {
        let e = DmError::Control(io::Error::from(io::ErrorKind::NotFound));
        assert!(e.to_string().contains("dm-mod"), "{e}");
        let e = DmError::Control(io::Error::from(io::ErrorKind::PermissionDenied));
        assert!(e.to_string().contains("needs root"), "{e}");
        let e = DmError::Request {
            what: "message 'take_metadata_snap'".into(),
            errno: libc::EINVAL,
        };
        assert!(e.to_string().contains("Invalid argument"), "{e}");
    }
}
