//! Adapters that put the core on a real network, each behind a cargo feature.
//!
//! - [`tokio`] (feature `tokio`): HTTP long-polling and WebSocket over `hyper` and
//!   `tokio-tungstenite`, with an async application API.

#[cfg(feature = "tokio")]
pub mod tokio;
