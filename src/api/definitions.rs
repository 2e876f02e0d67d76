//! Conversions for the definitions RPCs: files in, problems, previews and
//! audit entries out, and the status for rejected definitions.

use chrono_tz::Tz;
use tonic::Status;

use super::convert;
use crate::definitions;
use crate::proto;
use crate::recompute::{DefinitionAudit, Validation};

/// Most problems listed in the message of a rejected update.
const MAX_LISTED: usize = 20;

pub fn files(files: Vec<proto::DefinitionFile>) -> Vec<definitions::DefinitionFile> {
    files.into_iter().map(|f| definitions::DefinitionFile { name: f.name, source: f.source }).collect()
}

pub fn error(e: &definitions::DefinitionError) -> proto::DefinitionError {
    proto::DefinitionError {
        file: e.file.clone(),
        line: e.line,
        column: e.column,
        hook: e.hook.clone().unwrap_or_default(),
        message: e.message.clone(),
    }
}

pub fn validation(v: &Validation, tz: Tz) -> proto::ValidateDefinitionsResponse {
    proto::ValidateDefinitionsResponse {
        valid: v.errors.is_empty(),
        errors: v.errors.iter().map(error).collect(),
        previews: v
            .previews
            .iter()
            .map(|p| proto::DefinitionPreview {
                project_key: p.key.clone(),
                current: Some(convert::figures(&p.current)),
                proposed: Some(convert::figures(&p.proposed)),
                changed_statuses: p.changed_statuses.clone(),
                changed_issue_types: p.changed_issue_types.clone(),
                period: Some(convert::period(&p.period, tz)),
            })
            .collect(),
    }
}

pub fn audit(a: &DefinitionAudit) -> proto::DefinitionAudit {
    proto::DefinitionAudit {
        version: a.version.clone(),
        hash: a.hash.clone(),
        at: Some(convert::timestamp(a.at)),
        origin: a.origin.as_str().to_owned(),
    }
}

/// Rejected definitions: `INVALID_ARGUMENT` listing the problems (each with
/// its file, line and column); `ValidateDefinitions` returns them as data.
pub fn invalid(errors: &[definitions::DefinitionError]) -> Status {
    let mut message = format!("files: the definitions are not valid ({} problem(s)); nothing changed", errors.len());
    for e in errors.iter().take(MAX_LISTED) {
        message.push_str("\n  ");
        message.push_str(&e.to_string());
    }
    Status::invalid_argument(message)
}
