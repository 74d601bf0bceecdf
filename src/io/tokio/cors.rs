//! [`Cors`]: the reference's `cors` option, with the semantics of the `cors` npm package it
//! hands that option to (the origin, credentials, methods, allowed and exposed headers, max
//! age, and the preflight answered with 204).

use hyper::header::{self, HeaderMap, HeaderName, HeaderValue};
use std::sync::Arc;
use std::time::Duration;

/// Which origins a cross-origin browser client may connect from (`cors.origin`).
#[derive(Clone)]
#[non_exhaustive]
pub enum AllowOrigin {
    /// `"*"` (the `cors` package's default): any origin, without `Vary: Origin`. Browsers
    /// refuse `*` for a request with credentials: use [`Mirror`](Self::Mirror) then.
    Any,
    /// One fixed origin (`origin: "https://example.com"`), sent whatever the request's origin
    /// is (the browser refuses the others), with `Vary: Origin`.
    Exact(String),
    /// Several origins (`origin: [...]`): a request from one of them gets its own origin back;
    /// any other gets no `Access-Control-Allow-Origin`, so the browser refuses it.
    List(Vec<String>),
    /// `origin: true`: every origin is reflected (allowed), with `Vary: Origin`.
    Mirror,
    /// `origin: (origin, cb) => cb(null, allowed)`: the predicate decides from the request's
    /// `Origin` (called only when it has one). `true` reflects the origin; `false` leaves
    /// CORS out of the request altogether (no `Access-Control-*` headers, and a preflight is
    /// not answered by CORS: the request goes on to Engine.IO, which refuses an `OPTIONS`), as
    /// the `cors` package does. Synchronous, unlike the package's callback; it runs on the
    /// request's task, so it must not block. A panicking predicate counts as `false`.
    Predicate(Arc<dyn Fn(&str) -> bool + Send + Sync>),
}

impl std::fmt::Debug for AllowOrigin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AllowOrigin::Any => f.write_str("Any"),
            AllowOrigin::Exact(o) => f.debug_tuple("Exact").field(o).finish(),
            AllowOrigin::List(l) => f.debug_tuple("List").field(l).finish(),
            AllowOrigin::Mirror => f.write_str("Mirror"),
            AllowOrigin::Predicate(_) => f.write_str("Predicate(..)"),
        }
    }
}

/// CORS for the Engine.IO path, as the reference's `cors` option (which it hands to the
/// `cors` npm package, whose semantics these are). Set it with
/// [`Options::cors`](super::Options::cors); without it (the reference default) no CORS header
/// is sent and a preflight is refused like any other `OPTIONS`.
///
/// Every response of the path (errors included, so a browser client can read a refusal)
/// carries `Access-Control-Allow-Origin` (when the origin is allowed), `Vary: Origin` (unless
/// the origin is `*`), `Access-Control-Allow-Credentials: true` (with
/// [`credentials`](Self::credentials)) and `Access-Control-Expose-Headers` (with
/// [`exposed_headers`](Self::exposed_headers)). A preflight (`OPTIONS`) is answered at once
/// with 204 and those headers, plus `Access-Control-Allow-Methods`,
/// `Access-Control-Allow-Headers` (the configured ones, else the request's
/// `Access-Control-Request-Headers` reflected, with `Vary: Access-Control-Request-Headers`)
/// and `Access-Control-Max-Age` (with [`max_age`](Self::max_age)).
///
/// ```
/// use roomcast::io::tokio::{Cors, Options};
/// use std::time::Duration;
/// // cors: { origin: ["https://a.example", "https://b.example"], credentials: true }
/// let options = Options::default().cors(
///     Cors::origins(["https://a.example", "https://b.example"])
///         .credentials(true)
///         .max_age(Duration::from_secs(600)),
/// );
/// // cors: { origin: (origin, cb) => cb(null, origin.endsWith(".example")) }
/// let options = Options::default().cors(Cors::predicate(|o| o.ends_with(".example")));
/// ```
#[derive(Debug, Clone)]
pub struct Cors {
    origin: AllowOrigin,
    credentials: bool,
    methods: String,
    allowed_headers: Option<String>,
    exposed_headers: Option<String>,
    max_age: Option<Duration>,
}

impl Default for Cors {
    /// The `cors` package's defaults: origin `*`, methods `GET,HEAD,PUT,PATCH,POST,DELETE`,
    /// no credentials, the request's headers reflected.
    fn default() -> Self {
        Cors {
            origin: AllowOrigin::Any,
            credentials: false,
            methods: "GET,HEAD,PUT,PATCH,POST,DELETE".into(),
            allowed_headers: None,
            exposed_headers: None,
            max_age: None,
        }
    }
}

/// What CORS makes of one request.
pub(crate) enum Decision {
    /// CORS leaves the request alone (a predicate said no).
    Skip,
    /// Add these headers to the answer.
    Headers(HeaderMap),
    /// A preflight: answer 204 with these headers, do not go further.
    Preflight(HeaderMap),
}

impl Cors {
    /// The defaults (origin `*`); see [`Default`].
    pub fn new() -> Self {
        Self::default()
    }

    /// Any origin (`origin: "*"`).
    pub fn any() -> Self {
        Self::default()
    }

    /// One fixed origin (`origin: "https://example.com"`).
    pub fn origin(origin: impl Into<String>) -> Self {
        Self::with_origin(AllowOrigin::Exact(origin.into()))
    }

    /// Several origins (`origin: [...]`), each reflected when it is the request's.
    pub fn origins<I, S>(origins: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self::with_origin(AllowOrigin::List(
            origins.into_iter().map(Into::into).collect(),
        ))
    }

    /// Every origin reflected (`origin: true`): what a page with credentials needs.
    pub fn mirror() -> Self {
        Self::with_origin(AllowOrigin::Mirror)
    }

    /// The request's origin decides (`origin: function`); see [`AllowOrigin::Predicate`].
    pub fn predicate(f: impl Fn(&str) -> bool + Send + Sync + 'static) -> Self {
        Self::with_origin(AllowOrigin::Predicate(Arc::new(f)))
    }

    /// Any [`AllowOrigin`].
    pub fn with_origin(origin: AllowOrigin) -> Self {
        Cors {
            origin,
            ..Self::default()
        }
    }

    /// `credentials: true`: sends `Access-Control-Allow-Credentials: true` (cookies and
    /// `withCredentials` requests). Off by default.
    pub fn credentials(mut self, on: bool) -> Self {
        self.credentials = on;
        self
    }

    /// `methods`: what a preflight allows. Default `GET,HEAD,PUT,PATCH,POST,DELETE`.
    pub fn methods<I, S>(mut self, methods: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        self.methods = join(methods);
        self
    }

    /// `allowedHeaders`: the request headers a preflight allows. By default the request's own
    /// `Access-Control-Request-Headers` are reflected.
    pub fn allowed_headers<I, S>(mut self, headers: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        self.allowed_headers = Some(join(headers));
        self
    }

    /// `exposedHeaders`: response headers the page's script may read. None by default.
    pub fn exposed_headers<I, S>(mut self, headers: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        self.exposed_headers = Some(join(headers)).filter(|h| !h.is_empty());
        self
    }

    /// `maxAge`: how long a browser may cache a preflight's answer (whole seconds). None by
    /// default (the browser's own default).
    pub fn max_age(mut self, age: Duration) -> Self {
        self.max_age = Some(age);
        self
    }

    /// What to do with a request with these headers.
    pub(crate) fn decide(&self, req: &HeaderMap, preflight: bool) -> Decision {
        let origin = req.get(header::ORIGIN);
        let mut h = HeaderMap::new();
        let mut vary: Vec<&'static str> = Vec::new();
        match &self.origin {
            AllowOrigin::Any => {
                h.insert(
                    header::ACCESS_CONTROL_ALLOW_ORIGIN,
                    HeaderValue::from_static("*"),
                );
            }
            AllowOrigin::Exact(o) => {
                if let Ok(v) = HeaderValue::from_str(o) {
                    h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, v);
                }
                vary.push("Origin");
            }
            AllowOrigin::List(list) => {
                let allowed = origin
                    .and_then(|o| o.to_str().ok())
                    .is_some_and(|o| list.iter().any(|l| l == o));
                if let (true, Some(o)) = (allowed, origin) {
                    h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, o.clone());
                }
                vary.push("Origin");
            }
            AllowOrigin::Mirror => {
                if let Some(o) = origin {
                    h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, o.clone());
                }
                vary.push("Origin");
            }
            AllowOrigin::Predicate(f) => {
                if let Some(o) = origin {
                    let text = String::from_utf8_lossy(o.as_bytes());
                    let f = f.clone();
                    let allowed =
                        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(&text)))
                            .unwrap_or_else(|_| {
                                tracing::error!(
                                    "the CORS origin predicate panicked: origin refused"
                                );
                                false
                            });
                    if !allowed {
                        return Decision::Skip;
                    }
                    h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, o.clone());
                }
                vary.push("Origin");
            }
        }
        if self.credentials {
            h.insert(
                header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
                HeaderValue::from_static("true"),
            );
        }
        if preflight {
            put(&mut h, header::ACCESS_CONTROL_ALLOW_METHODS, &self.methods);
            match &self.allowed_headers {
                Some(a) => put(&mut h, header::ACCESS_CONTROL_ALLOW_HEADERS, a),
                None => {
                    vary.push("Access-Control-Request-Headers");
                    if let Some(v) = req.get(header::ACCESS_CONTROL_REQUEST_HEADERS) {
                        if !v.is_empty() {
                            h.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, v.clone());
                        }
                    }
                }
            }
            if let Some(age) = self.max_age {
                h.insert(header::ACCESS_CONTROL_MAX_AGE, age.as_secs().into());
            }
        }
        if let Some(e) = &self.exposed_headers {
            put(&mut h, header::ACCESS_CONTROL_EXPOSE_HEADERS, e);
        }
        if !vary.is_empty() {
            put(&mut h, header::VARY, &vary.join(", "));
        }
        if preflight {
            Decision::Preflight(h)
        } else {
            Decision::Headers(h)
        }
    }
}

fn join<I, S>(items: I) -> String
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    let mut out = String::new();
    for (i, s) in items.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(s.as_ref());
    }
    out
}

/// Inserts a header whose value came from the application; one that is not a valid header
/// value is left out (logged), never a panic.
fn put(h: &mut HeaderMap, name: HeaderName, value: &str) {
    if value.is_empty() {
        return;
    }
    match HeaderValue::from_str(value) {
        Ok(v) => {
            h.insert(name, v);
        }
        Err(_) => tracing::warn!(%name, "invalid CORS header value left out"),
    }
}
