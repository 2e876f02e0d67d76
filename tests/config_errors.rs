//! Configuration problems are reported as `serve` would refuse them, under
//! the name the operator used, and never echo a credential.

use std::collections::HashMap;
use std::process::Command;

use jira_dora::config;

#[test]
fn a_base_url_with_credentials_is_refused_without_echoing_them() {
    for url in ["https://bot:s3cr3t-pw@acme.atlassian.net", "https://s3cr3t-pw@acme.atlassian.net/"] {
        let e = config::load(None, &HashMap::from([("JIRA_BASE_URL", url)])).unwrap_err().to_string();
        assert!(e.contains("jira.base_url (JIRA_BASE_URL)") && e.contains("credentials"), "{e}");
        assert!(!e.contains("s3cr3t-pw"), "{e}");
    }
}

#[test]
fn check_config_refuses_what_serve_refuses() {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_jira-dora"))
        .env_clear()
        .current_dir(dir.path())
        .env("JIRA_BASE_URL", "https://bot:s3cr3t-pw@acme.atlassian.net")
        .arg("check-config")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "check-config accepted it: {}", String::from_utf8_lossy(&output.stdout));
    assert!(stderr.contains("JIRA_BASE_URL") && !stderr.contains("s3cr3t-pw"), "{stderr}");
}

#[test]
fn a_token_written_into_the_file_is_never_echoed() {
    let files = [
        "[jira]\nbase_url = \"https://acme.atlassian.net\"\napi_token = \"ATATT3x-s3cr3t-token\"\n",
        "[jira]\nemail = \"bot@acme.test\"\ntoken = 'ATATT3x-s3cr3t-token'\n",
        "jira_api_token = \"ATATT3x-s3cr3t-token\"\n",
        // A value in the wrong place or of the wrong type.
        "[jira]\nmax_retries = \"ATATT3x-s3cr3t-token\"\n",
        "[jira]\nbase_url = \"\"\"\nATATT3x-s3cr3t-token\n",
    ];
    for text in files {
        let e = config::load(Some(text), &HashMap::new()).unwrap_err().to_string();
        assert!(!e.contains("s3cr3t"), "echoed:\n{e}");
        assert!(e.contains("config file") && e.contains("line "), "says where:\n{e}");
    }
    let e = config::load(Some(files[0]), &HashMap::new()).unwrap_err().to_string();
    assert!(e.contains("api_token"), "names the key:\n{e}");
}

#[test]
fn problems_with_the_keys_in_the_environment_name_that_variable() {
    let env = HashMap::from([("DORA_AUTH_ENABLED", "true"), ("DORA_API_KEYS", " , ")]);
    let e = config::load(None, &env).unwrap_err().to_string();
    assert!(e.contains("DORA_API_KEYS") && !e.contains("DORA_API_KEYS_FILE"), "{e}");

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("keys");
    std::fs::write(&file, "# no keys yet\n").unwrap();
    let path: &'static str = file.to_str().unwrap().to_owned().leak();
    let env = HashMap::from([("DORA_AUTH_ENABLED", "true"), ("DORA_API_KEYS_FILE", path)]);
    let e = config::load(None, &env).unwrap_err().to_string();
    assert!(e.contains("DORA_API_KEYS_FILE"), "{e}");

    let e = config::load(Some("[auth]\nenabled = true\n"), &HashMap::new()).unwrap_err().to_string();
    assert!(e.contains("auth.keys") && e.contains("DORA_API_KEYS"), "with no key anywhere, every place is named: {e}");
}
