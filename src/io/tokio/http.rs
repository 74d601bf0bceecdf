//! The HTTP side: a hyper service for the Engine.IO path (long-polling and the WebSocket
//! upgrade), and an accept loop with graceful shutdown.

use super::cors::Decision;
use super::driver::Core;
use super::driver::{Cmd, HttpReply, Link, PostReply};
use super::{ws, ConnectionError, Options};
use crate::{HttpAction, HttpResponse, Method, RequestError, RequestId};
use bytes::{Buf, Bytes, BytesMut};
use futures_util::FutureExt as _;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::HeaderMap;
use hyper::header::{self, HeaderValue};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::sync::oneshot;

/// How long the rest of an oversized POST body may take to be read and thrown away.
const DISCARD_TIME: Duration = Duration::from_secs(10);

/// The response body type of [`IoService`].
pub type Body = Full<Bytes>;

type Fallback = Arc<
    dyn Fn(Request<Incoming>) -> Pin<Box<dyn Future<Output = Response<Body>> + Send>> + Send + Sync,
>;

/// A hyper service for the Engine.IO path (requests elsewhere get 404). It takes any request
/// body type, so it mounts as it is in an existing hyper or axum application
/// (`Router::route_service("/socket.io/", io.service())`), or serves alone with
/// [`SocketIo::serve`](super::SocketIo::serve). [`with_fallback`](Self::with_fallback) puts another handler behind it.
pub struct IoService<C: Core> {
    link: Link<C>,
    options: Arc<Options>,
    max_payload: usize,
}

impl<C: Core> Clone for IoService<C> {
    fn clone(&self) -> Self {
        IoService {
            link: self.link.clone(),
            options: self.options.clone(),
            max_payload: self.max_payload,
        }
    }
}

/// An [`IoService`] with a handler for every request outside the Engine.IO path.
pub struct WithFallback<C: Core> {
    io: IoService<C>,
    fallback: Fallback,
}

impl<C: Core> Clone for WithFallback<C> {
    fn clone(&self) -> Self {
        WithFallback {
            io: self.io.clone(),
            fallback: self.fallback.clone(),
        }
    }
}

impl<C: Core> IoService<C> {
    pub(crate) fn new(link: Link<C>, options: Arc<Options>, max_payload: usize) -> Self {
        IoService {
            link,
            options,
            max_payload,
        }
    }

    /// Answers requests outside the Engine.IO path with `f` (a page, static files...).
    pub fn with_fallback<F, Fut>(self, f: F) -> WithFallback<C>
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
        req.uri().path().starts_with(self.options.path.as_str())
    }
}

impl<C: Core> WithFallback<C> {
    /// Serves `listener` until `shutdown` completes.
    pub async fn serve(
        self,
        listener: tokio::net::TcpListener,
        shutdown: impl Future<Output = ()>,
    ) -> std::io::Result<()> {
        serve(self, listener, shutdown).await
    }
}

impl<C, B> hyper::service::Service<Request<B>> for IoService<C>
where
    C: Core,
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
        let io = self.clone();
        Box::pin(async move { Ok(handle(io, req).await) })
    }
}

/// The same service for tower stacks: axum's `Router::route_service`, tower layers. Always
/// ready; back-pressure happens per connection, inside.
impl<C, B> tower_service::Service<Request<B>> for IoService<C>
where
    C: Core,
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, Infallible>> + Send>>;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Infallible>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        hyper::service::Service::call(&*self, req)
    }
}

impl<C: Core> hyper::service::Service<Request<Incoming>> for WithFallback<C> {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, Infallible>> + Send>>;

    fn call(&self, req: Request<Incoming>) -> Self::Future {
        if self.io.handles(&req) {
            return hyper::service::Service::call(&self.io, req);
        }
        let fallback = self.fallback.clone();
        Box::pin(async move { Ok(fallback(req).await) })
    }
}

/// What a new session's handshake keeps of its request: headers, the peer's address (a
/// `SocketAddr` in the request's extensions: [`serve`] puts it there), the target, the time.
fn request_info<B>(req: &Request<B>) -> Box<crate::RequestInfo> {
    let address = req
        .extensions()
        .get::<std::net::SocketAddr>()
        .map(|a| a.ip().to_string());
    let url = req
        .uri()
        .path_and_query()
        .map_or_else(|| req.uri().path(), |p| p.as_str());
    let values: Vec<(&str, std::borrow::Cow<'_, str>)> = req
        .headers()
        .iter()
        .map(|(n, v)| (n.as_str(), String::from_utf8_lossy(v.as_bytes())))
        .collect();
    let mut info = crate::RequestInfo::new(
        url,
        address.as_deref(),
        values.iter().map(|(n, v)| (*n, v.as_ref())),
    );
    info.unix_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .ok()
        .and_then(|d| u64::try_from(d.as_millis()).ok());
    Box::new(info)
}

/// A connection's service with its peer's address put into every request's extensions.
#[derive(Clone)]
struct WithPeer<S> {
    inner: S,
    peer: std::net::SocketAddr,
}

impl<S> hyper::service::Service<Request<Incoming>> for WithPeer<S>
where
    S: hyper::service::Service<Request<Incoming>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn call(&self, mut req: Request<Incoming>) -> Self::Future {
        req.extensions_mut().insert(self.peer);
        self.inner.call(req)
    }
}

fn status(code: StatusCode) -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::new()));
    *r.status_mut() = code;
    r
}

fn respond(r: HttpResponse) -> Response<Body> {
    let mut resp = Response::new(Full::new(r.body));
    *resp.status_mut() = StatusCode::from_u16(r.status).unwrap_or(StatusCode::BAD_REQUEST);
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(r.content_type),
    );
    if r.status == 413 {
        // The session is gone and the body was at best thrown away: nothing more to say on
        // this connection.
        resp.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    resp
}

/// The head of a request (method, URI, version, headers, the peer's address), for the hooks.
fn head_of<B>(req: &Request<B>) -> Request<()> {
    let mut head = Request::new(());
    *head.method_mut() = req.method().clone();
    *head.uri_mut() = req.uri().clone();
    *head.version_mut() = req.version();
    *head.headers_mut() = req.headers().clone();
    if let Some(peer) = req.extensions().get::<std::net::SocketAddr>() {
        head.extensions_mut().insert(*peer);
    }
    head
}

/// What every answer to one request gets besides the core's: its CORS headers and the
/// application's hooks.
struct Answer<'a, C: Core> {
    io: &'a IoService<C>,
    /// The CORS headers, when CORS applies.
    cors: Option<HeaderMap>,
    /// A copy of the request's head, only when a hook wants it.
    head: Option<Request<()>>,
    /// The raw query, for a refusal's context.
    query: &'a str,
    /// No `sid`: a handshake.
    handshake: bool,
}

impl<C: Core> Answer<'_, C> {
    /// The core's answer, finished.
    fn reply(&self, r: HttpResponse) -> Response<Body> {
        let error = r.error;
        self.finish(respond(r), error, None)
    }

    /// A refusal by the adapter itself (`allow_request`), with the reference's answer.
    fn refuse(&self, e: RequestError, message: Option<&str>) -> Response<Body> {
        let r = match message {
            Some(m) => e.response_with_message(m),
            None => e.response(),
        };
        self.finish(respond(r), Some(e), message)
    }

    /// Adds the CORS headers; then tells `connection_error` of a refusal, or lets the
    /// headers hooks add theirs to a success.
    fn finish(
        &self,
        mut resp: Response<Body>,
        error: Option<RequestError>,
        message: Option<&str>,
    ) -> Response<Body> {
        if let Some(cors) = &self.cors {
            for (name, value) in cors {
                resp.headers_mut().insert(name, value.clone());
            }
        }
        let hooks = &self.io.options.hooks;
        let Some(head) = &self.head else {
            return resp;
        };
        if let Some(code) = error {
            if let Some(f) = &hooks.connection_error {
                let e = ConnectionError {
                    request: head_of(head),
                    code,
                    message: code.to_string(),
                    context: context(code, self.query, head.method(), message),
                };
                if std::panic::catch_unwind(AssertUnwindSafe(|| f(&e))).is_err() {
                    tracing::error!("the connection_error hook panicked");
                }
            }
            return resp;
        }
        let ok = resp.status().is_success() || resp.status() == StatusCode::SWITCHING_PROTOCOLS;
        if !ok {
            return resp;
        }
        let initial = hooks.initial_headers.as_ref().filter(|_| self.handshake);
        for (which, f) in [
            ("initial_headers", initial),
            ("headers", hooks.headers.as_ref()),
        ] {
            let Some(f) = f else { continue };
            let mut added = HeaderMap::new();
            if std::panic::catch_unwind(AssertUnwindSafe(|| f(&mut added, head))).is_err() {
                tracing::error!(
                    hook = which,
                    "a headers hook panicked: its headers are left out"
                );
                continue;
            }
            let mut last = None;
            for (name, value) in added {
                // `None` names repeat the previous one (several values of one header).
                if let Some(n) = name {
                    last = Some(n);
                }
                if let Some(n) = &last {
                    resp.headers_mut().append(n, value);
                }
            }
        }
        resp
    }
}

/// The reference's `context` of a refusal, from what the adapter knows of the request.
fn context(
    code: RequestError,
    query: &str,
    method: &hyper::Method,
    message: Option<&str>,
) -> serde_json::Value {
    let param = |key: &str| {
        query
            .split('&')
            .filter_map(|p| p.split_once('='))
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.to_owned())
    };
    let mut ctx = serde_json::Map::new();
    match code {
        RequestError::UnknownTransport => {
            ctx.insert("transport".into(), param("transport").into());
        }
        RequestError::UnknownSid => {
            ctx.insert("sid".into(), param("sid").into());
        }
        RequestError::BadHandshakeMethod => {
            ctx.insert("method".into(), method.as_str().into());
        }
        RequestError::Forbidden => {
            if let Some(m) = message {
                ctx.insert("message".into(), m.into());
            }
        }
        RequestError::UnsupportedProtocolVersion => {
            ctx.insert("protocol".into(), param("EIO").into());
        }
        RequestError::BadRequest => {}
    }
    serde_json::Value::Object(ctx)
}

/// Tells the core a held GET is gone when hyper drops its future (the client went away).
struct AbortGuard<C: Core> {
    link: Link<C>,
    request: Option<RequestId>,
}

impl<C: Core> Drop for AbortGuard<C> {
    fn drop(&mut self) {
        if let Some(r) = self.request.take() {
            self.link.input_detached(Cmd::Aborted(r));
        }
    }
}

/// A POST body, read with memory bounded by `max`.
enum BodyRead {
    Complete(Bytes),
    /// Larger than `max`; `drained` when the rest was read and thrown away, so the client is
    /// done sending and will read the answer.
    TooLarge {
        drained: bool,
    },
    Failed,
}

/// Reads a body up to `max` bytes; past that, reads and discards up to `discard` more bytes
/// (within [`DISCARD_TIME`]), keeping nothing.
async fn read_body<B>(body: B, max: usize, discard: usize) -> BodyRead
where
    B: hyper::body::Body + Send,
{
    let mut body = std::pin::pin!(body);
    let mut buf = BytesMut::new();
    let mut seen = 0usize;
    let mut deadline = None;
    loop {
        let next = body.frame();
        let frame = match deadline {
            None => next.await,
            Some(d) => match tokio::time::timeout_at(d, next).await {
                Ok(f) => f,
                Err(_) => return BodyRead::TooLarge { drained: false },
            },
        };
        let data = match frame {
            None => break,
            Some(Err(_)) => return BodyRead::Failed,
            Some(Ok(frame)) => match frame.into_data() {
                Ok(data) => data,
                Err(_) => continue, // trailers
            },
        };
        seen = seen.saturating_add(data.remaining());
        if seen <= max {
            let mut data = data;
            while data.has_remaining() {
                let n = data.chunk().len();
                buf.extend_from_slice(data.chunk());
                data.advance(n);
            }
        } else {
            if deadline.is_none() {
                buf = BytesMut::new();
                deadline = Some(tokio::time::Instant::now() + DISCARD_TIME);
            }
            if seen - max > discard {
                return BodyRead::TooLarge { drained: false };
            }
        }
    }
    if seen > max {
        BodyRead::TooLarge { drained: true }
    } else {
        BodyRead::Complete(buf.freeze())
    }
}

async fn handle<C, B>(io: IoService<C>, mut req: Request<B>) -> Response<Body>
where
    C: Core,
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let method = match *req.method() {
        hyper::Method::GET => Method::Get,
        hyper::Method::POST => Method::Post,
        _ => Method::Other,
    };
    let preflight = req.method() == hyper::Method::OPTIONS;
    let cors = match io
        .options
        .cors
        .as_ref()
        .map(|c| c.decide(req.headers(), preflight))
    {
        Some(Decision::Preflight(headers)) => {
            // Answered by CORS alone, as the `cors` package ends a preflight.
            let mut r = status(StatusCode::NO_CONTENT);
            r.headers_mut().extend(headers);
            return r;
        }
        Some(Decision::Headers(headers)) => Some(headers),
        Some(Decision::Skip) | None => None,
    };
    let hooks = &io.options.hooks;
    let wants_head = hooks.initial_headers.is_some()
        || hooks.headers.is_some()
        || hooks.connection_error.is_some();
    let query = req.uri().query().unwrap_or_default().to_owned();
    let handshake = !query.split('&').any(|p| p.starts_with("sid="));
    let answer = Answer {
        io: &io,
        cors,
        head: wants_head.then(|| head_of(&req)),
        query: &query,
        handshake,
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
    // Only a request that may open a session (no `sid`) is described for its handshake.
    let mut info = handshake.then(|| request_info(&req));
    // (`take` only with a hook: a tuple pattern would take it in any case.)
    if let Some((allow, described)) = hooks
        .allow_request
        .as_ref()
        .and_then(|allow| Some((allow, info.take()?)))
    {
        // The reference's own checks come first: a request they refuse never reaches the hook.
        let (tx, rx) = oneshot::channel();
        io.link
            .input(Cmd::Verify {
                method,
                query: query.clone(),
                websocket,
                reply: tx,
            })
            .await;
        match rx.await {
            Err(_) => return status(StatusCode::SERVICE_UNAVAILABLE),
            Ok(Err(e)) => return answer.refuse(e, None),
            Ok(Ok(())) => {}
        }
        let shared: Arc<crate::RequestInfo> = Arc::from(described);
        let verdict = match std::panic::catch_unwind(AssertUnwindSafe(|| allow(shared.clone()))) {
            Ok(fut) => AssertUnwindSafe(fut).catch_unwind().await,
            Err(p) => Err(p),
        };
        match verdict {
            Ok(Ok(())) => {}
            Ok(Err(forbidden)) => {
                return answer.refuse(RequestError::Forbidden, forbidden.message.as_deref())
            }
            Err(_) => {
                tracing::error!("the allow_request hook panicked: request refused");
                return answer.refuse(RequestError::Forbidden, None);
            }
        }
        info = Some(Box::new(
            Arc::try_unwrap(shared).unwrap_or_else(|a| (*a).clone()),
        ));
    }
    let (tx, rx) = oneshot::channel();
    io.link
        .input(Cmd::Http {
            method,
            query: query.clone(),
            websocket,
            content_length,
            info,
            reply: tx,
        })
        .await;
    let Ok(HttpReply {
        action,
        poll,
        credit,
    }) = rx.await
    else {
        return status(StatusCode::SERVICE_UNAVAILABLE);
    };
    match action {
        HttpAction::Respond(r) => {
            if r.status == 413 && method == Method::Post {
                // Refused on its Content-Length: still read the body away (up to the bound),
                // or the client, still sending, would see a reset instead of the answer.
                let within = content_length.is_none_or(|n| {
                    n <= (io.max_payload as u64).saturating_add(io.options.discard_limit as u64)
                });
                if within {
                    let _ = read_body(req.into_body(), 0, io.options.discard_limit).await;
                }
            }
            answer.reply(r)
        }
        HttpAction::ReadBody(request) => {
            let mut guard = AbortGuard {
                link: io.link.clone(),
                request: Some(request),
            };
            let body =
                match read_body(req.into_body(), io.max_payload, io.options.discard_limit).await {
                    BodyRead::Complete(b) => Some(b),
                    BodyRead::TooLarge { drained } => {
                        if !drained {
                            tracing::debug!("oversized POST body past the discard bound");
                        }
                        None
                    }
                    BodyRead::Failed => {
                        // The client went away mid-body: the guard tells the core.
                        return status(StatusCode::BAD_REQUEST);
                    }
                };
            guard.request = None;
            let (tx, rx) = oneshot::channel();
            io.link
                .input(Cmd::PostBody {
                    request,
                    body,
                    reply: tx,
                })
                .await;
            let Ok(PostReply { response, owed }) = rx.await else {
                return status(StatusCode::SERVICE_UNAVAILABLE);
            };
            if let Some(owed) = owed {
                // Events past the connection's credit were queued anyway (nothing is dropped);
                // answering only once there is room for them keeps the client's next POST back.
                owed.credit.wait_room(owed.events, owed.bytes).await;
            }
            answer.reply(response)
        }
        HttpAction::Hold(request) => {
            let mut guard = AbortGuard {
                link: io.link.clone(),
                request: Some(request),
            };
            let body = match poll {
                Some(rx) => rx.await.ok(),
                None => None,
            };
            guard.request = None;
            match body {
                Some(body) => answer.reply(HttpResponse {
                    status: 200,
                    content_type: "text/plain; charset=UTF-8",
                    body,
                    error: None,
                }),
                None => status(StatusCode::SERVICE_UNAVAILABLE),
            }
        }
        HttpAction::AcceptAndClose => answer.finish(accept_and_close(req), None, None),
        HttpAction::AcceptWebSocket(conn) => {
            let key = req.headers().get(header::SEC_WEBSOCKET_KEY).cloned();
            let (Some(key), Some(credit)) = (key, credit) else {
                io.link.input(Cmd::WsClosed { conn }).await;
                return answer.reply(RequestError::BadRequest.response());
            };
            let accept = accept_key(key.as_bytes());
            let upgrade = hyper::upgrade::on(&mut req);
            let params = ws::WsParams {
                max_payload: io.max_payload,
                queue: io.options.ws_queue,
                credit,
            };
            let link = io.link.clone();
            tokio::spawn(async move {
                match upgrade.await.ok().and_then(ws::upgraded_stream) {
                    Some((stream, early)) => ws::run(link, conn, stream, early, params).await,
                    None => link.input(Cmd::WsClosed { conn }).await,
                }
            });
            answer.finish(switching_protocols(&accept), None, None)
        }
    }
}

/// Completes a WebSocket handshake the core refused, then closes that WebSocket at once (the
/// reference's answer to an upgrade of a session that upgraded or is upgrading).
fn accept_and_close<B>(mut req: Request<B>) -> Response<Body> {
    let Some(key) = req.headers().get(header::SEC_WEBSOCKET_KEY).cloned() else {
        return status(StatusCode::BAD_REQUEST);
    };
    let accept = accept_key(key.as_bytes());
    let upgrade = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        if let Ok(upgraded) = upgrade.await {
            let mut io = TokioIo::new(upgraded);
            let close = crate::io::websocket::close_frame(None);
            if io.write_all(&close).await.is_ok() {
                let _ = io.shutdown().await;
            }
        }
    });
    switching_protocols(&accept)
}

/// `Sec-WebSocket-Accept` for a client's `Sec-WebSocket-Key` (RFC 6455 §4.2.2).
fn accept_key(key: &[u8]) -> String {
    use base64::Engine as _;
    use sha1::Digest as _;
    let mut h = sha1::Sha1::new();
    h.update(key);
    h.update(b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11");
    base64::engine::general_purpose::STANDARD.encode(h.finalize())
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

/// Serves the Engine.IO path with `service` until `shutdown` completes, then closes every
/// connection of its core gracefully (each client is told with an Engine.IO `close` packet).
pub(crate) async fn serve_and_close<C: Core>(
    service: IoService<C>,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let link = service.link.clone();
    serve(service, listener, shutdown).await?;
    link.shutdown().await;
    Ok(())
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
                let (stream, peer) = match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        // Out of descriptors and the like: keep serving the others.
                        tracing::warn!(%e, "accept failed");
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let svc = WithPeer { inner: service.clone(), peer };
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
