//! What a run against a live device-mapper target reports when it fails: the device as the
//! user named it and a fault that says what to type with that name; and the one way such a
//! run opens the target's metadata device.

use std::error::Error as StdError;
use std::fmt;
use std::io;
use std::path::PathBuf;

use super::DevId;
use crate::pdata::io::{FileIo, OpenMode};

/// A fault of a run on a device-mapper device.
pub trait DeviceFault: fmt::Debug {
    /// The fault in words; `device` is how commands to type name the device.
    fn describe(&self, f: &mut fmt::Formatter<'_>, device: &str) -> fmt::Result;

    /// The error underneath, if there is one.
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        None
    }
}

/// A run's failure on a device-mapper device, naming the device.
#[derive(Debug)]
pub struct DeviceError<F> {
    /// The device as the user named it.
    pub device: String,
    /// What went wrong.
    pub fault: F,
}

impl<F: DeviceFault> DeviceError<F> {
    /// What went wrong, without the device's name in front (the reporter puts it there).
    pub fn what(&self) -> String {
        struct What<'a, F>(&'a DeviceError<F>);
        impl<F: DeviceFault> fmt::Display for What<'_, F> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fault.describe(f, &self.0.device)
            }
        }
        What(self).to_string()
    }
}

impl<F: DeviceFault> fmt::Display for DeviceError<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ", self.device)?;
        self.fault.describe(f, &self.device)
    }
}

impl<F: DeviceFault> StdError for DeviceError<F> {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.fault.source()
    }
}

/// Why a live target's metadata device could not be opened.
#[derive(Debug)]
pub enum NodeError {
    /// No device node for it.
    NoNode(DevId),
    /// Its node could not be opened.
    Open(PathBuf, io::Error),
}

impl fmt::Display for NodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NodeError::NoNode(dev) => {
                write!(f, "no device node found for the metadata device {dev}")
            }
            NodeError::Open(p, e) => write!(f, "{}: {e}", p.display()),
        }
    }
}

/// Opens the metadata device of a live target by its number: its node, and the device
/// opened shared (the kernel holds it), with `O_DIRECT`.
pub fn open_metadata(dev: DevId) -> Result<(PathBuf, FileIo), NodeError> {
    let path = dev.node().ok_or(NodeError::NoNode(dev))?;
    let io =
        FileIo::open(&path, OpenMode::ReadShared).map_err(|e| NodeError::Open(path.clone(), e))?;
    Ok((path, io))
}
