//! The only module that knows tonic and HTTP serving: the gRPC service,
//! health and reflection on one port, conversions to protobuf, and the
//! mapping of errors to `tonic::Status`. The same port also serves gRPC-Web
//! (for the gRPC services that support it), the HTTP/JSON mapping
//! ([`json`]) and the dashboard ([`dashboard`]); other paths get HTTP 404.

mod convert;
pub mod dashboard;
mod impact;
pub mod json;
pub mod service;

use std::future::Future;
use std::sync::Arc;

use tokio::net::TcpListener;
use tonic::service::Routes;
use tonic::transport::server::TcpIncoming;
use tonic::transport::Server;
use tonic_web::GrpcWebLayer;
use tower_layer::Layer;

use crate::proto::dora_metrics_server::DoraMetricsServer;
use crate::proto::FILE_DESCRIPTOR_SET;
pub use service::Service;

/// Largest request message accepted.
pub const MAX_REQUEST_BYTES: usize = 64 * 1024;

/// Serves the API on a bound listener until `shutdown` completes.
pub async fn serve(listener: TcpListener, service: Service, shutdown: impl Future<Output = ()> + Send) -> anyhow::Result<()> {
    let (health_reporter, health_service) = tonic_health::server::health_reporter();
    health_reporter.set_serving::<DoraMetricsServer<Service>>().await;
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()?;
    let reflection_alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1alpha()?;
    let service = Arc::new(service);
    let dora = DoraMetricsServer::from_arc(Arc::clone(&service)).max_decoding_message_size(MAX_REQUEST_BYTES);
    // gRPC-Web per service, never on the whole server (it would turn every
    // other HTTP/1.1 request into a 400); reflection streams both ways, which
    // gRPC-Web cannot.
    let routes = Routes::new(GrpcWebLayer::new().layer(health_service))
        .add_service(reflection)
        .add_service(reflection_alpha)
        .add_service(GrpcWebLayer::new().layer(dora))
        .into_axum_router()
        .merge(json::router(service))
        .merge(dashboard::router())
        .fallback(json::not_found);
    Server::builder()
        .accept_http1(true)
        .add_routes(Routes::from(routes))
        .serve_with_incoming_shutdown(TcpIncoming::from(listener), shutdown)
        .await?;
    Ok(())
}
