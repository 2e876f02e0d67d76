//! `GetMetrics` over gRPC (and gRPC-Web) with the answer sent as the bytes
//! `Service::get_metrics_encoded` returns: a remembered answer goes out as
//! it is, never decoded, encoded or copied again (tonic's encoder would copy
//! it into a fresh buffer for every answer). The route sits in front of the
//! generated `DoraMetrics` service for this one method; the request is
//! decoded by tonic, size-limited and refused exactly as by the generated
//! code, and errors are sent as tonic sends them; only the answer's body is
//! written here: the message (`Answer::grpc_message`), then the trailers.
//! A client that accepts gzip (`grpc-accept-encoding`) gets a large
//! remembered answer compressed, from bytes deflated once (`gzip`).

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;
use axum::routing::post;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, header};
use http_body::Frame;
use tonic::Status;
use tonic::codec::Streaming;
use tonic::metadata::MetadataMap;
use tonic_web::GrpcWebLayer;

use super::answers::{Answer, GrpcMessage};
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
    let gzip = accepts_gzip(request.headers());
    let answer = match decode(request, max_request_bytes).await {
        Ok(request) => service.get_metrics_encoded(request, gzip).await.and_then(Answer::grpc_message),
        Err(refused) => Err(refused),
    };
    match answer {
        Ok(GrpcMessage { pieces, encoding }) => {
            let mut response = Response::new(Body::new(Message { pieces, trailers: true }));
            let headers = response.headers_mut();
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
            if let Some(encoding) = encoding {
                headers.insert("grpc-encoding", HeaderValue::from_static(encoding));
            }
            response
        }
        Err(status) => status.into_http(),
    }
}

/// Whether the client lists gzip in `grpc-accept-encoding`.
fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers
        .get_all("grpc-accept-encoding")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|e| e.trim().eq_ignore_ascii_case("gzip"))
}

/// The request as tonic's generated server decodes it: no compression
/// accepted, at most `max_request_bytes`, exactly one message.
async fn decode(request: Request, max_request_bytes: usize) -> Result<tonic::Request<GetMetricsRequest>, Status> {
    if let Some(encoding) = request.headers().get("grpc-encoding").filter(|e| *e != "identity") {
        return Err(Status::unimplemented(format!(
            "Content is compressed with `{}` which isn't supported",
            encoding.to_str().unwrap_or("?")
        )));
    }
    let (parts, body) = request.into_parts();
    let mut messages =
        Streaming::new_request(ProtoDecoder::<GetMetricsRequest>::default(), body, None, Some(max_request_bytes));
    let message = messages.message().await?.ok_or_else(|| Status::internal("Missing request message."))?;
    Ok(tonic::Request::from_parts(MetadataMap::from_headers(parts.headers), parts.extensions, message))
}

/// The body of a successful answer: its pieces, then `grpc-status: 0`.
/// Its size stays unknown (no `content-length`): gRPC-Web sends the
/// trailers as data after it.
struct Message {
    pieces: [Option<Bytes>; 3],
    trailers: bool,
}

impl http_body::Body for Message {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if let Some(piece) = self.pieces.iter_mut().find_map(Option::take) {
            return Poll::Ready(Some(Ok(Frame::data(piece))));
        }
        if std::mem::take(&mut self.trailers) {
            let mut trailers = HeaderMap::with_capacity(1);
            trailers.insert("grpc-status", HeaderValue::from_static("0"));
            return Poll::Ready(Some(Ok(Frame::trailers(trailers))));
        }
        Poll::Ready(None)
    }

    fn is_end_stream(&self) -> bool {
        !self.trailers
    }
}
