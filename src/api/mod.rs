//! The only module that knows tonic and HTTP serving: the gRPC service,
//! health and reflection on one port, conversions to protobuf, and the
//! mapping of errors to `tonic::Status` (in [`status`], and nowhere else).
//! The same port also serves gRPC-Web
//! (for the gRPC services that support it), the HTTP/JSON mapping
//! ([`json`]) and the dashboard ([`dashboard`]); other paths get HTTP 404.
//! Every request passes [`http_guard`] first (header size, `Host`, `Origin`,
//! content type), then the RPC timing, both in front of the router
//! (`layered`).

mod answers;
pub mod auth;
mod coalesce;
pub mod codec;
mod convert;
pub mod dashboard;
mod definitions;
mod encoded;
mod explain;
mod gzip;
pub mod http_guard;
mod impact;
pub mod json;
mod layered;
pub mod permission;
pub mod prometheus;
pub mod service;
pub mod status;

use std::future::Future;
use std::sync::Arc;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio_stream::StreamExt;
use tonic::service::Routes;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Certificate, Identity, Server, ServerTlsConfig};
use tonic_web::GrpcWebLayer;
use tower_http::compression::predicate::{DefaultPredicate, NotForContentType, Predicate};
use tower_http::compression::{CompressionLayer, CompressionLevel};
use tower_layer::Layer;

use self::layered::Layered;
use crate::config::TlsSettings;
use crate::proto::FILE_DESCRIPTOR_SET;
use crate::proto::dora_metrics_server::DoraMetricsServer;
pub use http_guard::MAX_METADATA_BYTES;
pub use service::{MAX_REQUEST_BYTES, Service};

/// The TLS settings as tonic wants them: the server's identity and, for
/// mutual TLS, the CA that client certificates must chain to.
pub fn tls_config(tls: &TlsSettings) -> anyhow::Result<ServerTlsConfig> {
    let read = |what: &str, path: &std::path::Path| {
        std::fs::read(path).with_context(|| format!("reading the TLS {what} ({})", path.display()))
    };
    let identity = Identity::from_pem(read("certificate", &tls.cert_file)?, read("private key", &tls.key_file)?);
    let mut config = ServerTlsConfig::new().identity(identity);
    if let Some(ca) = &tls.client_ca_file {
        config = config.client_ca_root(Certificate::from_pem(read("client CA", ca)?)).client_auth_optional(false);
    }
    Ok(config)
}

/// Serves the API on a bound listener until `shutdown` completes, over TLS
/// when `tls` is set. Health answers without an API key; reflection needs
/// one (any role), like every `DoraMetrics` call.
pub async fn serve(
    listener: TcpListener,
    service: Service,
    tls: Option<&TlsSettings>,
    shutdown: impl Future<Output = ()> + Send,
) -> anyhow::Result<()> {
    let access = Arc::clone(&service.access);
    let access_for_metrics = Arc::clone(&service.access);
    let key_check = move |request: tonic::Request<()>| {
        access.authenticate(request.metadata())?;
        Ok(request)
    };
    let (health_reporter, health_service) = tonic_health::server::health_reporter();
    match service.cluster.as_ref().map(|c| c.ready()) {
        // A replica serves once it holds figures: a snapshot loaded or its
        // first harvest finished.
        Some(mut ready) => {
            health_reporter.set_not_serving::<DoraMetricsServer<Service>>().await;
            let reporter = health_reporter.clone();
            tokio::spawn(async move {
                if ready.wait_for(|r| *r).await.is_ok() {
                    reporter.set_serving::<DoraMetricsServer<Service>>().await;
                }
            });
        }
        None => health_reporter.set_serving::<DoraMetricsServer<Service>>().await,
    }
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()?;
    let reflection_alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1alpha()?;
    let metrics_enabled = service.config.metrics_enabled;
    let store = Arc::clone(&service.store);
    let guard = Arc::new(http_guard::HttpGuard {
        loopback_hosts_only: !service.access.enabled(),
        tls: tls.is_some(),
        allowed_origins: service.config.allowed_origins.clone(),
    });
    let service = Arc::new(service);
    let dora = DoraMetricsServer::from_arc(Arc::clone(&service)).max_decoding_message_size(MAX_REQUEST_BYTES);
    // gRPC-Web per service, never on the whole server (it would turn every
    // other HTTP/1.1 request into a 400); reflection streams both ways, which
    // gRPC-Web cannot.
    let mut routes = Routes::new(GrpcWebLayer::new().layer(health_service))
        .add_service(InterceptedService::new(reflection, key_check.clone()))
        .add_service(InterceptedService::new(reflection_alpha, key_check))
        .add_service(GrpcWebLayer::new().layer(dora))
        .into_axum_router()
        .merge(encoded::router(Arc::clone(&service), MAX_REQUEST_BYTES))
        .merge(json::router(service).layer(http_gzip()))
        .merge(dashboard::router().layer(http_gzip()));
    if metrics_enabled {
        let sample: prometheus::Sample = Arc::new(move || answers::sample(&store));
        routes = routes.merge(prometheus::router(Arc::clone(&access_for_metrics), sample));
    }
    let routes = routes.fallback(json::not_found);
    // In front of the router, in this order (`layered`): the port's checks,
    // then the RPCs' counts and times (only when `/metrics` shows them).
    let guarded = Layered(http_guard::Guarded(guard));
    let observed = Layered(prometheus::Observed { enabled: metrics_enabled });
    let mut builder = Server::builder().accept_http1(true).http2_max_header_list_size(MAX_METADATA_BYTES);
    if let Some(tls) = tls {
        builder = builder.tls_config(tls_config(tls)?)?;
    }
    builder
        .layer(guarded)
        .layer(observed)
        .add_routes(Routes::from(routes))
        // Small answers go out at once: without TCP_NODELAY, Nagle and delayed
        // ACKs add ~40 ms to every answer written in several pieces. Answers
        // finished together leave in one write (`coalesce`).
        .serve_with_incoming_shutdown(
            TcpIncoming::from(listener).with_nodelay(Some(true)).map(|accepted| accepted.map(coalesce::Coalesce::new)),
            shutdown,
        )
        .await?;
    Ok(())
}

/// gzip for browsers and other HTTP clients that accept it
/// (`Accept-Encoding`): the JSON answers (a dashboard's 52-week series of
/// three projects: 200 kB, 37 kB compressed) and the dashboard's files, at
/// the fastest level. Not the refresh progress (`application/x-ndjson`),
/// which must leave line by line, nor gRPC or gRPC-Web (`DefaultPredicate`),
/// which have their own compression.
fn http_gzip() -> CompressionLayer<impl Predicate> {
    CompressionLayer::new()
        .no_br()
        .no_deflate()
        .no_zstd()
        .quality(CompressionLevel::Fastest)
        .compress_when(DefaultPredicate::new().and(NotForContentType::const_new("application/x-ndjson")))
}
