//! A socket's handshake as Node's `socket.handshake` holds it (`headers`, `time`, `address`,
//! `xdomain`, `secure`, `issued`, `url`, `query`, `auth`): what `fetchSockets` answers carry
//! to other nodes, built from what the adapter told of the session's first request
//! ([`RequestInfo`]) and the socket's CONNECT auth.

use crate::cluster::classic::map;
use crate::cluster::value::civil;
use crate::RequestInfo;
use rmpv::Value;

/// The handshake of a socket whose session opened with `info` (if the adapter gave it) and
/// whose CONNECT carried `auth` (a JSON object, if any).
pub(crate) fn handshake(info: Option<&RequestInfo>, auth: Option<&str>) -> Value {
    let auth = auth
        .and_then(|a| serde_json::from_str::<Value>(a).ok())
        .unwrap_or(Value::Map(Vec::new()));
    let Some(info) = info else {
        return map(vec![("auth", auth)]);
    };
    let mut headers: Vec<(Value, Value)> = Vec::with_capacity(info.headers.len());
    for (name, value) in &info.headers {
        // Node joins repeated headers with ", " (`set-cookie` aside, which no client sends).
        match headers.iter_mut().find(|(n, _)| n.as_str() == Some(name)) {
            Some((_, Value::String(v))) => {
                let joined = format!("{}, {value}", v.as_str().unwrap_or_default());
                *v = joined.into();
            }
            _ => headers.push((Value::from(name.as_str()), Value::from(value.as_str()))),
        }
    }
    let xdomain = info.headers.iter().any(|(n, _)| n == "origin");
    let query = info.url.split_once('?').map_or("", |(_, q)| q);
    let entries = vec![
        ("headers", Value::Map(headers)),
        (
            "time",
            info.unix_ms
                .and_then(js_date)
                .map_or(Value::Nil, Value::from),
        ),
        (
            "address",
            info.address.as_deref().map_or(Value::Nil, Value::from),
        ),
        ("xdomain", Value::from(xdomain)),
        ("secure", Value::from(info.secure)),
        ("issued", info.unix_ms.map_or(Value::Nil, Value::from)),
        ("url", Value::from(info.url.as_str())),
        ("query", parse_query(query)),
        ("auth", auth),
    ];
    map(entries)
}

/// A query string as Node's `querystring.parse` reads it: `+` is a space, `%XX` a byte;
/// a repeated key keeps its first value.
fn parse_query(q: &str) -> Value {
    let mut out: Vec<(Value, Value)> = Vec::new();
    for pair in q.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let (k, v) = (unescape(k), unescape(v));
        if !out.iter().any(|(n, _)| n.as_str() == Some(&k)) {
            out.push((Value::from(k), Value::from(v)));
        }
    }
    Value::Map(out)
}

fn unescape(s: &str) -> String {
    let hex = |b: &u8| {
        char::from(*b)
            .to_digit(16)
            .and_then(|d| u8::try_from(d).ok())
    };
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'+' => out.push(b' '),
            b'%' => match (
                bytes.get(i + 1).and_then(hex),
                bytes.get(i + 2).and_then(hex),
            ) {
                (Some(h), Some(l)) => {
                    out.push(h * 16 + l);
                    i += 2;
                }
                // Not an escape: kept as it is, as `querystring` does.
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `new Date(ms).toString()` in UTC, as Node prints it on a server whose zone is UTC:
/// `Tue Dec 01 2026 18:00:32 GMT+0000 (Coordinated Universal Time)`.
fn js_date(ms: u64) -> Option<String> {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let secs = i64::try_from(ms / 1000).ok()?;
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (year, month, day) = civil(days)?;
    Some(format!(
        "{} {} {day:02} {year:04} {:02}:{:02}:{:02} GMT+0000 (Coordinated Universal Time)",
        DAYS[usize::try_from(days % 7).ok()?],
        MONTHS[usize::try_from(month - 1).ok()?],
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_print_as_node_prints_them() {
        // The observed handshake of redis-cluster.md §2.4: issued 1796148032210.
        assert_eq!(
            js_date(1_796_148_032_210).unwrap(),
            "Tue Dec 01 2026 18:00:32 GMT+0000 (Coordinated Universal Time)"
        );
        assert_eq!(
            js_date(0).unwrap(),
            "Thu Jan 01 1970 00:00:00 GMT+0000 (Coordinated Universal Time)"
        );
    }

    #[test]
    fn queries_parse_as_querystring_does() {
        let q = parse_query("EIO=4&transport=websocket&a=b%20c+d&a=x&e");
        let get = |k: &str| {
            q.as_map()
                .unwrap()
                .iter()
                .find(|(n, _)| n.as_str() == Some(k))
                .map(|(_, v)| v.as_str().unwrap().to_owned())
        };
        assert_eq!(get("EIO").as_deref(), Some("4"));
        assert_eq!(get("a").as_deref(), Some("b c d"));
        assert_eq!(get("e").as_deref(), Some(""));
    }

    #[test]
    fn the_handshake_has_nodes_shape() {
        let mut info = RequestInfo::new();
        info.headers = vec![
            ("host".into(), "127.0.0.1:3000".into()),
            ("origin".into(), "http://a".into()),
        ];
        info.address = Some("127.0.0.1".into());
        info.url = "/socket.io/?EIO=4&transport=polling".into();
        info.unix_ms = Some(1_796_148_032_210);
        let h = handshake(Some(&info), Some(r#"{"name":"n1"}"#));
        let keys: Vec<_> = h
            .as_map()
            .unwrap()
            .iter()
            .map(|(k, _)| k.as_str().unwrap().to_owned())
            .collect();
        assert_eq!(
            keys,
            ["headers", "time", "address", "xdomain", "secure", "issued", "url", "query", "auth"]
        );
        let json = serde_json::to_string(&h).unwrap();
        assert!(json.contains(r#""xdomain":true"#), "{json}");
        assert!(json.contains(r#""auth":{"name":"n1"}"#), "{json}");
        assert!(json.contains(r#""issued":1796148032210"#), "{json}");
    }
}
