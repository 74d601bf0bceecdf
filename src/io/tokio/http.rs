//! The HTTP side: a hyper service for the Engine.IO path (long-polling and the WebSocket
//! upgrade), and an accept loop with graceful shutdown.

use super::driver::Cmd;
use super::{ws, SocketIo};
use crate::{HttpAction, HttpResponse, Method, RequestId};
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use tokio::sync::oneshot;

/// The response body type of [`IoService`].
pub type Body = Full<Bytes>;

type Fallback = Arc<
    dyn Fn(Request<Incoming>) -> Pin<Box<dyn Future<Output = Response<Body>> + Send>> + Send + Sync,
>;

/// A hyper service for the Engine.IO path (requests elsewhere get 404). It takes any request
/// body type, so it mounts as it is in an existing hyper or axum application
/// (`Router::route_service("/socket.io/", io.service())`), or serves alone with
/// [`SocketIo::serve`]. [`with_fallback`](Self::with_fallback) puts another handler behind it.
pub struct IoService<D> {
    io: SocketIo<D>,
}

impl<D> Clone for IoService<D> {
    fn clone(&self) -> Self {
        IoService {
            io: self.io.clone(),
        }
    }
}

/// An [`IoService`] with a handler for every request outside the Engine.IO path.
pub struct WithFallback<D> {
    io: IoService<D>,
    fallback: Fallback,
}

impl<D> Clone for WithFallback<D> {
    fn clone(&self) -> Self {
        WithFallback {
            io: self.io.clone(),
            fallback: self.fallback.clone(),
        }
    }
}

impl<D: Send + Sync + Clone + Default + 'static> IoService<D> {
    pub(crate) fn new(io: SocketIo<D>) -> Self {
        IoService { io }
    }

    /// Answers requests outside the Engine.IO path with `f` (a page, static files...).
    pub fn with_fallback<F, Fut>(self, f: F) -> WithFallback<D>
    where
        F: Fn(Request<Incoming>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Response<Body>> + Send + 'static,
    {
        WithFallback {
            io: self,
            fallback: Arc::new(move |r| Box::pin(f(r))),
        }
    }

    /// Whether a request is for the Engine.IO path.
    pub fn handles<B>(&self, req: &Request<B>) -> bool {
        req.uri().path().starts_with(self.io.options.path.as_str())
    }
}

impl<D: Send + Sync + Clone + Default + 'static> WithFallback<D> {
    /// Serves `listener` until `shutdown` completes.
    pub async fn serve(
        self,
        listener: tokio::net::TcpListener,
        shutdown: impl Future<Output = ()>,
    ) -> std::io::Result<()> {
        serve(self, listener, shutdown).await
    }
}

impl<D, B> hyper::service::Service<Request<B>> for IoService<D>
where
    D: Send + Sync + Clone + Default + 'static,
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, Infallible>> + Send>>;

    fn call(&self, req: Request<B>) -> Self::Future {
        if !self.handles(&req) {
            return Box::pin(async { Ok(status(StatusCode::NOT_FOUND)) });
        }
        let io = self.io.clone();
        Box::pin(async move { Ok(handle(io, req).await) })
    }
}

impl<D: Send + Sync + Clone + Default + 'static> hyper::service::Service<Request<Incoming>>
    for WithFallback<D>
{
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, Infallible>> + Send>>;

    fn call(&self, req: Request<Incoming>) -> Self::Future {
        if self.io.handles(&req) {
            return self.io.call(req);
        }
        let fallback = self.fallback.clone();
        Box::pin(async move { Ok(fallback(req).await) })
    }
}

fn status(code: StatusCode) -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::new()));
    *r.status_mut() = code;
    r
}

fn respond(io: &SocketIo<impl Sized>, r: HttpResponse) -> Response<Body> {
    let mut resp = Response::new(Full::new(r.body));
    *resp.status_mut() = StatusCode::from_u16(r.status).unwrap_or(StatusCode::BAD_REQUEST);
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(r.content_type),
    );
    if r.status == 413 {
        // The rest of the body is never read: close, so the client is not left writing into
        // a connection that will be reset.
        resp.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    cors(io, &mut resp);
    resp
}

fn cors(io: &SocketIo<impl Sized>, resp: &mut Response<Body>) {
    let Some(origin) = io.options.cors_origin.as_deref() else {
        return;
    };
    if let Ok(v) = HeaderValue::from_str(origin) {
        let h = resp.headers_mut();
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, v);
        if origin != "*" {
            h.insert(
                header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
                HeaderValue::from_static("true"),
            );
        }
    }
}

/// Tells the core a held GET is gone when hyper drops its future (the client went away).
struct AbortGuard<D> {
    io: SocketIo<D>,
    request: Option<RequestId>,
}

impl<D> Drop for AbortGuard<D> {
    fn drop(&mut self) {
        if let Some(r) = self.request.take() {
            let _ = self.io.cmd.send(Cmd::Aborted(r));
        }
    }
}

async fn handle<D, B>(io: SocketIo<D>, mut req: Request<B>) -> Response<Body>
where
    D: Send + Sync + Clone + Default + 'static,
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let method = match *req.method() {
        hyper::Method::GET => Method::Get,
        hyper::Method::POST => Method::Post,
        hyper::Method::OPTIONS if io.options.cors_origin.is_some() => {
            let mut r = status(StatusCode::NO_CONTENT);
            cors(&io, &mut r);
            let h = r.headers_mut();
            h.insert(
                header::ACCESS_CONTROL_ALLOW_METHODS,
                HeaderValue::from_static("GET, POST"),
            );
            h.insert(
                header::ACCESS_CONTROL_ALLOW_HEADERS,
                HeaderValue::from_static("content-type"),
            );
            return r;
        }
        _ => Method::Other,
    };
    let websocket = req
        .headers()
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    let content_length = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    let (tx, rx) = oneshot::channel();
    io.send(Cmd::Http {
        method,
        query: req.uri().query().unwrap_or_default().to_owned(),
        websocket,
        content_length,
        reply: tx,
    });
    let Ok((action, poll)) = rx.await else {
        return status(StatusCode::SERVICE_UNAVAILABLE);
    };
    match action {
        HttpAction::Respond(r) => respond(&io, r),
        HttpAction::ReadBody(request) => {
            let max = io.max_payload;
            let body = Limited::new(req.into_body(), max)
                .collect()
                .await
                .map(|c| c.to_bytes());
            let (tx, rx) = oneshot::channel();
            io.send(Cmd::PostBody {
                request,
                body: body.ok(),
                reply: tx,
            });
            match rx.await {
                Ok(r) => respond(&io, r),
                Err(_) => status(StatusCode::SERVICE_UNAVAILABLE),
            }
        }
        HttpAction::Hold(request) => {
            let mut guard = AbortGuard {
                io: io.clone(),
                request: Some(request),
            };
            let body = match poll {
                Some(rx) => rx.await.ok(),
                None => None,
            };
            guard.request = None;
            match body {
                Some(body) => respond(
                    &io,
                    HttpResponse {
                        status: 200,
                        content_type: "text/plain; charset=UTF-8",
                        body,
                    },
                ),
                None => status(StatusCode::SERVICE_UNAVAILABLE),
            }
        }
        HttpAction::AcceptAndClose => accept_and_close(req),
        HttpAction::AcceptWebSocket(conn) => {
            let key = req.headers().get(header::SEC_WEBSOCKET_KEY).cloned();
            let Some(key) = key else {
                io.send(Cmd::WsClosed { conn });
                return respond(&io, crate::RequestError::BadRequest.response());
            };
            let accept =
                tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes());
            let upgrade = hyper::upgrade::on(&mut req);
            let max = io.max_payload;
            let queue = io.options.ws_queue;
            let io2 = io.clone();
            tokio::spawn(async move {
                match upgrade.await {
                    Ok(upgraded) => ws::run(io2, conn, TokioIo::new(upgraded), max, queue).await,
                    Err(_) => io2.send(Cmd::WsClosed { conn }),
                }
            });
            switching_protocols(&accept)
        }
    }
}

/// Completes a WebSocket handshake the core refused, then closes that WebSocket at once (the
/// reference's answer to an upgrade of a session that upgraded or is upgrading).
fn accept_and_close<B>(mut req: Request<B>) -> Response<Body> {
    let Some(key) = req.headers().get(header::SEC_WEBSOCKET_KEY).cloned() else {
        return status(StatusCode::BAD_REQUEST);
    };
    let accept = tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes());
    let upgrade = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        if let Ok(upgraded) = upgrade.await {
            let mut ws = tokio_tungstenite::WebSocketStream::from_raw_socket(
                TokioIo::new(upgraded),
                tokio_tungstenite::tungstenite::protocol::Role::Server,
                None,
            )
            .await;
            let _ = ws.close(None).await;
        }
    });
    switching_protocols(&accept)
}

fn switching_protocols(accept: &str) -> Response<Body> {
    let mut r = status(StatusCode::SWITCHING_PROTOCOLS);
    let h = r.headers_mut();
    h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    if let Ok(v) = HeaderValue::from_str(accept) {
        h.insert(header::SEC_WEBSOCKET_ACCEPT, v);
    }
    r
}

/// Accepts connections and serves them with `service` until `shutdown` completes.
pub(crate) async fn serve<S>(
    service: S,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()>
where
    S: hyper::service::Service<Request<Incoming>, Response = Response<Body>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, _) = match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        // Out of descriptors and the like: keep serving the others.
                        tracing::warn!(%e, "accept failed");
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let svc = service.clone();
                tokio::spawn(async move {
                    let conn = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .with_upgrades();
                    if let Err(e) = conn.await {
                        tracing::trace!(%e, "http connection ended");
                    }
                });
            }
            () = &mut shutdown => return Ok(()),
        }
    }
}
