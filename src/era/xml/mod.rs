//! The era XML format of thin-provisioning-tools: a byte-exact writer and a streaming,
//! position-reporting reader.

pub mod read;
pub mod write;
