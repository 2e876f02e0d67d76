//! Who is calling, what may they do, and which projects may their viewer
//! see. Every handler calls [`Access::authorize`] first with the request's
//! metadata, so every transport that builds a `tonic::Request` (gRPC, and
//! gateways that forward HTTP headers as metadata) gets the same checks.
//!
//! - The caller: an API key in `authorization: Bearer <key>`, compared by
//!   SHA-256 in constant time with the configured hashes; missing or wrong
//!   is `UNAUTHENTICATED`, a role without the right is `PERMISSION_DENIED`.
//! - The viewer: `x-jira-authorization` (the viewer's own Jira
//!   `Authorization` value) or, for trusted gateways, `x-jira-account-id`.
//!   A `viewer-gateway` must forward one on every call; `service` and `admin`
//!   callers may, and then the viewer's permissions apply to them too.
//! - Project visibility: Browse Projects per viewer and project, asked of
//!   Jira through [`PermissionChecker`] and cached briefly by a hash of the
//!   credential. A failed check denies (`UNAVAILABLE`), it never allows.
//!
//! With authentication off (the loopback demo) everything is open.
//! Refusals are [`AccessError`]s (their codes are chosen in `status`); they
//! carry no credential, no Jira response and no internal detail.
//!
//! Must not depend on `harvest` or `store`; it asks Jira only through
//! `permission`.

use std::sync::Arc;

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tokio::time::Instant;
use tonic::metadata::MetadataMap;
use tracing::{debug, warn};

use super::permission::{PermissionCache, PermissionChecker, PermissionError};
use super::status::AccessError;
use crate::config::{ApiKey, AuthSettings, PermissionMode, Role, Secret};

/// Metadata key of the caller's API key.
pub const AUTHORIZATION: &str = "authorization";
/// Metadata key of the viewer's Jira credential.
pub const VIEWER_AUTHORIZATION: &str = "x-jira-authorization";
/// Metadata key of the viewer's Jira account id.
pub const VIEWER_ACCOUNT_ID: &str = "x-jira-account-id";

/// Longest accepted API key.
const MAX_KEY_LEN: usize = 512;
/// Longest accepted viewer credential (OAuth tokens are long).
const MAX_VIEWER_CREDENTIAL_LEN: usize = 8192;
/// Longest accepted account id.
const MAX_ACCOUNT_ID_LEN: usize = 128;

/// What a call needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Right {
    /// Read figures, projects, definitions and refresh jobs.
    Read,
    /// Start refreshes, validate or change definitions.
    Admin,
}

/// On whose behalf figures are shown.
#[derive(Clone)]
enum Viewer {
    Credential(Secret),
    Account(String),
}

/// An authorised caller.
#[derive(Clone)]
pub struct Caller {
    /// `None` when authentication is off.
    pub role: Option<Role>,
    viewer: Option<Viewer>,
}

impl Caller {
    /// True when project visibility is checked for this caller.
    pub fn has_viewer(&self) -> bool {
        self.viewer.is_some()
    }
}

impl std::fmt::Debug for Caller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let viewer = match &self.viewer {
            None => "none",
            Some(Viewer::Credential(_)) => "credential",
            Some(Viewer::Account(_)) => "account id",
        };
        f.debug_struct("Caller").field("role", &self.role).field("viewer", &viewer).finish()
    }
}

/// The service's access rules.
pub struct Access {
    enabled: bool,
    keys: Vec<ApiKey>,
    mode: PermissionMode,
    checker: Option<Arc<dyn PermissionChecker>>,
    cache: PermissionCache,
}

impl std::fmt::Debug for Access {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Access")
            .field("enabled", &self.enabled)
            .field("keys", &self.keys.len())
            .field("mode", &self.mode)
            .finish_non_exhaustive()
    }
}

fn unauthenticated(why: &str) -> AccessError {
    AccessError::Unauthenticated(why.to_owned())
}

/// A metadata value as visible ASCII, trimmed; `None` when absent.
fn text<'a>(md: &'a MetadataMap, key: &str) -> Result<Option<&'a str>, ()> {
    match md.get(key) {
        None => Ok(None),
        Some(v) => v.to_str().map(|s| Some(s.trim())).map_err(|_| ()),
    }
}

/// The token of `Bearer <token>` (scheme case-insensitive).
fn bearer(value: &str) -> Option<&str> {
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim()).filter(|t| !t.is_empty())
}

impl Access {
    /// Everything open: authentication off.
    pub fn open() -> Self {
        Self::new(&AuthSettings::default(), None)
    }

    /// The configured rules; `checker` answers permission questions.
    pub fn new(settings: &AuthSettings, checker: Option<Arc<dyn PermissionChecker>>) -> Self {
        Self {
            enabled: settings.enabled,
            keys: settings.keys.clone(),
            mode: settings.permission_mode,
            checker,
            cache: PermissionCache::new(settings.permission_cache),
        }
    }

    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// The caller's role from its API key (`None` when authentication is
    /// off).
    pub fn authenticate(&self, md: &MetadataMap) -> Result<Option<Role>, AccessError> {
        if !self.enabled {
            return Ok(None);
        }
        let header = text(md, AUTHORIZATION).map_err(|_| unauthenticated("the API key is not valid"))?;
        let Some(header) = header else {
            return Err(unauthenticated("an API key is required: send metadata `authorization: Bearer <key>`"));
        };
        let key = bearer(header)
            .filter(|k| k.len() <= MAX_KEY_LEN)
            .ok_or_else(|| unauthenticated("the API key is not valid"))?;
        let presented: [u8; 32] = Sha256::digest(key.as_bytes()).into();
        // Compare with every key, without stopping at a match.
        let mut role = None;
        for k in &self.keys {
            if bool::from(presented.ct_eq(&k.sha256)) {
                role = Some(k.role);
            }
        }
        match role {
            Some(r) => Ok(Some(r)),
            None => {
                debug!("api key refused");
                Err(unauthenticated("the API key is not valid"))
            }
        }
    }

    /// Authenticates the caller, checks its role has `right`, and reads the
    /// viewer it forwards.
    pub fn authorize(&self, md: &MetadataMap, right: Right) -> Result<Caller, AccessError> {
        let role = self.authenticate(md)?;
        let Some(role) = role else {
            return Ok(Caller { role: None, viewer: None });
        };
        if right == Right::Admin && role != Role::Admin {
            return Err(AccessError::NeedsAdmin(role.name()));
        }
        let viewer = self.viewer(md)?;
        if viewer.is_none() && role == Role::ViewerGateway {
            let header = match self.mode {
                PermissionMode::ViewerCredential => VIEWER_AUTHORIZATION,
                PermissionMode::AccountId => VIEWER_ACCOUNT_ID,
            };
            return Err(unauthenticated(&format!("a viewer-gateway must forward the viewer in metadata `{header}`")));
        }
        Ok(Caller { role: Some(role), viewer })
    }

    fn viewer(&self, md: &MetadataMap) -> Result<Option<Viewer>, AccessError> {
        let credential = text(md, VIEWER_AUTHORIZATION);
        let account = text(md, VIEWER_ACCOUNT_ID);
        match self.mode {
            PermissionMode::ViewerCredential => {
                if !matches!(account, Ok(None)) {
                    return Err(unauthenticated(
                        "this service identifies viewers by `x-jira-authorization`, not by account id",
                    ));
                }
                let bad = || unauthenticated("`x-jira-authorization` must hold `Bearer <token>` or `Basic <base64>`");
                let Some(value) = credential.map_err(|_| bad())? else { return Ok(None) };
                let (scheme, rest) = value.split_once(' ').ok_or_else(bad)?;
                let ok_scheme = scheme.eq_ignore_ascii_case("bearer") || scheme.eq_ignore_ascii_case("basic");
                if !ok_scheme || rest.trim().is_empty() || value.len() > MAX_VIEWER_CREDENTIAL_LEN {
                    return Err(bad());
                }
                Ok(Some(Viewer::Credential(Secret::new(value))))
            }
            PermissionMode::AccountId => {
                if !matches!(credential, Ok(None)) {
                    return Err(unauthenticated(
                        "this service identifies viewers by `x-jira-account-id`, not by credential",
                    ));
                }
                let bad = || unauthenticated("`x-jira-account-id` is not a Jira account id");
                let Some(id) = account.map_err(|_| bad())? else { return Ok(None) };
                let valid = !id.is_empty()
                    && id.len() <= MAX_ACCOUNT_ID_LEN
                    && id.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, ':' | '-' | '_'));
                if !valid {
                    return Err(bad());
                }
                Ok(Some(Viewer::Account(id.to_owned())))
            }
        }
    }

    /// For each project, whether the caller's viewer may browse it (all
    /// true without a viewer). Jira failures deny the whole call.
    pub async fn browsable(&self, caller: &Caller, projects: &[String]) -> Result<Vec<bool>, AccessError> {
        let Some(viewer) = &caller.viewer else { return Ok(vec![true; projects.len()]) };
        let checker =
            self.checker.as_ref().ok_or(AccessError::PermissionsUnavailable("viewer permissions cannot be checked"))?;
        let (kind, identity) = match viewer {
            Viewer::Credential(s) => ("viewer", s.expose()),
            Viewer::Account(a) => ("account", a.as_str()),
        };
        let keys: Vec<[u8; 32]> = projects.iter().map(|p| PermissionCache::key(kind, identity, p)).collect();
        let now = Instant::now();
        let mut answers: Vec<Option<bool>> = keys.iter().map(|k| self.cache.get(k, now)).collect();
        let missing: Vec<usize> = (0..projects.len()).filter(|&i| answers[i].is_none()).collect();
        if missing.is_empty() {
            return Ok(answers.into_iter().map(|a| a == Some(true)).collect());
        }
        let fetched: Result<Vec<(usize, bool)>, PermissionError> = match viewer {
            Viewer::Credential(credential) => {
                let mut set = tokio::task::JoinSet::new();
                for &i in &missing {
                    let (checker, credential, project) = (Arc::clone(checker), credential.clone(), projects[i].clone());
                    set.spawn(async move { (i, checker.viewer_can_browse(&credential, &project).await) });
                }
                let mut out = Ok(Vec::with_capacity(missing.len()));
                while let Some(joined) = set.join_next().await {
                    let result = match joined {
                        Ok((i, r)) => r.map(|yes| (i, yes)),
                        Err(_) => Err(PermissionError::Unavailable("a permission check task failed".into())),
                    };
                    match (&mut out, result) {
                        (Ok(v), Ok(a)) => v.push(a),
                        (Ok(_), Err(e)) => {
                            out = Err(e);
                            set.abort_all();
                        }
                        (Err(_), _) => {}
                    }
                }
                out
            }
            Viewer::Account(account) => {
                let asked: Vec<String> = missing.iter().map(|&i| projects[i].clone()).collect();
                checker.account_can_browse(account, &asked).await.map(|yes| missing.iter().copied().zip(yes).collect())
            }
        };
        let fetched = fetched.map_err(|e| match e {
            PermissionError::ViewerRejected => unauthenticated("Jira does not accept the viewer's credential"),
            PermissionError::Unavailable(reason) => {
                warn!(error = %reason, "permission check failed; denying");
                AccessError::PermissionsUnavailable("the viewer's permissions cannot be checked now; try again later")
            }
        })?;
        let now = Instant::now();
        for (i, yes) in fetched {
            self.cache.put(keys[i], yes, now);
            answers[i] = Some(yes);
        }
        Ok(answers.into_iter().map(|a| a == Some(true)).collect())
    }

    /// `PERMISSION_DENIED` unless the caller's viewer may browse every one
    /// of `projects`. The status does not say which, nor whether it exists.
    pub async fn require_browse(&self, caller: &Caller, projects: &[String]) -> Result<(), AccessError> {
        let allowed = self.browsable(caller, projects).await?;
        if allowed.iter().all(|a| *a) {
            Ok(())
        } else {
            debug!(denied = allowed.iter().filter(|a| !**a).count(), "viewer may not browse a requested project");
            Err(AccessError::NotBrowsable)
        }
    }

    /// Number of cached permission answers.
    pub fn cached_answers(&self) -> usize {
        self.cache.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use tonic::Code;

    fn hash(key: &str) -> [u8; 32] {
        Sha256::digest(key.as_bytes()).into()
    }

    fn access(mode: PermissionMode) -> Access {
        let settings = AuthSettings {
            enabled: true,
            keys: vec![
                ApiKey { sha256: hash("admin-key"), role: Role::Admin },
                ApiKey { sha256: hash("gateway-key"), role: Role::ViewerGateway },
                ApiKey { sha256: hash("service-key"), role: Role::Service },
            ],
            permission_mode: mode,
            permission_cache: Duration::from_secs(60),
        };
        Access::new(&settings, None)
    }

    fn md(pairs: &[(&'static str, &str)]) -> MetadataMap {
        let mut m = MetadataMap::new();
        for (k, v) in pairs {
            m.insert(*k, v.parse().unwrap());
        }
        m
    }

    fn check(a: &Access, pairs: &[(&'static str, &str)], right: Right, expected: Result<Option<Role>, Code>) {
        let got = a.authorize(&md(pairs), right).map(|c| c.role).map_err(|e| tonic::Status::from(e).code());
        assert_eq!(got, expected, "{pairs:?} {right:?}");
    }

    #[test]
    fn keys_roles_and_viewers_decide_each_call() {
        let a = access(PermissionMode::ViewerCredential);
        let viewer = ("x-jira-authorization", "Bearer viewer-token");
        use Right::*;
        check(&a, &[], Read, Err(Code::Unauthenticated));
        check(&a, &[("authorization", "Bearer nope")], Read, Err(Code::Unauthenticated));
        check(&a, &[("authorization", "Basic admin-key")], Read, Err(Code::Unauthenticated));
        check(&a, &[("authorization", "admin-key")], Read, Err(Code::Unauthenticated));
        check(&a, &[("authorization", "Bearer admin-key")], Admin, Ok(Some(Role::Admin)));
        check(&a, &[("authorization", "bearer admin-key")], Read, Ok(Some(Role::Admin)));
        check(&a, &[("authorization", "Bearer service-key")], Read, Ok(Some(Role::Service)));
        check(&a, &[("authorization", "Bearer service-key")], Admin, Err(Code::PermissionDenied));
        check(&a, &[("authorization", "Bearer gateway-key")], Read, Err(Code::Unauthenticated));
        check(&a, &[("authorization", "Bearer gateway-key"), viewer], Read, Ok(Some(Role::ViewerGateway)));
        check(&a, &[("authorization", "Bearer gateway-key"), viewer], Admin, Err(Code::PermissionDenied));
        check(
            &a,
            &[("authorization", "Bearer gateway-key"), ("x-jira-authorization", "token")],
            Read,
            Err(Code::Unauthenticated),
        );
        check(
            &a,
            &[("authorization", "Bearer gateway-key"), ("x-jira-authorization", "Digest x")],
            Read,
            Err(Code::Unauthenticated),
        );
        check(
            &a,
            &[("authorization", "Bearer gateway-key"), ("x-jira-account-id", "557058:abc")],
            Read,
            Err(Code::Unauthenticated),
        );
        let long = format!("Bearer {}", "k".repeat(600));
        check(&a, &[("authorization", &long)], Read, Err(Code::Unauthenticated));
    }

    #[test]
    fn account_id_mode_reads_the_account_header_only() {
        let a = access(PermissionMode::AccountId);
        use Right::*;
        check(
            &a,
            &[("authorization", "Bearer gateway-key"), ("x-jira-account-id", "557058:0f-ab_c")],
            Read,
            Ok(Some(Role::ViewerGateway)),
        );
        check(
            &a,
            &[("authorization", "Bearer gateway-key"), ("x-jira-account-id", "a b")],
            Read,
            Err(Code::Unauthenticated),
        );
        check(
            &a,
            &[("authorization", "Bearer gateway-key"), ("x-jira-authorization", "Bearer v")],
            Read,
            Err(Code::Unauthenticated),
        );
        check(&a, &[("authorization", "Bearer gateway-key")], Read, Err(Code::Unauthenticated));
    }

    #[test]
    fn with_authentication_off_everything_is_open() {
        let a = Access::open();
        assert_eq!(a.authorize(&md(&[]), Right::Admin).unwrap().role, None);
    }

    #[test]
    fn statuses_and_debug_output_never_hold_a_secret() {
        let a = access(PermissionMode::ViewerCredential);
        let caller = a
            .authorize(
                &md(&[("authorization", "Bearer gateway-key"), ("x-jira-authorization", "Bearer viewer-secret")]),
                Right::Read,
            )
            .unwrap();
        let shown = format!("{caller:?} {a:?}");
        assert!(!shown.contains("viewer-secret") && !shown.contains("gateway-key"), "{shown}");
        let s = a.authorize(&md(&[("authorization", "Bearer wrong-secret")]), Right::Read).unwrap_err();
        assert!(!format!("{s:?}").contains("wrong-secret"));
    }
}
