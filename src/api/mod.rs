//! The only module that knows tonic and HTTP serving: the gRPC service,
//! health and reflection on one port, conversions to protobuf, and the
//! mapping of errors to `tonic::Status`.

mod convert;
mod definitions;
mod impact;
pub mod service;

use std::future::Future;
use std::sync::Arc;

use tokio::net::TcpListener;
use tonic::transport::server::TcpIncoming;
use tonic::transport::Server;

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
    let dora = DoraMetricsServer::from_arc(Arc::new(service)).max_decoding_message_size(MAX_REQUEST_BYTES);
    Server::builder()
        .add_service(health_service)
        .add_service(reflection)
        .add_service(reflection_alpha)
        .add_service(dora)
        .serve_with_incoming_shutdown(TcpIncoming::from(listener), shutdown)
        .await?;
    Ok(())
}
