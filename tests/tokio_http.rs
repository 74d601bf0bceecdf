//! The HTTP-level options of the tokio adapter on a real socket (127.0.0.1): CORS as the
//! reference's `cors` option, `allow_request`, the `initial_headers` / `headers` hooks,
//! `connection_error`, `transports`, and the reference defaults. Every test is bounded in time.
#![cfg(feature = "tokio")]

use roomcast::io::tokio::{ConnectionError, Cors, Forbidden, Options, SocketIo};
use roomcast::{Config, RequestError, Transports};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::timeout;

const LIMIT: Duration = Duration::from_secs(20);
const HANDSHAKE: &str = "/socket.io/?EIO=4&transport=polling";

async fn serve(config: Config, options: Options) -> SocketAddr {
    let io: SocketIo = SocketIo::new(config, options);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { io.serve(listener, std::future::pending()).await });
    addr
}

#[derive(Debug)]
struct Resp {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Resp {
    /// The values of header `name` (lowercase), in order.
    fn all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.all(name).first().copied()
    }

    /// The sid of a handshake's open packet.
    fn sid(&self) -> String {
        let open: serde_json::Value = serde_json::from_str(&self.body[1..]).unwrap();
        open["sid"].as_str().unwrap().to_owned()
    }
}

/// One HTTP/1.1 request on its own connection.
async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Resp {
    timeout(LIMIT, async {
        let mut s = TcpStream::connect(addr).await.unwrap();
        let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
        for (n, v) in headers {
            head.push_str(&format!("{n}: {v}\r\n"));
        }
        if method == "POST" {
            head.push_str(&format!(
                "Content-Type: text/plain;charset=UTF-8\r\nContent-Length: {}\r\n",
                body.len()
            ));
        }
        head.push_str("\r\n");
        s.write_all(head.as_bytes()).await.unwrap();
        s.write_all(body.as_bytes()).await.unwrap();
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).await.unwrap();
        let text = String::from_utf8_lossy(&raw).into_owned();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        let mut lines = head.lines();
        let status = lines
            .next()
            .unwrap()
            .split(' ')
            .nth(1)
            .unwrap()
            .parse()
            .unwrap();
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
            .collect();
        Resp {
            status,
            headers,
            body: body.to_owned(),
        }
    })
    .await
    .expect("no answer in time")
}

fn preflight(origin: &str) -> Vec<(&str, &str)> {
    vec![
        ("Origin", origin),
        ("Access-Control-Request-Method", "GET"),
        ("Access-Control-Request-Headers", "x-token"),
    ]
}

fn error_body(code: u8, message: &str) -> String {
    serde_json::json!({ "code": code, "message": message }).to_string()
}

#[tokio::test]
async fn defaults_are_the_references() {
    // socket.io 4.8 / engine.io 6: pingInterval 25000, pingTimeout 20000, upgradeTimeout
    // 10000, maxHttpBufferSize 1e6, transports ["polling","websocket"], allowUpgrades true,
    // path "/socket.io/", connectTimeout 45000, cors off.
    let c = Config::default();
    assert_eq!(c.ping_interval, Duration::from_millis(25_000));
    assert_eq!(c.ping_timeout, Duration::from_millis(20_000));
    assert_eq!(c.upgrade_timeout, Duration::from_millis(10_000));
    assert_eq!(c.connect_timeout, Duration::from_millis(45_000));
    assert_eq!(c.limits.max_payload, 1_000_000);
    assert_eq!(c.transports, Transports::ALL);
    assert!(c.allow_upgrades);
    let o = Options::default();
    assert_eq!(o.path, "/socket.io/");
    assert!(o.cors.is_none());

    // And on the wire: the handshake announces them, no CORS header, OPTIONS refused.
    let addr = serve(Config::default(), Options::default()).await;
    let r = request(addr, "GET", HANDSHAKE, &[("Origin", "http://a.test")], "").await;
    assert_eq!(r.status, 200);
    let open: serde_json::Value = serde_json::from_str(&r.body[1..]).unwrap();
    assert_eq!(open["pingInterval"], 25_000);
    assert_eq!(open["pingTimeout"], 20_000);
    assert_eq!(open["maxPayload"], 1_000_000);
    assert_eq!(open["upgrades"], serde_json::json!(["websocket"]));
    assert_eq!(r.get("access-control-allow-origin"), None);
    let r = request(addr, "OPTIONS", HANDSHAKE, &preflight("http://a.test"), "").await;
    assert_eq!(
        (r.status, r.body.clone()),
        (400, error_body(2, "Bad handshake method"))
    );
    assert_eq!(r.get("access-control-allow-origin"), None);
}

#[tokio::test]
async fn a_preflight_from_an_allowed_origin_gets_204_and_the_headers() {
    let cors = Cors::origin("http://app.test").credentials(true);
    let addr = serve(Config::default(), Options::default().cors(cors)).await;
    let r = request(
        addr,
        "OPTIONS",
        HANDSHAKE,
        &preflight("http://app.test"),
        "",
    )
    .await;
    assert_eq!(r.status, 204);
    assert_eq!(r.body, "");
    // (The `cors` package adds `Content-Length: 0`; hyper sends none with a 204, which has
    // no body by definition.)
    assert_eq!(
        r.get("access-control-allow-origin"),
        Some("http://app.test")
    );
    assert_eq!(r.get("access-control-allow-credentials"), Some("true"));
    assert_eq!(
        r.get("access-control-allow-methods"),
        Some("GET,HEAD,PUT,PATCH,POST,DELETE")
    );
    // No allowedHeaders: the request's are reflected.
    assert_eq!(r.get("access-control-allow-headers"), Some("x-token"));
    assert_eq!(
        r.get("vary"),
        Some("Origin, Access-Control-Request-Headers")
    );
    assert_eq!(r.get("access-control-max-age"), None);

    // The actual requests carry the origin headers, not the preflight-only ones.
    let r = request(addr, "GET", HANDSHAKE, &[("Origin", "http://app.test")], "").await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.get("access-control-allow-origin"),
        Some("http://app.test")
    );
    assert_eq!(r.get("access-control-allow-credentials"), Some("true"));
    assert_eq!(r.get("vary"), Some("Origin"));
    assert_eq!(r.get("access-control-allow-methods"), None);
    // A refusal carries them too, so the page can read it.
    let r = request(
        addr,
        "GET",
        "/socket.io/?EIO=4&transport=polling&sid=nope",
        &[("Origin", "http://app.test")],
        "",
    )
    .await;
    assert_eq!(
        (r.status, r.body.as_str()),
        (400, &*error_body(1, "Session ID unknown"))
    );
    assert_eq!(
        r.get("access-control-allow-origin"),
        Some("http://app.test")
    );
    // A fixed origin is sent whatever the request's: the browser refuses the others.
    let r = request(
        addr,
        "OPTIONS",
        HANDSHAKE,
        &preflight("http://evil.test"),
        "",
    )
    .await;
    assert_eq!(r.status, 204);
    assert_eq!(
        r.get("access-control-allow-origin"),
        Some("http://app.test")
    );
}

#[tokio::test]
async fn several_origins_reflect_only_those_listed() {
    let cors = Cors::origins(["http://a.test", "http://b.test"])
        .methods(["GET", "POST"])
        .allowed_headers(["content-type", "x-token"])
        .exposed_headers(["x-served-by"])
        .max_age(Duration::from_secs(600));
    let addr = serve(Config::default(), Options::default().cors(cors)).await;
    for origin in ["http://a.test", "http://b.test"] {
        let r = request(addr, "OPTIONS", HANDSHAKE, &preflight(origin), "").await;
        assert_eq!(r.status, 204);
        assert_eq!(r.get("access-control-allow-origin"), Some(origin));
        assert_eq!(r.get("access-control-allow-methods"), Some("GET,POST"));
        assert_eq!(
            r.get("access-control-allow-headers"),
            Some("content-type,x-token")
        );
        assert_eq!(r.get("access-control-expose-headers"), Some("x-served-by"));
        assert_eq!(r.get("access-control-max-age"), Some("600"));
        assert_eq!(r.get("vary"), Some("Origin"));
        assert_eq!(r.get("access-control-allow-credentials"), None);
    }
    // Refused: still answered (the `cors` package's way), without an allowed origin.
    let r = request(addr, "OPTIONS", HANDSHAKE, &preflight("http://c.test"), "").await;
    assert_eq!(r.status, 204);
    assert_eq!(r.get("access-control-allow-origin"), None);
    assert_eq!(r.get("vary"), Some("Origin"));
    let r = request(addr, "GET", HANDSHAKE, &[("Origin", "http://c.test")], "").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.get("access-control-allow-origin"), None);
    assert_eq!(r.get("access-control-expose-headers"), Some("x-served-by"));
}

#[tokio::test]
async fn a_predicate_decides_and_a_refusal_leaves_cors_out() {
    let cors = Cors::predicate(|o| {
        if o == "http://panic.test" {
            panic!("predicate panics");
        }
        o.ends_with(".good.test")
    })
    .credentials(true);
    let addr = serve(Config::default(), Options::default().cors(cors)).await;
    let r = request(
        addr,
        "OPTIONS",
        HANDSHAKE,
        &preflight("http://x.good.test"),
        "",
    )
    .await;
    assert_eq!(r.status, 204);
    assert_eq!(
        r.get("access-control-allow-origin"),
        Some("http://x.good.test")
    );
    assert_eq!(r.get("access-control-allow-credentials"), Some("true"));
    // `false` (or a panic): CORS leaves the request alone; Engine.IO refuses the OPTIONS.
    for origin in ["http://bad.test", "http://panic.test"] {
        let r = request(addr, "OPTIONS", HANDSHAKE, &preflight(origin), "").await;
        assert_eq!(
            (r.status, r.body.clone()),
            (400, error_body(2, "Bad handshake method"))
        );
        assert_eq!(r.get("access-control-allow-origin"), None);
        assert_eq!(r.get("access-control-allow-credentials"), None);
        assert_eq!(r.get("vary"), None);
    }
    // `Cors::mirror()` (`origin: true`) reflects any origin.
    let addr = serve(Config::default(), Options::default().cors(Cors::mirror())).await;
    let r = request(addr, "GET", HANDSHAKE, &[("Origin", "http://any.test")], "").await;
    assert_eq!(
        r.get("access-control-allow-origin"),
        Some("http://any.test")
    );
    // `Cors::any()`: `*`, no Vary.
    let addr = serve(Config::default(), Options::default().cors(Cors::any())).await;
    let r = request(
        addr,
        "OPTIONS",
        HANDSHAKE,
        &preflight("http://any.test"),
        "",
    )
    .await;
    assert_eq!(r.get("access-control-allow-origin"), Some("*"));
    assert_eq!(r.get("vary"), Some("Access-Control-Request-Headers"));
}

type Errors = Arc<Mutex<Vec<(u8, String, serde_json::Value, String)>>>;

fn recording(options: Options) -> (Options, Errors) {
    let errors = Errors::default();
    let e = errors.clone();
    let options = options.on_connection_error(move |err: &ConnectionError| {
        e.lock().unwrap().push((
            err.code.code(),
            err.message.clone(),
            err.context.clone(),
            err.request.uri().to_string(),
        ));
    });
    (options, errors)
}

#[tokio::test]
async fn allow_request_refuses_with_403_code_4_or_accepts() {
    let asked = Arc::new(AtomicUsize::new(0));
    let a = asked.clone();
    let options = Options::default().allow_request(move |req| {
        a.fetch_add(1, Ordering::SeqCst);
        async move {
            tokio::time::sleep(Duration::from_millis(5)).await; // really asynchronous
            let token = req.header("x-token");
            match token.as_deref() {
                Some("good") => {
                    assert!(req.url().starts_with("/socket.io/?EIO=4"));
                    assert_eq!(req.address(), Some("127.0.0.1"));
                    Ok(())
                }
                Some("boom") => panic!("allow_request panics"),
                Some(_) => Err(Forbidden::with_message("bad token")),
                None => Err(Forbidden::new()),
            }
        }
    });
    let (options, errors) = recording(options);
    let addr = serve(Config::default(), options).await;
    let r = request(addr, "GET", HANDSHAKE, &[], "").await;
    assert_eq!(
        (r.status, r.body.as_str()),
        (403, &*error_body(4, "Forbidden"))
    );
    assert_eq!(r.get("content-type"), Some("application/json"));
    let r = request(addr, "GET", HANDSHAKE, &[("x-token", "worse")], "").await;
    assert_eq!(
        (r.status, r.body.as_str()),
        (403, &*error_body(4, "bad token"))
    );
    let r = request(addr, "GET", HANDSHAKE, &[("x-token", "boom")], "").await;
    assert_eq!(
        (r.status, r.body.as_str()),
        (403, &*error_body(4, "Forbidden"))
    );
    let ok = request(addr, "GET", HANDSHAKE, &[("x-token", "good")], "").await;
    assert_eq!(ok.status, 200, "{ok:?}");
    assert_eq!(asked.load(Ordering::SeqCst), 4);
    // The session's later requests are not asked again.
    let sid = ok.sid();
    let path = format!("{HANDSHAKE}&sid={sid}");
    let r = request(addr, "POST", &path, &[], "40").await;
    assert_eq!((r.status, r.body.as_str()), (200, "ok"));
    let r = request(addr, "GET", &path, &[], "").await;
    assert!(r.body.starts_with("40{\"sid\""), "{r:?}");
    // The reference's own checks come first: a bad method never reaches the hook.
    let r = request(addr, "POST", HANDSHAKE, &[("x-token", "good")], "x").await;
    assert_eq!(r.body, error_body(2, "Bad handshake method"));
    assert_eq!(asked.load(Ordering::SeqCst), 4);
    let errors = errors.lock().unwrap();
    let forbidden: Vec<_> = errors.iter().filter(|e| e.0 == 4).collect();
    assert_eq!(forbidden.len(), 3);
    assert!(forbidden.iter().all(|e| e.1 == "Forbidden"));
    assert_eq!(
        forbidden[1].2,
        serde_json::json!({ "message": "bad token" })
    );
}

#[tokio::test]
async fn allow_request_guards_websocket_handshakes_too() {
    let options = Options::default().allow_request(|req| async move {
        if req.url().contains("ok=1") {
            Ok(())
        } else {
            Err(Forbidden::new())
        }
    });
    let addr = serve(Config::default(), options).await;
    let ws = |q: &'static str| async move {
        let stream = TcpStream::connect(addr).await.unwrap();
        let url = format!("ws://{addr}/socket.io/?EIO=4&transport=websocket{q}");
        timeout(LIMIT, tokio_tungstenite::client_async(url, stream))
            .await
            .unwrap()
    };
    match ws("").await {
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => assert_eq!(r.status(), 403),
        other => panic!("not refused: {other:?}"),
    }
    assert!(ws("&ok=1").await.is_ok());
}

#[tokio::test]
async fn connection_error_reports_every_refusal() {
    let options = Options::default().allow_request(|req| async move {
        if req.url().contains("deny") {
            Err(Forbidden::new())
        } else {
            Ok(())
        }
    });
    let (options, errors) = recording(options);
    let addr = serve(Config::default(), options).await;
    let cases: [(&str, &str, u8, &str, serde_json::Value); 6] = [
        (
            "GET",
            "/socket.io/?EIO=4&transport=carrier-pigeon",
            0,
            "Transport unknown",
            serde_json::json!({ "transport": "carrier-pigeon" }),
        ),
        (
            "GET",
            "/socket.io/?EIO=4&transport=polling&sid=unknown",
            1,
            "Session ID unknown",
            serde_json::json!({ "sid": "unknown" }),
        ),
        (
            "POST",
            HANDSHAKE,
            2,
            "Bad handshake method",
            serde_json::json!({ "method": "POST" }),
        ),
        (
            "GET",
            "/socket.io/?EIO=4&transport=websocket",
            3,
            "Bad request",
            serde_json::json!({}),
        ),
        (
            "GET",
            "/socket.io/?EIO=4&transport=polling&deny",
            4,
            "Forbidden",
            serde_json::json!({}),
        ),
        (
            "GET",
            "/socket.io/?EIO=3&transport=polling",
            5,
            "Unsupported protocol version",
            serde_json::json!({ "protocol": "3" }),
        ),
    ];
    for (method, path, code, message, _) in &cases {
        let r = request(addr, method, path, &[], "").await;
        let status = if *code == 4 { 403 } else { 400 };
        assert_eq!(
            (r.status, r.body),
            (status, error_body(*code, message)),
            "{path}"
        );
    }
    let errors = errors.lock().unwrap();
    assert_eq!(errors.len(), cases.len(), "{errors:?}");
    for (e, (_, path, code, message, context)) in errors.iter().zip(&cases) {
        assert_eq!(
            (&e.0, e.1.as_str(), &e.2, e.3.as_str()),
            (code, *message, context, *path)
        );
    }
}

#[tokio::test]
async fn initial_headers_on_the_handshake_only_and_headers_on_every_response() {
    let options = Options::default()
        .initial_headers(|h, req| {
            assert!(req.uri().query().is_some_and(|q| !q.contains("sid=")));
            h.append("set-cookie", "io=first; Path=/; HttpOnly".parse().unwrap());
            h.append("set-cookie", "theme=dark; Path=/".parse().unwrap());
        })
        .headers(|h, req| {
            let which = if req.method() == "POST" {
                "post"
            } else {
                "get"
            };
            h.insert("x-served-by", which.parse().unwrap());
        });
    let addr = serve(Config::default(), options).await;
    let r = request(addr, "GET", HANDSHAKE, &[], "").await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.all("set-cookie"),
        ["io=first; Path=/; HttpOnly", "theme=dark; Path=/"]
    );
    assert_eq!(r.get("x-served-by"), Some("get"));
    let path = format!("{HANDSHAKE}&sid={}", r.sid());
    let r = request(addr, "POST", &path, &[], "40").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.get("set-cookie"), None);
    assert_eq!(r.get("x-served-by"), Some("post"));
    let r = request(addr, "GET", &path, &[], "").await;
    assert!(r.body.starts_with("40"), "{r:?}");
    assert_eq!(r.get("set-cookie"), None);
    assert_eq!(r.get("x-served-by"), Some("get"));
    // Refusals get neither, as in the reference.
    let r = request(
        addr,
        "GET",
        "/socket.io/?EIO=4&transport=polling&sid=x",
        &[],
        "",
    )
    .await;
    assert_eq!(r.status, 400);
    assert_eq!((r.get("set-cookie"), r.get("x-served-by")), (None, None));
    // A WebSocket handshake's 101 gets both.
    let stream = TcpStream::connect(addr).await.unwrap();
    let url = format!("ws://{addr}/socket.io/?EIO=4&transport=websocket");
    let (_ws, resp) = timeout(LIMIT, tokio_tungstenite::client_async(url, stream))
        .await
        .unwrap()
        .unwrap();
    let cookies: Vec<_> = resp.headers().get_all("set-cookie").iter().collect();
    assert_eq!(cookies.len(), 2);
    assert_eq!(resp.headers()["x-served-by"], "get");
}

#[tokio::test]
async fn a_panicking_headers_hook_adds_nothing_and_the_response_goes_out() {
    let options = Options::default()
        .initial_headers(|_, _| panic!("initial_headers panics"))
        .headers(|h, _| {
            h.insert("x-ok", "1".parse().unwrap());
        })
        .on_connection_error(|_| panic!("connection_error panics"));
    let addr = serve(Config::default(), options).await;
    let r = request(addr, "GET", HANDSHAKE, &[], "").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.get("x-ok"), Some("1"));
    let r = request(addr, "GET", "/socket.io/?EIO=4&transport=nope", &[], "").await;
    assert_eq!(r.body, error_body(0, "Transport unknown"));
    // Still serving.
    assert_eq!(request(addr, "GET", HANDSHAKE, &[], "").await.status, 200);
}

#[tokio::test]
async fn transports_websocket_only_refuses_polling_with_code_0() {
    let mut config = Config::default();
    config.transports = Transports::WEBSOCKET;
    let (options, errors) = recording(Options::default());
    let addr = serve(config, options).await;
    let r = request(addr, "GET", HANDSHAKE, &[], "").await;
    assert_eq!(
        (r.status, r.body),
        (400, error_body(0, "Transport unknown"))
    );
    assert_eq!(errors.lock().unwrap()[0].0, 0);
    let stream = TcpStream::connect(addr).await.unwrap();
    let url = format!("ws://{addr}/socket.io/?EIO=4&transport=websocket");
    let (mut ws, _) = timeout(LIMIT, tokio_tungstenite::client_async(url, stream))
        .await
        .unwrap()
        .unwrap();
    use futures_util::StreamExt;
    let open = timeout(LIMIT, ws.next()).await.unwrap().unwrap().unwrap();
    let open: serde_json::Value = serde_json::from_str(&open.to_text().unwrap()[1..]).unwrap();
    assert_eq!(open["upgrades"], serde_json::json!([]));

    // Polling only: no upgrade offered, WebSocket refused.
    let mut config = Config::default();
    config.transports = Transports::POLLING;
    let addr = serve(config, Options::default()).await;
    let r = request(addr, "GET", HANDSHAKE, &[], "").await;
    let open: serde_json::Value = serde_json::from_str(&r.body[1..]).unwrap();
    assert_eq!(open["upgrades"], serde_json::json!([]));
    let stream = TcpStream::connect(addr).await.unwrap();
    let url = format!("ws://{addr}/socket.io/?EIO=4&transport=websocket");
    match timeout(LIMIT, tokio_tungstenite::client_async(url, stream))
        .await
        .unwrap()
    {
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => assert_eq!(r.status(), 400),
        other => panic!("not refused: {other:?}"),
    }
    let mut config = Config::default();
    config.transports = Transports {
        polling: false,
        websocket: false,
    };
    assert!(config.validate().is_err());
    assert_eq!(RequestError::UnknownTransport.code(), 0);
}

#[tokio::test]
async fn allow_upgrades_off_offers_none_and_refuses_the_upgrade() {
    let mut config = Config::default();
    config.allow_upgrades = false;
    let (options, errors) = recording(Options::default());
    let addr = serve(config, options).await;
    let r = request(addr, "GET", HANDSHAKE, &[], "").await;
    let open: serde_json::Value = serde_json::from_str(&r.body[1..]).unwrap();
    assert_eq!(open["upgrades"], serde_json::json!([]));
    let stream = TcpStream::connect(addr).await.unwrap();
    let url = format!(
        "ws://{addr}/socket.io/?EIO=4&transport=websocket&sid={}",
        r.sid()
    );
    match timeout(LIMIT, tokio_tungstenite::client_async(url, stream))
        .await
        .unwrap()
    {
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => assert_eq!(r.status(), 400),
        other => panic!("not refused: {other:?}"),
    }
    assert_eq!(errors.lock().unwrap()[0].0, 3);
}

#[tokio::test]
async fn the_path_option_moves_the_endpoint() {
    let addr = serve(Config::default(), Options::default().path("/rt/")).await;
    let r = request(addr, "GET", "/rt/?EIO=4&transport=polling", &[], "").await;
    assert_eq!(r.status, 200);
    assert!(r.body.starts_with("0{"));
    let r = request(addr, "GET", HANDSHAKE, &[], "").await;
    assert_eq!(r.status, 404);
}
