//! Findings of a walk: each problem with its severity, kept in bounded memory.

use std::collections::HashSet;
use std::fmt;

use super::error::Error;

/// How bad a problem is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// Informational: the metadata is unusual but fine.
    Warning,
    /// Wrong, but nothing that the kernel could lose data over (a leaked block, stray bits,
    /// an under-filled node). Fails a check unless non-fatal errors are ignored.
    NonFatal,
    /// The metadata cannot be trusted.
    Fatal,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Warning => "warning",
            Severity::NonFatal => "non-fatal",
            Severity::Fatal => "error",
        })
    }
}

/// One finding.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Problem {
    /// How bad it is.
    pub severity: Severity,
    /// Where and what.
    pub error: Error,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.severity, self.error)
    }
}

/// How many problems are kept word for word; the rest are only counted, so that a device
/// full of garbage cannot exhaust memory.
pub const MAX_KEPT_PROBLEMS: usize = 1000;

/// The problems found so far.
#[derive(Debug, Default)]
pub struct Problems {
    kept: Vec<Problem>,
    seen: HashSet<Problem>,
    dropped: u64,
    worst: Option<Severity>,
}

impl Problems {
    /// Records a problem; the same problem reported twice (a block shared by two trees) is
    /// kept once.
    pub fn push(&mut self, severity: Severity, error: Error) {
        self.worst = self.worst.max(Some(severity));
        let p = Problem { severity, error };
        if self.seen.contains(&p) {
            return;
        }
        if self.kept.len() < MAX_KEPT_PROBLEMS {
            self.seen.insert(p.clone());
            self.kept.push(p);
        } else {
            self.dropped += 1;
        }
    }

    /// The problems kept, in the order found.
    pub fn kept(&self) -> &[Problem] {
        &self.kept
    }

    /// How many problems were counted but not kept.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// The worst severity seen, if any problem was found.
    pub fn worst(&self) -> Option<Severity> {
        self.worst
    }

    /// The first fatal problem, if any.
    pub fn first_fatal(&self) -> Option<&Problem> {
        self.kept.iter().find(|p| p.severity == Severity::Fatal)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pdata::error::Fault;

    fn problem(i: usize) -> Error {
        Error::structure("era array", Fault::Invalid(format!("problem {i}")))
    }

    #[test]
    fn keeps_each_problem_once_and_counts_past_the_cap() {
        let mut p = Problems::default();
        p.push(Severity::Warning, problem(0));
        p.push(Severity::Warning, problem(0));
        assert_eq!(p.kept().len(), 1);
        for i in 0..MAX_KEPT_PROBLEMS + 5 {
            p.push(Severity::NonFatal, problem(i));
        }
        assert_eq!(p.kept().len(), MAX_KEPT_PROBLEMS);
        assert_eq!(p.dropped(), 6);
        assert_eq!(p.worst(), Some(Severity::NonFatal));
        assert!(p.first_fatal().is_none());
    }
}
