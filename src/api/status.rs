//! The one place where errors become `tonic::Status`: each error the API
//! can answer with is a typed error below (or a module's own error), and a
//! `From` impl here picks its code. gRPC, gRPC-Web and the JSON mapping
//! (which turns the code into an HTTP status, `json::http_status`) all
//! answer through these.
//!
//! Messages name the bad field or the missing piece and carry no
//! internals: no Jira response, no file system error, no hook message.
//!
//! Must not depend on the handlers (`service`, `json`); only on the errors
//! of the modules it maps.

use thiserror::Error;
use tonic::Status;

use crate::cluster::ClusterError;
use crate::definitions::DefinitionError;
use crate::harvest::{ActivateError, StartError};

/// Most problems listed in the message of rejected definitions.
const MAX_LISTED: usize = 20;

/// A request field the service cannot take (`INVALID_ARGUMENT`).
#[derive(Debug, Error)]
#[error("{field}: {why}")]
pub struct InvalidField {
    pub field: String,
    pub why: String,
}

impl InvalidField {
    pub fn new(field: impl Into<String>, why: impl std::fmt::Display) -> Self {
        Self { field: field.into(), why: why.to_string() }
    }
}

impl From<InvalidField> for Status {
    fn from(e: InvalidField) -> Self {
        Status::invalid_argument(e.to_string())
    }
}

/// A caller refused by `auth`.
#[derive(Debug, Error)]
pub enum AccessError {
    /// No key, a bad key, or a viewer that is missing or malformed
    /// (`UNAUTHENTICATED`).
    #[error("{0}")]
    Unauthenticated(String),
    /// A reader calling an admin method (`PERMISSION_DENIED`).
    #[error("this call needs the admin role, not {0}")]
    NeedsAdmin(&'static str),
    /// The viewer may not browse a requested project (`PERMISSION_DENIED`);
    /// which one, and whether it exists, is not said.
    #[error("the viewer may not browse every requested project")]
    NotBrowsable,
    /// Jira cannot answer the permission question now (`UNAVAILABLE`).
    #[error("{0}")]
    PermissionsUnavailable(&'static str),
}

impl From<AccessError> for Status {
    fn from(e: AccessError) -> Self {
        let message = e.to_string();
        match e {
            AccessError::Unauthenticated(_) => Status::unauthenticated(message),
            AccessError::NeedsAdmin(_) | AccessError::NotBrowsable => Status::permission_denied(message),
            AccessError::PermissionsUnavailable(_) => Status::unavailable(message),
        }
    }
}

/// Something a request names that the service does not have.
#[derive(Debug, Error)]
pub enum Missing {
    /// `NOT_FOUND`.
    #[error("job `{}`: unknown", .0.escape_debug())]
    Job(String),
    /// Neither harvested nor configured (`NOT_FOUND`).
    #[error("project {0}: no data (not harvested or not configured)")]
    Project(String),
    /// Configured, its first harvest not finished: worth a retry
    /// (`UNAVAILABLE`).
    #[error("project {0}: no figures yet, its first harvest has not finished; retry shortly")]
    NotYetHarvested(String),
    /// No issue of the requested projects belongs to the team (`NOT_FOUND`).
    /// The name is the caller's own, but it is not echoed.
    #[error("team: no issue of the requested projects belongs to this team")]
    Team,
}

impl From<Missing> for Status {
    fn from(e: Missing) -> Self {
        let message = e.to_string();
        match e {
            Missing::Job(_) | Missing::Project(_) | Missing::Team => Status::not_found(message),
            Missing::NotYetHarvested(_) => Status::unavailable(message),
        }
    }
}

/// Why the items behind a figure cannot be listed now.
#[derive(Debug, Error)]
pub enum ExplainError {
    /// The project's facts are not in memory: the service restarted and
    /// serves its figures from a snapshot until the project's first refresh
    /// completes (`UNAVAILABLE`).
    #[error(
        "project {0}: the items behind its figures are not in memory since the service restarted; \
         they return after the project's next refresh (its figures are served meanwhile)"
    )]
    DetailsAfterRefresh(String),
    /// A page token read from data that has changed since
    /// (`FAILED_PRECONDITION`).
    #[error("page_token: list changed, start again (the data was refreshed since the first page)")]
    ListChanged,
    /// The definitions in force fail on a project's facts (`INTERNAL`); the
    /// project's refresh job reports where.
    #[error("project {0}: the definitions in force fail on its facts; its last refresh job says where")]
    Classify(String),
}

impl From<ExplainError> for Status {
    fn from(e: ExplainError) -> Self {
        let message = e.to_string();
        match e {
            ExplainError::DetailsAfterRefresh(_) => Status::unavailable(message),
            ExplainError::ListChanged => Status::failed_precondition(message),
            ExplainError::Classify(_) => Status::internal(message),
        }
    }
}

/// A refresh that cannot start. Jira being down is `UNAVAILABLE`, as
/// everywhere; a refresh the configuration rules out is
/// `FAILED_PRECONDITION`.
impl From<StartError> for Status {
    fn from(e: StartError) -> Self {
        let message = e.to_string();
        match e {
            StartError::Projects(_) | StartError::NotLeader => Status::unavailable(message),
            StartError::NoProjects | StartError::NotConfigured(_) => Status::failed_precondition(message),
        }
    }
}

/// A request through the database shared by replicas: the database being
/// unreachable is `UNAVAILABLE` (its own error is logged, not sent); a
/// refresh the configuration rules out is `FAILED_PRECONDITION`.
impl From<ClusterError> for Status {
    fn from(e: ClusterError) -> Self {
        match e {
            ClusterError::NotConfigured(_) => Status::failed_precondition(e.to_string()),
            ClusterError::Unavailable(_) => {
                tracing::warn!(error = %e, "request through the shared database failed");
                Status::unavailable("the shared database is unreachable; retry shortly")
            }
        }
    }
}

/// Definitions updates are switched off (`FAILED_PRECONDITION`).
#[derive(Debug, Error)]
#[error(
    "updating definitions is turned off: set definitions.allow_updates = true in the configuration \
     (ValidateDefinitions works without it)"
)]
pub struct UpdatesOff;

impl From<UpdatesOff> for Status {
    fn from(e: UpdatesOff) -> Self {
        Status::failed_precondition(e.to_string())
    }
}

/// Rejected definitions: `INVALID_ARGUMENT` listing the problems (each with
/// its file, line and column); `ValidateDefinitions` returns them as data.
#[derive(Debug)]
pub struct InvalidDefinitions(pub Vec<DefinitionError>);

impl From<InvalidDefinitions> for Status {
    fn from(InvalidDefinitions(errors): InvalidDefinitions) -> Self {
        let mut message =
            format!("files: the definitions are not valid ({} problem(s)); nothing changed", errors.len());
        for e in errors.iter().take(MAX_LISTED) {
            message.push_str("\n  ");
            message.push_str(&e.to_string());
        }
        Status::invalid_argument(message)
    }
}

/// The files could not be written: `INTERNAL`, without the I/O error
/// (logged instead).
impl From<ActivateError> for Status {
    fn from(e: ActivateError) -> Self {
        tracing::warn!(error = %e, "definitions update failed");
        match e {
            ActivateError::Write(_) => {
                Status::internal("the definitions files could not be written; the previous definitions stay in force")
            }
        }
    }
}

/// What the HTTP/JSON mapping itself refuses, before any handler runs.
#[derive(Debug, Error)]
pub enum TransportError {
    /// A body or query that is not the method's message (`INVALID_ARGUMENT`).
    #[error("{0}")]
    BadRequest(String),
    /// A gRPC call of a method the service does not have (`UNIMPLEMENTED`).
    #[error("no such method")]
    NoSuchMethod,
    /// A path no rule maps (`NOT_FOUND`).
    #[error("no route for {method} {path}")]
    NoRoute { method: String, path: String },
    /// An answer serde could not encode (`INTERNAL`).
    #[error("the answer could not be encoded as JSON")]
    Unencodable,
}

impl From<TransportError> for Status {
    fn from(e: TransportError) -> Self {
        let message = e.to_string();
        match e {
            TransportError::BadRequest(_) => Status::invalid_argument(message),
            TransportError::NoSuchMethod => Status::unimplemented(message),
            TransportError::NoRoute { .. } => Status::not_found(message),
            TransportError::Unencodable => Status::internal(message),
        }
    }
}

/// What the port refuses before any handler runs (`http_guard`), and a
/// protobuf message that does not decode (`codec`).
#[derive(Debug, Error)]
pub enum Refused {
    /// A header block over the limit (`RESOURCE_EXHAUSTED`, HTTP 431).
    #[error("request headers: larger than {0} bytes")]
    HeadersTooLarge(u32),
    /// A `Host` that is not a loopback name while authentication is off
    /// (`PERMISSION_DENIED`).
    #[error(
        "host: without authentication the service answers only requests addressed to a loopback name \
         such as localhost or 127.0.0.1"
    )]
    NotLoopbackHost,
    /// An `Origin` neither the service's own nor allowed (`PERMISSION_DENIED`).
    #[error(
        "origin: requests from web pages of another origin are refused; list the page's origin in \
         http.allowed_origins (DORA_ALLOWED_ORIGINS) to allow it"
    )]
    ForeignOrigin,
    /// A JSON body sent as another content type (`INVALID_ARGUMENT`, HTTP 415).
    #[error("content-type: send the request body as application/json")]
    NotJson,
    /// A protobuf message that does not decode (`INVALID_ARGUMENT`; prost's
    /// own codec says `INTERNAL`, which reads as the service's fault).
    #[error("the message is not valid protobuf: {0}")]
    Undecodable(String),
}

impl From<Refused> for Status {
    fn from(e: Refused) -> Self {
        let message = e.to_string();
        match e {
            Refused::HeadersTooLarge(_) => Status::resource_exhausted(message),
            Refused::NotLoopbackHost | Refused::ForeignOrigin => Status::permission_denied(message),
            Refused::NotJson | Refused::Undecodable(_) => Status::invalid_argument(message),
        }
    }
}

#[cfg(test)]
mod tests {
    use tonic::Code;

    use super::*;
    use crate::jira::{Attempts, JiraError, RequestName};

    fn check(status: impl Into<Status>, code: Code, message: &str) {
        let status = status.into();
        assert_eq!((status.code(), status.message()), (code, message));
    }

    #[test]
    fn jira_being_down_is_unavailable_and_configuration_is_a_precondition() {
        let req = RequestName { method: "GET".into(), path: "/rest/api/3/project/search".into() };
        check(
            StartError::Projects(JiraError::Status { req, status: 503, attempts: Attempts(3) }),
            Code::Unavailable,
            "listing the Jira projects failed: GET /rest/api/3/project/search: HTTP 503 (after 3 attempts)",
        );
        check(StartError::NoProjects, Code::FailedPrecondition, &StartError::NoProjects.to_string());
        check(
            StartError::NotConfigured("OPS".into()),
            Code::FailedPrecondition,
            "project OPS is not in harvest.projects",
        );
    }

    #[test]
    fn each_error_has_its_code() {
        check(InvalidField::new("weeks", "at most 520"), Code::InvalidArgument, "weeks: at most 520");
        check(
            AccessError::Unauthenticated("the API key is not valid".into()),
            Code::Unauthenticated,
            "the API key is not valid",
        );
        check(AccessError::NeedsAdmin("reader"), Code::PermissionDenied, "this call needs the admin role, not reader");
        check(AccessError::NotBrowsable, Code::PermissionDenied, "the viewer may not browse every requested project");
        check(AccessError::PermissionsUnavailable("later"), Code::Unavailable, "later");
        check(Missing::Job("j\n".into()), Code::NotFound, "job `j\\n`: unknown");
        check(
            Missing::NotYetHarvested("OPS".into()),
            Code::Unavailable,
            "project OPS: no figures yet, its first harvest has not finished; retry shortly",
        );
        check(
            ExplainError::ListChanged,
            Code::FailedPrecondition,
            "page_token: list changed, start again (the data was refreshed since the first page)",
        );
        assert_eq!(Status::from(ExplainError::DetailsAfterRefresh("OPS".into())).code(), Code::Unavailable);
        assert_eq!(Status::from(ExplainError::Classify("OPS".into())).code(), Code::Internal);
        check(TransportError::NoSuchMethod, Code::Unimplemented, "no such method");
        check(TransportError::Unencodable, Code::Internal, "the answer could not be encoded as JSON");
        assert_eq!(Status::from(UpdatesOff).code(), Code::FailedPrecondition);
        check(
            ClusterError::NotConfigured("OPS".into()),
            Code::FailedPrecondition,
            "project OPS is not in harvest.projects",
        );
        let down = crate::cluster::DbError::Postgres("error connecting to server: Connection refused".into());
        check(ClusterError::Unavailable(down), Code::Unavailable, "the shared database is unreachable; retry shortly");
    }
}
