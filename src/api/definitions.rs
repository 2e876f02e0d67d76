//! Conversions for the definitions RPCs: files in, problems, previews and
//! audit entries out.
//!
//! Pure conversions: must not depend on the store or do any I/O.

use chrono_tz::Tz;

use super::convert;
use crate::definitions;
use crate::harvest::{DefinitionAudit, Validation};
use crate::proto;

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
