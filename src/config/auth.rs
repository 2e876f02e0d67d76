//! The `[auth]` and `[tls]` parts of the configuration: API key hashes with
//! their roles, how viewers are checked, and the server's certificates.
//!
//! The configuration holds only SHA-256 hashes of API keys, never keys.
//! Keys are long random strings (`jira-dora hash-key` prints the hash of
//! one), so a fast hash is enough: there is no password to guess.
//! Authentication is on by default everywhere but on a loopback address,
//! and switching it off on any other address is refused.
//!
//! Must not depend on `api`, which reads these settings.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::env::Env;

/// What an API client may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// A gateway in front of people: reads, always on behalf of a viewer
    /// whose Jira permissions are checked.
    ViewerGateway,
    /// A trusted service: reads; sees every project unless it forwards a
    /// viewer, whose permissions are then checked.
    Service,
    /// Everything, including refreshes and definition changes.
    Admin,
}

impl Role {
    /// The name used in the configuration.
    pub fn name(self) -> &'static str {
        match self {
            Role::ViewerGateway => "viewer-gateway",
            Role::Service => "service",
            Role::Admin => "admin",
        }
    }

    fn parse(text: &str) -> Option<Role> {
        match text {
            "viewer-gateway" => Some(Role::ViewerGateway),
            "service" => Some(Role::Service),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}

/// How a viewer's right to browse a project is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PermissionMode {
    /// The gateway forwards the viewer's own Jira credential in
    /// `x-jira-authorization`; Jira answers `mypermissions` for it.
    #[default]
    ViewerCredential,
    /// A trusted gateway forwards the viewer's account id in
    /// `x-jira-account-id`; the service asks `permissions/check` with its own
    /// credential (which needs Administer Jira; Cloud only).
    AccountId,
}

/// One accepted API key: the SHA-256 of the key and its role.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey {
    pub sha256: [u8; 32],
    pub role: Role,
}

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // A hash is no secret, but there is no reason to print it whole.
        f.debug_struct("ApiKey")
            .field("sha256", &format_args!("{}…", hex::encode(&self.sha256[..4])))
            .field("role", &self.role)
            .finish()
    }
}

/// Client authentication and viewer permission checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthSettings {
    /// Off: every RPC is open (the loopback demo).
    pub enabled: bool,
    pub keys: Vec<ApiKey>,
    pub permission_mode: PermissionMode,
    /// How long a permission answer is reused.
    pub permission_cache: Duration,
}

impl Default for AuthSettings {
    fn default() -> Self {
        Self {
            enabled: false,
            keys: Vec::new(),
            permission_mode: PermissionMode::default(),
            permission_cache: DEFAULT_PERMISSION_CACHE,
        }
    }
}

/// Default lifetime of a cached permission answer.
pub const DEFAULT_PERMISSION_CACHE: Duration = Duration::from_secs(60);

/// Longest accepted lifetime of a cached permission answer.
pub const MAX_PERMISSION_CACHE: Duration = Duration::from_secs(3600);

/// The server's TLS certificate, and the client CA when clients must show
/// certificates too (mutual TLS).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSettings {
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
    pub client_ca_file: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileAuth {
    enabled: Option<bool>,
    #[serde(default)]
    keys: Vec<FileKey>,
    permission_mode: Option<PermissionMode>,
    permission_cache_secs: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileKey {
    sha256: String,
    role: Role,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileTls {
    cert_file: Option<PathBuf>,
    key_file: Option<PathBuf>,
    client_ca_file: Option<PathBuf>,
}

fn parse_hash(text: &str) -> Option<[u8; 32]> {
    let bytes = hex::decode(text.trim()).ok()?;
    bytes.try_into().ok()
}

/// `ROLE SHA256` pairs, one per line or separated by commas; `#` starts a
/// comment.
fn parse_key_list(source: &str, text: &str, problems: &mut Vec<String>) -> Vec<ApiKey> {
    let mut keys = Vec::new();
    for (n, entry) in text.lines().flat_map(|l| l.split('#').next().unwrap_or("").split(',')).enumerate() {
        let entry = entry.trim();
        if entry.is_empty() {
            continue;
        }
        let mut parts = entry.split([' ', '\t', '=', ':']).filter(|p| !p.is_empty());
        match (parts.next().and_then(Role::parse), parts.next().and_then(parse_hash), parts.next()) {
            (Some(role), Some(sha256), None) => keys.push(ApiKey { sha256, role }),
            _ => problems.push(format!(
                "{source}: entry {} is not `ROLE SHA256` (role viewer-gateway, service or admin; 64 hex digits)",
                n + 1
            )),
        }
    }
    keys
}

fn flag(name: &str, env: &dyn Env, problems: &mut Vec<String>) -> Option<bool> {
    match env.var(name)?.as_str() {
        "true" | "1" | "on" => Some(true),
        "false" | "0" | "off" => Some(false),
        other => {
            problems.push(format!("{name}: `{other}` is neither true nor false"));
            None
        }
    }
}

/// Reads `[auth]` and `[tls]` with their environment overrides, and checks
/// them against the listen address.
pub(super) fn settings(
    file: FileAuth,
    tls: FileTls,
    listen: SocketAddr,
    jira_is_datacenter: bool,
    env: &dyn Env,
    problems: &mut Vec<String>,
) -> (AuthSettings, Option<TlsSettings>) {
    let loopback = listen.ip().is_loopback();
    let enabled = flag("DORA_AUTH_ENABLED", env, problems).or(file.enabled).unwrap_or(!loopback);
    if !enabled && !loopback {
        problems.push(format!(
            "auth.enabled (DORA_AUTH_ENABLED): authentication is off, but the service would listen on {listen}, \
             which is not a loopback address; anyone who reaches it could read every project. \
             Switch authentication on and add [[auth.keys]], or listen on 127.0.0.1"
        ));
    }

    let mut keys = Vec::new();
    for (i, k) in file.keys.iter().enumerate() {
        match parse_hash(&k.sha256) {
            Some(sha256) => keys.push(ApiKey { sha256, role: k.role }),
            None => problems.push(format!(
                "auth.keys[{i}].sha256: not a SHA-256 in hex (64 digits); `jira-dora hash-key` prints one"
            )),
        }
    }
    // Where the keys came from, for the problem when there are none.
    let mut source = "auth.keys (or DORA_API_KEYS, DORA_API_KEYS_FILE)";
    let mut from_env = None;
    if let Some(list) = env.var("DORA_API_KEYS") {
        from_env = Some(parse_key_list("DORA_API_KEYS", &list, problems));
        source = "DORA_API_KEYS";
    }
    if let Some(path) = env.var("DORA_API_KEYS_FILE") {
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                from_env.get_or_insert_with(Vec::new).extend(parse_key_list("DORA_API_KEYS_FILE", &text, problems))
            }
            Err(e) => problems.push(format!("DORA_API_KEYS_FILE: cannot read the key file: {}", e.kind())),
        }
        source = if source == "DORA_API_KEYS" { "DORA_API_KEYS and DORA_API_KEYS_FILE" } else { "DORA_API_KEYS_FILE" };
    }
    if let Some(env_keys) = from_env {
        keys = env_keys;
    }
    if enabled && keys.is_empty() {
        problems.push(format!(
            "{source}: authentication is on but no API key is configured; \
             add one with the SHA-256 of a key (`jira-dora hash-key` prints it)"
        ));
    }

    let permission_mode = match env.var("DORA_PERMISSION_MODE").as_deref() {
        None => file.permission_mode.unwrap_or_default(),
        Some("viewer-credential") => PermissionMode::ViewerCredential,
        Some("account-id") => PermissionMode::AccountId,
        Some(other) => {
            problems.push(format!(
                "auth.permission_mode (DORA_PERMISSION_MODE): `{other}` is neither `viewer-credential` nor `account-id`"
            ));
            PermissionMode::default()
        }
    };
    if permission_mode == PermissionMode::AccountId && jira_is_datacenter {
        problems.push(
            "auth.permission_mode: `account-id` needs Jira Cloud (permissions/check); use `viewer-credential`".into(),
        );
    }
    let permission_cache = match file.permission_cache_secs.map(Duration::from_secs) {
        Some(d) if d > MAX_PERMISSION_CACHE => {
            problems.push(format!("auth.permission_cache_secs: at most {} seconds", MAX_PERMISSION_CACHE.as_secs()));
            DEFAULT_PERMISSION_CACHE
        }
        Some(d) => d,
        None => DEFAULT_PERMISSION_CACHE,
    };

    let cert_file = env.var("DORA_TLS_CERT_FILE").map(PathBuf::from).or(tls.cert_file);
    let key_file = env.var("DORA_TLS_KEY_FILE").map(PathBuf::from).or(tls.key_file);
    let client_ca_file = env.var("DORA_TLS_CLIENT_CA_FILE").map(PathBuf::from).or(tls.client_ca_file);
    let tls = match (cert_file, key_file) {
        (Some(cert_file), Some(key_file)) => {
            for (key, path) in [
                ("tls.cert_file", Some(&cert_file)),
                ("tls.key_file", Some(&key_file)),
                ("tls.client_ca_file", client_ca_file.as_ref()),
            ] {
                if let Some(p) = path
                    && let Err(e) = std::fs::metadata(p)
                {
                    problems.push(format!("{key}: cannot read the file: {}", e.kind()));
                }
            }
            Some(TlsSettings { cert_file, key_file, client_ca_file })
        }
        (None, None) => {
            if client_ca_file.is_some() {
                problems.push("tls.client_ca_file: mutual TLS needs tls.cert_file and tls.key_file too".into());
            }
            None
        }
        _ => {
            problems.push("tls.cert_file and tls.key_file: set both or neither".into());
            None
        }
    };

    (AuthSettings { enabled, keys, permission_mode, permission_cache }, tls)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::config::load;

    const HASH: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

    fn leak(s: String) -> &'static str {
        s.leak()
    }

    fn env(pairs: &[(&'static str, &'static str)]) -> HashMap<&'static str, &'static str> {
        pairs.iter().copied().collect()
    }

    #[test]
    fn auth_is_off_on_loopback_and_on_elsewhere_by_default() {
        assert!(!load(None, &env(&[])).unwrap().auth.enabled);
        let c =
            load(None, &env(&[("DORA_LISTEN", "0.0.0.0:9000"), ("DORA_API_KEYS", leak(format!("service {HASH}")))]))
                .unwrap();
        assert!(c.auth.enabled);
        assert_eq!(c.auth.keys, [ApiKey { sha256: parse_hash(HASH).unwrap(), role: Role::Service }]);
    }

    #[test]
    fn auth_off_on_a_public_address_is_refused_with_the_reason() {
        let e = load(Some("[auth]\nenabled = false\n"), &env(&[("DORA_LISTEN", "0.0.0.0:9000")])).unwrap_err();
        assert_eq!(e.problems.len(), 1, "{e}");
        assert!(e.problems[0].contains("not a loopback address"), "{e}");
        let e = load(None, &env(&[("DORA_LISTEN", "[::]:9000"), ("DORA_AUTH_ENABLED", "false")])).unwrap_err();
        assert!(e.to_string().contains("auth.enabled"), "{e}");
    }

    #[test]
    fn auth_on_without_keys_is_refused() {
        let e = load(None, &env(&[("DORA_LISTEN", "10.0.0.1:9000")])).unwrap_err();
        assert!(e.to_string().contains("no API key is configured"), "{e}");
    }

    #[test]
    fn keys_come_from_the_file_or_the_environment_and_bad_ones_are_named() {
        let toml = format!(
            "[auth]\nenabled = true\npermission_cache_secs = 5\npermission_mode = \"account-id\"\n[[auth.keys]]\nsha256 = \"{HASH}\"\nrole = \"admin\"\n[[auth.keys]]\nsha256 = \"abc\"\nrole = \"service\"\n"
        );
        let e = load(Some(&toml), &env(&[])).unwrap_err();
        assert_eq!(
            e.problems,
            ["auth.keys[1].sha256: not a SHA-256 in hex (64 digits); `jira-dora hash-key` prints one"]
        );

        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("keys");
        std::fs::write(&file, format!("# gateway\nviewer-gateway {HASH}\nadmin {HASH}\n")).unwrap();
        let path = leak(file.to_str().unwrap().to_owned());
        let toml = format!(
            "[auth]\nenabled = true\npermission_cache_secs = 5\npermission_mode = \"account-id\"\n[[auth.keys]]\nsha256 = \"{HASH}\"\nrole = \"service\"\n"
        );
        let c = load(Some(&toml), &env(&[("DORA_API_KEYS_FILE", path)])).unwrap();
        let roles: Vec<Role> = c.auth.keys.iter().map(|k| k.role).collect();
        assert_eq!(roles, [Role::ViewerGateway, Role::Admin], "the environment replaces the file's keys");
        assert_eq!(c.auth.permission_cache, Duration::from_secs(5));
        assert_eq!(c.auth.permission_mode, PermissionMode::AccountId);

        let e = load(None, &env(&[("DORA_API_KEYS", "root 1234")])).unwrap_err();
        assert!(e.to_string().contains("DORA_API_KEYS: entry 1"), "{e}");
    }

    #[test]
    fn tls_needs_both_files_and_readable_ones() {
        let e = load(Some("[tls]\ncert_file = \"/nonexistent/cert.pem\"\n"), &env(&[])).unwrap_err();
        assert!(e.to_string().contains("set both or neither"), "{e}");
        let e = load(Some("[tls]\ncert_file = \"/nonexistent/c.pem\"\nkey_file = \"/nonexistent/k.pem\"\n"), &env(&[]))
            .unwrap_err();
        assert_eq!(e.problems.len(), 2, "{e}");
        let e = load(Some("[tls]\nclient_ca_file = \"ca.pem\"\n"), &env(&[])).unwrap_err();
        assert!(e.to_string().contains("mutual TLS"), "{e}");
    }

    #[test]
    fn account_id_mode_needs_cloud() {
        let e = load(
            None,
            &env(&[
                ("JIRA_BASE_URL", "https://jira.example.com"),
                ("JIRA_FLAVOR", "datacenter"),
                ("DORA_PERMISSION_MODE", "account-id"),
            ]),
        )
        .unwrap_err();
        assert!(e.to_string().contains("needs Jira Cloud"), "{e}");
    }

    #[test]
    fn key_hashes_do_not_show_whole_in_debug() {
        let c = load(None, &env(&[("DORA_API_KEYS", leak(format!("admin {HASH}")))])).unwrap();
        assert!(!format!("{c:?}").contains(HASH));
    }
}
