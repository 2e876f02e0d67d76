//! `GetMetrics` over gRPC (and gRPC-Web) with the answer sent as the bytes
//! `Service::get_metrics_encoded` returns: a remembered answer is copied
//! out as it is, never decoded and encoded again. The route sits in front
//! of the generated `DoraMetrics` service for this one method; the request
//! is decoded, size-limited and answered exactly as the generated code
//! does, only the response codec differs.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::response::Response;
use axum::routing::post;
use axum::Router;
use tonic::codec::{Codec, EncodeBuf, Encoder};
use tonic::server::{Grpc, UnaryService};
use tonic::Status;
use tonic_web::GrpcWebLayer;

use super::answers::Answer;
use super::codec::ProtoDecoder;
use super::service::Service;
use crate::proto::GetMetricsRequest;

/// The path of the method.
const PATH: &str = "/dora.v1.DoraMetrics/GetMetrics";

/// The route, for gRPC and gRPC-Web; requests larger than `max_request_bytes`
/// are refused as by the generated service.
pub fn router(service: Arc<Service>, max_request_bytes: usize) -> Router {
    Router::new().route(PATH, post(get_metrics)).with_state((service, max_request_bytes)).layer(GrpcWebLayer::new())
}

async fn get_metrics(State((service, max_request_bytes)): State<(Arc<Service>, usize)>, request: Request) -> Response {
    let mut grpc = Grpc::new(AnswerCodec).apply_max_message_size_config(Some(max_request_bytes), None);
    grpc.unary(GetMetrics(service), request).await.map(axum::body::Body::new)
}

struct GetMetrics(Arc<Service>);

impl UnaryService<GetMetricsRequest> for GetMetrics {
    type Response = Answer;
    type Future = std::pin::Pin<Box<dyn Future<Output = Result<tonic::Response<Answer>, Status>> + Send>>;

    fn call(&mut self, request: tonic::Request<GetMetricsRequest>) -> Self::Future {
        let service = Arc::clone(&self.0);
        Box::pin(async move { service.get_metrics_encoded(request).await.map(tonic::Response::new) })
    }
}

/// Requests decoded as by the generated service (`codec`); answers already
/// encoded.
struct AnswerCodec;

impl Codec for AnswerCodec {
    type Encode = Answer;
    type Decode = GetMetricsRequest;
    type Encoder = Verbatim;
    type Decoder = ProtoDecoder<GetMetricsRequest>;

    fn encoder(&mut self) -> Verbatim {
        Verbatim
    }

    fn decoder(&mut self) -> Self::Decoder {
        ProtoDecoder::default()
    }
}

/// Writes an encoded message as it is.
struct Verbatim;

impl Encoder for Verbatim {
    type Item = Answer;
    type Error = Status;

    fn encode(&mut self, item: Answer, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        item.write_to(dst);
        Ok(())
    }
}
