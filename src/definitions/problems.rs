//! The definitions files and what can be wrong with them: located
//! problems, and why a definitions folder could not be loaded.
//!
//! Must not depend on anything else of the service.

use std::fmt;
use std::path::PathBuf;

use thiserror::Error;

/// One definitions file: its name (as shown in diagnostics) and its source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DefinitionFile {
    pub name: String,
    pub source: String,
}

/// A problem with the definitions, located as precisely as possible:
/// `line` and `column` are 1-based, 0 when not known; `file` is empty for
/// problems of the set as a whole (such as a hook no file defines).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DefinitionError {
    pub file: String,
    pub line: u32,
    pub column: u32,
    /// The hook concerned, if any.
    pub hook: Option<String>,
    pub message: String,
}

impl fmt::Display for DefinitionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.file.is_empty() {
            f.write_str(&self.file)?;
            if self.line > 0 {
                write!(f, ":{}", self.line)?;
                if self.column > 0 {
                    write!(f, ":{}", self.column)?;
                }
            }
            f.write_str(": ")?;
        }
        if let Some(hook) = &self.hook {
            write!(f, "hook {hook}: ")?;
        }
        f.write_str(&self.message)
    }
}

impl std::error::Error for DefinitionError {}

/// Why a definitions directory could not be loaded.
#[derive(Debug, Error)]
pub enum DefinitionsLoadError {
    #[error("cannot read the definitions directory {}: {source}", path.display())]
    ReadDir { path: PathBuf, source: std::io::Error },
    #[error("cannot read the definitions file {}: {source}", path.display())]
    ReadFile { path: PathBuf, source: std::io::Error },
    #[error("the definitions directory {} holds no *.rhai files", path.display())]
    NoFiles { path: PathBuf },
    #[error("{}", list(.0))]
    Invalid(Vec<DefinitionError>),
}

fn list(errors: &[DefinitionError]) -> String {
    let mut text = match errors.len() {
        1 => "1 problem in the definitions:".to_owned(),
        n => format!("{n} problems in the definitions:"),
    };
    for e in errors {
        text.push_str("\n  ");
        text.push_str(&e.to_string());
    }
    text
}
