//! TLS and mutual TLS from the configuration, with certificates made here
//! by rcgen: the real server on 127.0.0.1:0, tonic clients over real TLS.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use jira_dora::config;
use jira_dora::proto::ListProjectsRequest;
use jira_dora::proto::dora_metrics_client::DoraMetricsClient;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use sha2::{Digest, Sha256};
use tokio::sync::watch;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};

const KEY: &str = "service-key-0123456789abcdef0123456789abcdef";

struct Pki {
    ca_pem: String,
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl Pki {
    fn new(name: &str) -> Pki {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(rcgen::DnType::CommonName, name);
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        Pki { ca_pem: issuer.pem(), issuer }
    }

    /// A leaf certificate and its key, PEM.
    fn leaf(&self, name: &str) -> (String, String) {
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(vec![name.to_string()]).unwrap().signed_by(&key, &self.issuer).unwrap();
        (cert.pem(), key.serialize_pem())
    }
}

async fn start(dir: &Path, pki: &Pki, mutual: bool) -> (std::net::SocketAddr, watch::Sender<bool>) {
    let (cert, key) = pki.leaf("localhost");
    std::fs::write(dir.join("server.pem"), cert).unwrap();
    std::fs::write(dir.join("server.key"), key).unwrap();
    std::fs::write(dir.join("ca.pem"), &pki.ca_pem).unwrap();
    let mut toml = format!(
        "[harvest]\non_start = false\n[tls]\ncert_file = {:?}\nkey_file = {:?}\n",
        dir.join("server.pem").display().to_string(),
        dir.join("server.key").display().to_string()
    );
    if mutual {
        toml.push_str(&format!("client_ca_file = {:?}\n", dir.join("ca.pem").display().to_string()));
    }
    let keys = format!("service {}", hex::encode(Sha256::digest(KEY.as_bytes())));
    let env: HashMap<&str, &str> = HashMap::from([("DORA_AUTH_ENABLED", "true"), ("DORA_API_KEYS", keys.as_str())]);
    let mut config = config::load(Some(&toml), &env).unwrap();
    config.data_dir = dir.join("data");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, rx) = watch::channel(false);
    tokio::spawn(jira_dora::app::run(config, listener, rx));
    (addr, stop)
}

/// Lists projects over TLS with the given client identity; the error text
/// when the call fails.
async fn call(addr: std::net::SocketAddr, ca_pem: &str, identity: Option<(String, String)>) -> Result<(), String> {
    let mut tls = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(ca_pem)).domain_name("localhost");
    if let Some((cert, key)) = identity {
        tls = tls.identity(Identity::from_pem(cert, key));
    }
    let endpoint = Channel::from_shared(format!("https://localhost:{}", addr.port()))
        .unwrap()
        .tls_config(tls)
        .map_err(|e| e.to_string())?
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(5));
    let mut last = String::new();
    for _ in 0..50 {
        match endpoint.connect().await {
            Ok(channel) => {
                let mut request = tonic::Request::new(ListProjectsRequest {});
                request.metadata_mut().insert("authorization", format!("Bearer {KEY}").parse().unwrap());
                return DoraMetricsClient::new(channel)
                    .list_projects(request)
                    .await
                    .map(|_| ())
                    .map_err(|s| format!("{s:?}"));
            }
            Err(e) => last = format!("{e:?}"),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Err(last)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_serves_clients_that_trust_the_ca_and_refuses_plaintext() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new("test CA");
    let (addr, stop) = start(dir.path(), &pki, false).await;
    call(addr, &pki.ca_pem, None).await.expect("a TLS client gets an answer");

    let plain = DoraMetricsClient::connect(format!("http://{addr}")).await;
    let refused = match plain {
        Err(_) => true,
        Ok(mut c) => c.list_projects(ListProjectsRequest {}).await.is_err(),
    };
    assert!(refused, "plaintext must not be served");
    let other = Pki::new("other CA");
    assert!(call(addr, &other.ca_pem, None).await.is_err(), "a client that does not trust the CA refuses");
    stop.send(true).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_requires_a_client_certificate_from_the_configured_ca() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new("test CA");
    let (addr, stop) = start(dir.path(), &pki, true).await;
    call(addr, &pki.ca_pem, Some(pki.leaf("gateway")))
        .await
        .expect("a client with a certificate of the CA gets an answer");
    assert!(call(addr, &pki.ca_pem, None).await.is_err(), "no client certificate: refused");
    let stranger = Pki::new("stranger CA");
    assert!(
        call(addr, &pki.ca_pem, Some(stranger.leaf("gateway"))).await.is_err(),
        "a certificate of another CA: refused"
    );
    stop.send(true).unwrap();
}
