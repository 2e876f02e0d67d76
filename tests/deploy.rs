//! The deployment files (`deploy/kubernetes/`, `deploy/compose.yaml`)
//! parsed and cross-checked against the service itself: every environment
//! variable is one the service reads, the binary accepts the environment
//! (`check-config`, with the secret files in place), and ports and probes
//! match the address it listens on and the service its health reports.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;

use jira_dora::config::{self, Config, Env};
use jira_dora::proto::dora_metrics_server::DoraMetricsServer;
use tonic::server::NamedService;
use yaml_rust2::{Yaml, YamlLoader};

/// Read by the command line rather than by the configuration.
const READ_BY_THE_COMMAND_LINE: &[&str] = &["DORA_CONFIG", "DORA_LOG"];

fn deploy(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy").join(path)
}

fn documents(path: &str) -> Vec<Yaml> {
    let text = std::fs::read_to_string(deploy(path)).unwrap_or_else(|e| panic!("{path}: {e}"));
    YamlLoader::load_from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn kind<'a>(docs: &'a [Yaml], kind: &str) -> &'a Yaml {
    docs.iter().find(|d| d["kind"].as_str() == Some(kind)).unwrap_or_else(|| panic!("no {kind}"))
}

fn text(y: &Yaml) -> String {
    match y {
        Yaml::String(s) | Yaml::Real(s) => s.clone(),
        Yaml::Integer(i) => i.to_string(),
        Yaml::Boolean(b) => b.to_string(),
        other => panic!("not a scalar: {other:?}"),
    }
}

fn int(y: &Yaml) -> i64 {
    y.as_i64().unwrap_or_else(|| panic!("not a number: {y:?}"))
}

/// An environment that remembers which names the configuration asked for.
struct Recording {
    vars: HashMap<String, String>,
    asked: RefCell<BTreeSet<String>>,
}

impl Env for Recording {
    fn var(&self, name: &str) -> Option<String> {
        self.asked.borrow_mut().insert(name.to_owned());
        self.vars.get(name).cloned()
    }
}

/// What a secret file named by `var` holds, for the check.
fn placeholder(var: &str) -> &'static str {
    match var {
        "DORA_DATABASE_URL_FILE" => "postgres://dora:placeholder@postgres:5432/dora",
        "DORA_API_KEYS_FILE" => "service 2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824\n",
        _ => "placeholder",
    }
}

/// Loads the configuration from `env` the way the binary does, with every
/// file the environment names written under `root` first (`files`: the
/// path in the container → its content), and checks the binary agrees.
fn check_environment(what: &str, env: &BTreeMap<String, String>, files: &BTreeMap<String, String>) -> Config {
    let root = tempfile::tempdir().unwrap();
    let local = |path: &str| root.path().join(path.trim_start_matches('/'));
    let mut vars = HashMap::new();
    for (name, value) in env {
        let value = match files.get(value) {
            Some(content) => {
                let path = local(value);
                std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                std::fs::write(&path, content).unwrap();
                path.display().to_string()
            }
            None => {
                assert!(
                    !name.ends_with("_FILE") && name != "DORA_CONFIG",
                    "{what}: {name} names {value}, which nothing provides"
                );
                value.clone()
            }
        };
        vars.insert(name.clone(), value);
    }
    let recording = Recording { vars: vars.clone(), asked: RefCell::default() };
    let toml = vars.get("DORA_CONFIG").map(|p| std::fs::read_to_string(p).unwrap());
    let config = config::load(toml.as_deref(), &recording).unwrap_or_else(|e| panic!("{what}: {e}"));
    let asked = recording.asked.into_inner();
    for name in env.keys() {
        assert!(
            asked.contains(name) || READ_BY_THE_COMMAND_LINE.contains(&name.as_str()),
            "{what}: the service does not read {name}"
        );
    }
    assert!(config.cluster.is_some(), "{what}: replicas need the database (DORA_DATABASE_URL_FILE)");
    let out =
        Command::new(env!("CARGO_BIN_EXE_jira-dora")).arg("check-config").env_clear().envs(&vars).output().unwrap();
    assert!(
        out.status.success(),
        "{what}: the binary refuses the environment: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    config
}

fn health_service() -> &'static str {
    <DoraMetricsServer<jira_dora::api::Service> as NamedService>::NAME
}

#[test]
fn the_kubernetes_files_match_the_service() {
    let mut docs = Vec::new();
    let listed: Vec<String> = documents("kubernetes/kustomization.yaml")[0]["resources"]
        .as_vec()
        .expect("resources")
        .iter()
        .map(text)
        .collect();
    for file in &listed {
        docs.extend(documents(&format!("kubernetes/{file}")));
    }
    let deployment = kind(&docs, "Deployment");
    let service = kind(&docs, "Service");
    let budget = kind(&docs, "PodDisruptionBudget");
    let config_map = kind(&docs, "ConfigMap");
    let secret = documents("kubernetes/secret.example.yaml").into_iter().next().unwrap();

    let replicas = int(&deployment["spec"]["replicas"]);
    assert_eq!(replicas, 3);
    let pod = &deployment["spec"]["template"];
    let labels = &pod["metadata"]["labels"];
    assert_eq!(&deployment["spec"]["selector"]["matchLabels"], labels);
    assert_eq!(&service["spec"]["selector"], labels);
    assert_eq!(&budget["spec"]["selector"]["matchLabels"], labels);
    let min_available = int(&budget["spec"]["minAvailable"]);
    assert!((1..replicas).contains(&min_available), "a drain must leave replicas serving and be able to proceed");

    let container = &pod["spec"]["containers"][0];
    let env: BTreeMap<String, String> =
        container["env"].as_vec().unwrap().iter().map(|e| (text(&e["name"]), text(&e["value"]))).collect();
    // The files the pod sees: the ConfigMap's and the Secret's keys under
    // their mounts.
    let mut files = BTreeMap::new();
    for mount in container["volumeMounts"].as_vec().unwrap() {
        let name = text(&mount["name"]);
        let volume = pod["spec"]["volumes"]
            .as_vec()
            .unwrap()
            .iter()
            .find(|v| text(&v["name"]) == name)
            .expect("a volume per mount");
        let dir = text(&mount["mountPath"]);
        if !volume["configMap"].is_badvalue() {
            assert_eq!(text(&volume["configMap"]["name"]), text(&config_map["metadata"]["name"]));
            for (key, content) in config_map["data"].as_hash().unwrap() {
                files.insert(format!("{dir}/{}", text(key)), text(content));
            }
        }
        if !volume["secret"].is_badvalue() {
            assert_eq!(text(&volume["secret"]["secretName"]), text(&secret["metadata"]["name"]));
            for key in secret["stringData"].as_hash().unwrap().keys() {
                let path = format!("{dir}/{}", text(key));
                let var = env.iter().find(|(_, v)| **v == path).map(|(k, _)| k.clone()).unwrap_or_default();
                files.insert(path, placeholder(&var).to_owned());
            }
        }
    }
    let config = check_environment("deployment", &env, &files);
    let port = i64::from(config.listen.port());

    let grpc_port =
        container["ports"].as_vec().unwrap().iter().find(|p| text(&p["name"]) == "grpc").expect("a port named grpc");
    assert_eq!(int(&grpc_port["containerPort"]), port, "the container port is the one the service listens on");
    let readiness = &container["readinessProbe"]["grpc"];
    assert_eq!(int(&readiness["port"]), port);
    assert_eq!(text(&readiness["service"]), health_service(), "readiness asks for the service the health reports");
    assert_eq!(int(&container["livenessProbe"]["grpc"]["port"]), port);
    let service_port = &service["spec"]["ports"][0];
    assert_eq!(text(&service_port["targetPort"]), "grpc");
    assert_eq!(
        text(&pod["metadata"]["annotations"]["prometheus.io/port"]),
        port.to_string(),
        "Prometheus scrapes the service port"
    );
    let toml = files.values().find(|f| f.contains("[cluster]")).expect("the configuration file");
    assert!(config::load(Some(toml), &HashMap::<&str, &str>::new()).is_ok(), "the ConfigMap's file alone is valid too");
}

#[test]
fn the_compose_file_runs_two_replicas_on_postgres() {
    let doc = documents("compose.yaml").into_iter().next().unwrap();
    let services = doc["services"].as_hash().unwrap();
    let postgres = &doc["services"]["postgres"];
    assert!(text(&postgres["image"]).starts_with("postgres:"));
    let replicas: Vec<(&Yaml, &Yaml)> =
        services.iter().filter(|(_, s)| s["image"].as_str().is_some_and(|i| i.starts_with("jira-dora"))).collect();
    assert_eq!(replicas.len(), 2, "two replicas");
    let secrets = doc["secrets"].as_hash().unwrap();
    let mut host_ports = BTreeSet::new();
    for (name, replica) in replicas {
        let name = text(name);
        let env: BTreeMap<String, String> =
            replica["environment"].as_hash().unwrap().iter().map(|(k, v)| (text(k), text(v))).collect();
        let mut files = BTreeMap::new();
        for s in replica["secrets"].as_vec().unwrap() {
            let secret = text(s);
            assert!(secrets.contains_key(s), "{name}: secret {secret} is not defined");
            let path = format!("/run/secrets/{secret}");
            let var = env.iter().find(|(_, v)| **v == path).map(|(k, _)| k.clone()).unwrap_or_default();
            files.insert(path, placeholder(&var).to_owned());
        }
        let config = check_environment(&name, &env, &files);
        assert!(!replica["depends_on"]["postgres"].is_badvalue(), "{name} waits for the database");
        for mapping in replica["ports"].as_vec().unwrap() {
            let mapping = text(mapping);
            let parts: Vec<&str> = mapping.rsplitn(3, ':').collect();
            assert_eq!(
                parts[0].parse::<u16>().unwrap(),
                config.listen.port(),
                "{name}: {mapping} maps the port it listens on"
            );
            assert!(host_ports.insert(parts[1].to_owned()), "{name}: host port {} used twice", parts[1]);
            assert_eq!(parts.get(2), Some(&"127.0.0.1"), "{name}: published on loopback only");
        }
    }
}
