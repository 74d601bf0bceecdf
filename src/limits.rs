//! [`Limits`]: every bound the decoders enforce on untrusted input.

/// Bounds applied to everything a peer sends. Each has the reference server's default.
///
/// ```
/// use roomcast::Limits;
/// let limits = Limits { max_attachments: 4, ..Limits::default() };
/// assert_eq!(limits.max_payload, 1_000_000);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest Engine.IO message in bytes: one WebSocket message, or one long-polling request
    /// body (which may hold several packets). Reference default `maxHttpBufferSize`: 1,000,000.
    /// Also announced to clients as `maxPayload` in the handshake.
    pub max_payload: usize,
    /// Most binary attachments one Socket.IO packet may announce. Reference default: 10.
    pub max_attachments: usize,
}

impl Limits {
    /// The reference server's defaults.
    pub const DEFAULT: Limits = Limits {
        max_payload: 1_000_000,
        max_attachments: 10,
    };
}

impl Default for Limits {
    fn default() -> Self {
        Self::DEFAULT
    }
}
