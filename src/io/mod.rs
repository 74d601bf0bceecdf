//! Adapters that put the core on a real network, each behind a cargo feature.
//!
//! - [`tokio`] (feature `tokio`): HTTP long-polling and WebSocket over `hyper`, with an async
//!   application API.
//! - [`redis`] (feature `redis`): a Redis Pub/Sub transport for the cluster layer, over `fred`.
//!
//! [`websocket`] is the RFC 6455 framing they share, sans-IO like the core (no feature).

#[cfg(feature = "tokio")]
pub mod tokio;

pub mod websocket;

#[cfg(feature = "redis")]
pub mod redis;
