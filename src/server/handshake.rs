//! A socket's handshake as Node's `socket.handshake` holds it (`headers`, `time`, `address`,
//! `xdomain`, `secure`, `issued`, `url`, `query`, `auth`): typed for the application
//! ([`Handshake`]), and as the msgpack map `fetchSockets` answers carry to other nodes; both
//! built from what the adapter told of the session's first request ([`RequestInfo`]) and the
//! socket's CONNECT auth.

use crate::cluster::classic::map;
use crate::cluster::value::civil;
use crate::{RequestInfo, Str};
use rmpv::Value;
use std::sync::Arc;

/// A socket's handshake (Node's `socket.handshake`): the request that opened its session and
/// the auth payload of its CONNECT. Cheap to clone (it shares what the core keeps); what Node
/// computes once (the parsed query, the date) is computed when asked.
#[derive(Debug, Clone, Default)]
pub struct Handshake {
    info: Option<Arc<RequestInfo>>,
    auth: Option<Str>,
}

impl Handshake {
    /// The handshake of a session opened with `info` (if the adapter told of it), for a
    /// CONNECT that carried `auth` (a JSON object).
    pub fn new(info: Option<Arc<RequestInfo>>, auth: Option<Str>) -> Self {
        Handshake { info, auth }
    }

    /// The request headers, names in lowercase, in arrival order (`handshake.headers`).
    pub fn headers(&self) -> impl Iterator<Item = (&str, &str)> + Clone {
        self.info
            .as_deref()
            .into_iter()
            .flat_map(RequestInfo::headers)
    }

    /// A header's value, by name in any case; repeated headers joined with `, ` as Node does.
    pub fn header(&self, name: &str) -> Option<String> {
        self.info.as_deref()?.header(name)
    }

    /// The query string, parsed as Node's `querystring` does (`+` a space, `%XX` a byte, the
    /// first of repeated keys): `handshake.query`.
    pub fn query(&self) -> Vec<(String, String)> {
        self.info
            .as_deref()
            .map(RequestInfo::query)
            .unwrap_or_default()
    }

    /// One query parameter (`handshake.query[key]`).
    pub fn query_param(&self, key: &str) -> Option<String> {
        self.query()
            .into_iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
    }

    /// The peer's address, as Node prints it (`handshake.address`).
    pub fn address(&self) -> Option<&str> {
        self.info.as_deref().and_then(RequestInfo::address)
    }

    /// The request target, path and query (`handshake.url`).
    pub fn url(&self) -> &str {
        self.info.as_deref().map_or("", RequestInfo::url)
    }

    /// When the request arrived, in ms since the Unix epoch (`handshake.issued`).
    pub fn issued(&self) -> Option<u64> {
        self.info.as_deref().and_then(|i| i.unix_ms)
    }

    /// The same as a date, as Node prints it (`handshake.time`).
    pub fn time(&self) -> Option<String> {
        self.issued().and_then(js_date)
    }

    /// Whether the connection was TLS (`handshake.secure`).
    pub fn secure(&self) -> bool {
        self.info.as_deref().is_some_and(|i| i.secure)
    }

    /// Whether the request came from another origin: it carried an `Origin` header
    /// (`handshake.xdomain`).
    pub fn xdomain(&self) -> bool {
        self.headers().any(|(n, _)| n == "origin")
    }

    /// The CONNECT's auth payload, JSON text (`handshake.auth`); `None` if it sent none.
    pub fn auth(&self) -> Option<&str> {
        self.auth.as_deref()
    }

    /// The auth payload deserialized; an absent one reads as `{}`, as in Node.
    pub fn auth_as<T: serde::de::DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_str(self.auth().unwrap_or("{}"))
    }
}

/// A socket's handshake as the msgpack map Node nodes exchange.
pub(crate) fn handshake(h: &Handshake) -> Value {
    let auth = h
        .auth()
        .and_then(|a| serde_json::from_str::<Value>(a).ok())
        .unwrap_or(Value::Map(Vec::new()));
    if h.info.is_none() {
        return map(vec![("auth", auth)]);
    }
    // Node joins repeated headers with ", " (`set-cookie` aside, which no client sends).
    let headers: Vec<(Value, Value)> = h
        .info
        .as_deref()
        .map(RequestInfo::joined_headers)
        .unwrap_or_default()
        .into_iter()
        .map(|(n, v)| (Value::from(n), Value::from(v)))
        .collect();
    let query = h
        .query()
        .into_iter()
        .map(|(k, v)| (Value::from(k), Value::from(v)))
        .collect();
    let entries = vec![
        ("headers", Value::Map(headers)),
        ("time", h.time().map_or(Value::Nil, Value::from)),
        ("address", h.address().map_or(Value::Nil, Value::from)),
        ("xdomain", Value::from(h.xdomain())),
        ("secure", Value::from(h.secure())),
        ("issued", h.issued().map_or(Value::Nil, Value::from)),
        ("url", Value::from(h.url())),
        ("query", Value::Map(query)),
        ("auth", auth),
    ];
    map(entries)
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
        let info = RequestInfo::new("/?EIO=4&transport=websocket&a=b%20c+d&a=x&e", None, []);
        let q = info.query();
        let get = |k: &str| q.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        assert_eq!(get("EIO").as_deref(), Some("4"));
        assert_eq!(get("a").as_deref(), Some("b c d"));
        assert_eq!(get("e").as_deref(), Some(""));
    }

    #[test]
    fn the_handshake_has_nodes_shape() {
        let mut info = RequestInfo::new(
            "/socket.io/?EIO=4&transport=polling",
            Some("127.0.0.1"),
            [("host", "127.0.0.1:3000"), ("origin", "http://a")],
        );
        info.unix_ms = Some(1_796_148_032_210);
        let typed = Handshake::new(Some(Arc::new(info)), Some(Str::from(r#"{"name":"n1"}"#)));
        assert_eq!(typed.header("HOST").as_deref(), Some("127.0.0.1:3000"));
        assert_eq!(typed.query_param("transport").as_deref(), Some("polling"));
        assert_eq!(typed.auth_as::<serde_json::Value>().unwrap()["name"], "n1");
        assert!(typed.xdomain() && !typed.secure());
        let h = handshake(&typed);
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
