//! Permission questions to Jira: may this viewer browse that project?
//!
//! Two ways to ask: `mypermissions` sent with the viewer's own credential
//! (Jira answers for the caller), or `permissions/check` about an account id,
//! sent with the service's credential (Cloud; needs Administer Jira).
//! A project that does not exist and one the viewer may not see get the same
//! answer: no. Failures (Jira down, throttled, unreadable) are errors, never
//! a yes; the caller fails closed. A viewer is waiting, so there is one retry
//! at most.
//!
//! Must not depend on anything outside `jira`: `api::permission` adapts it.

use std::collections::HashSet;

use reqwest::Method;
use serde::Deserialize;

use super::client::{Credential, JiraClient};
use super::report::JiraError;
use super::settings::{Flavor, SecretString};
use super::wire::StrOrNum;

/// The permission the service checks.
pub const BROWSE_PROJECTS: &str = "BROWSE_PROJECTS";

/// Retries of a permission request after the first attempt.
const PERMISSION_RETRIES: u32 = 1;

#[derive(Debug, Deserialize)]
struct MyPermissions {
    permissions: std::collections::HashMap<String, PermissionEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PermissionEntry {
    #[serde(default)]
    have_permission: bool,
}

#[derive(Debug, Deserialize)]
struct ProjectRef {
    id: StrOrNum,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct CheckAnswer {
    #[serde(default)]
    project_permissions: Vec<CheckEntry>,
}

#[derive(Debug, Deserialize)]
struct CheckEntry {
    permission: String,
    #[serde(default)]
    projects: Vec<StrOrNum>,
}

/// Did Jira refuse to tell, in a way that means "no"?
fn is_denial(e: &JiraError) -> bool {
    matches!(e.http_status(), Some(400 | 403 | 404))
}

impl JiraClient {
    /// May the holder of `viewer_authorization` (an `Authorization` header
    /// value: `Bearer ...` or `Basic ...`) browse `project`? Asked with that
    /// credential. A 401 (Jira does not accept the credential) is an error
    /// with status 401; 400, 403 and 404 are a no.
    pub async fn my_permission(&self, viewer_authorization: &SecretString, project: &str) -> Result<bool, JiraError> {
        let q = [("projectKey", project.to_string()), ("permissions", BROWSE_PROJECTS.to_string())];
        let answer: Result<MyPermissions, JiraError> = self
            .call_as(
                Method::GET,
                &["mypermissions"],
                &q,
                None,
                None,
                Credential::Viewer(viewer_authorization),
                PERMISSION_RETRIES,
            )
            .await;
        match answer {
            Ok(a) => Ok(a.permissions.get(BROWSE_PROJECTS).is_some_and(|p| p.have_permission)),
            Err(e) if is_denial(&e) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Which of `projects` may `account_id` browse? Asked with the service's
    /// credential through `permissions/check` (Jira Cloud). The answer is in
    /// the order of `projects`.
    pub async fn check_account(&self, account_id: &str, projects: &[String]) -> Result<Vec<bool>, JiraError> {
        if self.flavor() != Flavor::Cloud {
            return Err(JiraError::Config("permission checks by account id need Jira Cloud".into()));
        }
        // permissions/check speaks project ids.
        let mut ids: Vec<Option<String>> = Vec::with_capacity(projects.len());
        for key in projects {
            let found: Result<ProjectRef, JiraError> = self
                .call_as(Method::GET, &["project", key], &[], None, None, Credential::App, PERMISSION_RETRIES)
                .await;
            ids.push(match found {
                Ok(p) => Some(p.id.into_id()),
                Err(e) if matches!(e.http_status(), Some(404)) => None,
                Err(e) => return Err(e),
            });
        }
        let known: Vec<u64> = ids.iter().flatten().filter_map(|id| id.parse().ok()).collect();
        if known.is_empty() {
            return Ok(vec![false; projects.len()]);
        }
        let body = serde_json::json!({
            "accountId": account_id,
            "projectPermissions": [{"permissions": [BROWSE_PROJECTS], "projects": known}],
        });
        let answer: CheckAnswer = self
            .call_as(
                Method::POST,
                &["permissions", "check"],
                &[],
                Some(&body),
                None,
                Credential::App,
                PERMISSION_RETRIES,
            )
            .await?;
        let allowed: HashSet<String> = answer
            .project_permissions
            .into_iter()
            .filter(|e| e.permission == BROWSE_PROJECTS)
            .flat_map(|e| e.projects.into_iter().map(StrOrNum::into_id))
            .collect();
        Ok(ids.iter().map(|id| id.as_ref().is_some_and(|id| allowed.contains(id))).collect())
    }
}
