//! Adapters that put the core on a real network, each behind a cargo feature.
//!
//! - [`tokio`] (feature `tokio`): HTTP long-polling and WebSocket over `hyper` and
//!   `tokio-tungstenite`, with an async application API.
//! - [`redis`] (feature `redis`): a Redis Pub/Sub transport for the cluster layer, over `fred`.

#[cfg(feature = "tokio")]
pub mod tokio;

#[cfg(feature = "redis")]
pub mod redis;
