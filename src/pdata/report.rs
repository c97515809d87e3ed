//! Findings of a walk: each problem with its severity, kept in bounded memory.

use std::collections::HashSet;
use std::fmt;

use super::error::Error;

/// How bad a finding is. One scale for every tool of the suite.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// Unusual but fine: worth knowing, nothing to do (a node under one-third full, an old
    /// log version the kernel rewrites).
    Note,
    /// Wrong, but nothing the kernel could lose data over (a leaked block, stray bits, a
    /// log whose region count makes the kernel resynchronise everything). era_check fails
    /// on it unless non-fatal errors are ignored.
    Warning,
    /// The data cannot be trusted.
    Error,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Note => "note",
            Severity::Warning => "warning",
            Severity::Error => "error",
        })
    }
}

/// One finding: how bad, where and what, and what to do about it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Problem {
    /// How bad it is.
    pub severity: Severity,
    /// Where (the structure and block) and what.
    pub error: Error,
    /// What to do about it, when there is something to say.
    pub hint: Option<String>,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.severity, self.error)?;
        match &self.hint {
            Some(h) => write!(f, "; {h}"),
            None => Ok(()),
        }
    }
}

/// `n` and `noun`, in the plural unless `n` is 1: "1 block", "2 blocks", "3 entries".
pub fn plural(n: u64, noun: &str) -> String {
    if n == 1 {
        return format!("1 {noun}");
    }
    let b = noun.as_bytes();
    let consonant_y = b.len() >= 2 && b[b.len() - 1] == b'y' && !b"aeiou".contains(&b[b.len() - 2]);
    if consonant_y {
        format!("{n} {}ies", &noun[..noun.len() - 1])
    } else if noun.ends_with('s') || noun.ends_with('x') || noun.ends_with("ch") {
        format!("{n} {noun}es")
    } else {
        format!("{n} {noun}s")
    }
}

impl crate::json::ToJson for Problem {
    /// `{"severity":…,"structure":…,"block":N|null,"block_kind":…|null,"message":…,
    /// "hint":…|null}`.
    fn write_json(&self, out: &mut dyn std::io::Write) -> std::io::Result<()> {
        let e = &self.error;
        crate::json::Object::begin(out)?
            .field("severity", self.severity.to_string())?
            .field("structure", &e.structure)?
            .field("block", e.at.map(|(_, loc)| loc))?
            .field("block_kind", e.at.map(|(kind, _)| kind.to_string()))?
            .field("message", e.fault.to_string())?
            .field("hint", &self.hint)?
            .end()
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
        self.push_problem(Problem {
            severity,
            error,
            hint: None,
        });
    }

    /// Records a finding with what to do about it.
    pub fn push_problem(&mut self, p: Problem) {
        self.worst = self.worst.max(Some(p.severity));
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

    /// Records the problems of `later` (another walk's, found after these), as if
    /// they had been reported here.
    pub fn append(&mut self, later: Problems) {
        for p in later.kept {
            self.push_problem(p);
        }
        self.dropped += later.dropped;
        self.worst = self.worst.max(later.worst);
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

    /// These findings as a salvage reports them: what was lost was replaced (a salvaged
    /// output is complete), so no finding is an error any more: errors become warnings.
    pub fn salvaged(self) -> Problems {
        let mut out = Problems::default();
        for mut p in self.kept {
            p.severity = p.severity.min(Severity::Warning);
            out.push_problem(p);
        }
        out.dropped = self.dropped;
        out.worst = self.worst.map(|w| w.min(Severity::Warning));
        out
    }

    /// The first fatal problem, if any.
    pub fn first_fatal(&self) -> Option<&Problem> {
        self.kept.iter().find(|p| p.severity == Severity::Error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pdata::error::Fault;

    fn problem(i: usize) -> Error {
        Error::structure("array", Fault::Invalid(format!("problem {i}")))
    }

    #[test]
    fn plurals_are_right() {
        assert_eq!(plural(1, "block"), "1 block");
        assert_eq!(plural(0, "block"), "0 blocks");
        assert_eq!(plural(2, "entry"), "2 entries");
        assert_eq!(plural(3, "day"), "3 days");
        assert_eq!(plural(2, "pass"), "2 passes");
    }

    #[test]
    fn keeps_each_problem_once_and_counts_past_the_cap() {
        let mut p = Problems::default();
        p.push(Severity::Note, problem(0));
        p.push(Severity::Note, problem(0));
        assert_eq!(p.kept().len(), 1);
        for i in 0..MAX_KEPT_PROBLEMS + 5 {
            p.push(Severity::Warning, problem(i));
        }
        assert_eq!(p.kept().len(), MAX_KEPT_PROBLEMS);
        assert_eq!(p.dropped(), 6);
        assert_eq!(p.worst(), Some(Severity::Warning));
        assert!(p.first_fatal().is_none());
    }

    #[test]
    fn a_salvage_reports_its_errors_as_warnings_and_keeps_the_rest() {
        let mut p = Problems::default();
        p.push(Severity::Error, problem(1));
        p.push(Severity::Note, problem(2));
        let s = p.salvaged();
        let severities: Vec<Severity> = s.kept().iter().map(|p| p.severity).collect();
        assert_eq!(severities, [Severity::Warning, Severity::Note]);
        assert_eq!(s.worst(), Some(Severity::Warning));
        assert!(s.first_fatal().is_none());
        assert_eq!(s.kept()[0].error, problem(1));
    }
}
