//! Errors of rule loading. Every error names the rule file, the line (when known) and what is
//! wrong, because the person reading it is fixing a YAML file, not debugging the engine.

use std::fmt;
use std::path::PathBuf;

/// A rule that could not be parsed or compiled: `file:line: message`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct SigmaError {
    pub file: PathBuf,
    /// 1-based line in the file; `None` when the problem has no single place (e.g. I/O).
    pub line: Option<usize>,
    pub message: String,
}

impl SigmaError {
    pub fn new(file: impl Into<PathBuf>, line: Option<usize>, message: impl Into<String>) -> Self {
        SigmaError {
            file: file.into(),
            line,
            message: message.into(),
        }
    }
}

impl fmt::Display for SigmaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{}: {}", self.file.display(), line, self.message),
            None => write!(f, "{}: {}", self.file.display(), self.message),
        }
    }
}

/// A rule file (or one rule in it) that [`crate::RuleSet::load_dir`] skipped, and why. Loading
/// goes on without it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoadProblem {
    pub file: PathBuf,
    pub line: Option<usize>,
    pub reason: String,
}

impl From<SigmaError> for LoadProblem {
    fn from(e: SigmaError) -> Self {
        LoadProblem {
            file: e.file,
            line: e.line,
            reason: e.message,
        }
    }
}

impl fmt::Display for LoadProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{}: {}", self.file.display(), line, self.reason),
            None => write!(f, "{}: {}", self.file.display(), self.reason),
        }
    }
}
