//! The era XML format of thin-provisioning-tools: a byte-exact writer and a single-pass,
//! position-reporting reader whose common lines take a parallel fast path.

pub mod fast;
pub mod read;
pub mod write;
