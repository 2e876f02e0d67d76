//! The port's layers in front of the router, in the order a request meets
//! them: [`http_guard::Guarded`](super::http_guard::Guarded) (refusals) and
//! [`prometheus::Observed`](super::prometheus::Observed) (each RPC counted
//! and timed, when metrics are on). Plain tower services: no per-request
//! cloning or boxing of the inner service, as `axum::middleware::from_fn`
//! costs.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use tonic::body::Body;
use tonic::codegen::{BoxFuture, Service};
use tower_layer::Layer;

/// What one of the port's layers does with a request: passes it on to
/// `inner` (the next layer, or the router) or answers it itself.
pub trait Decide: Clone {
    fn decide<S>(&self, inner: &mut S, request: http::Request<Body>) -> PassOrHere<S::Future>
    where
        S: Service<http::Request<Body>, Response = http::Response<Body>, Error = Infallible>,
        S::Future: Send + 'static;
}

/// `decide` as a layer.
#[derive(Clone)]
pub struct Layered<D>(pub D);

impl<D: Decide, S> Layer<S> for Layered<D> {
    type Service = InFront<D, S>;

    fn layer(&self, inner: S) -> InFront<D, S> {
        InFront { decide: self.0.clone(), inner }
    }
}

/// A [`Decide`] in front of the service `inner`.
#[derive(Clone)]
pub struct InFront<D, S> {
    decide: D,
    inner: S,
}

impl<D: Decide, S> Service<http::Request<Body>> for InFront<D, S>
where
    S: Service<http::Request<Body>, Response = http::Response<Body>, Error = Infallible>,
    S::Future: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = PassOrHere<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        self.decide.decide(&mut self.inner, request)
    }
}

pin_project_lite::pin_project! {
    /// The future of a layer: the inner service's as it is, or one the
    /// layer answers (or wraps) itself.
    #[project = PassOrHereProj]
    pub enum PassOrHere<F> {
        Pass { #[pin] future: F },
        Here { future: BoxFuture<http::Response<Body>, Infallible> },
    }
}

impl<F> PassOrHere<F> {
    /// The layer's own answer.
    pub fn here(answer: impl Future<Output = http::Response<Body>> + Send + 'static) -> Self {
        PassOrHere::Here { future: Box::pin(async move { Ok(answer.await) }) }
    }
}

impl<F: Future<Output = Result<http::Response<Body>, Infallible>>> Future for PassOrHere<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        match self.project() {
            PassOrHereProj::Pass { future } => future.poll(cx),
            PassOrHereProj::Here { future } => future.as_mut().poll(cx),
        }
    }
}

/// The response of a future that cannot fail.
pub async fn infallible(
    future: impl Future<Output = Result<http::Response<Body>, Infallible>>,
) -> http::Response<Body> {
    match future.await {
        Ok(response) => response,
        Err(never) => match never {},
    }
}
