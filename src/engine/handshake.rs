//! The data of the `open` packet that starts every Engine.IO session.

use crate::Str;
use serde::{Deserialize, Serialize};

/// The handshake the server sends in its `open` packet.
///
/// ```
/// use roomcast::engine::Handshake;
/// let h = Handshake {
///     sid: "lv_VI97HAXpY6yYWAAAC".into(),
///     upgrades: vec!["websocket".into()],
///     ping_interval: 25000,
///     ping_timeout: 20000,
///     max_payload: 1000000,
/// };
/// assert_eq!(
///     h.to_json(),
///     r#"{"sid":"lv_VI97HAXpY6yYWAAAC","upgrades":["websocket"],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}"#
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Handshake {
    /// The session id.
    pub sid: String,
    /// Transports the client may upgrade to (`["websocket"]` from long-polling, else empty).
    pub upgrades: Vec<String>,
    /// Milliseconds between the server's pings.
    pub ping_interval: u64,
    /// Milliseconds the client has to answer a ping.
    pub ping_timeout: u64,
    /// Largest payload the server accepts, in bytes.
    pub max_payload: u64,
}

impl Handshake {
    /// The JSON data of the `open` packet.
    pub fn to_json(&self) -> Str {
        // Serializing plain strings and integers into a String cannot fail.
        Str::from(serde_json::to_string(self).unwrap_or_default())
    }

    /// Parses the JSON data of an `open` packet.
    pub fn from_json(json: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(json)
    }
}
