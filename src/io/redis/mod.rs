//! A Redis Pub/Sub transport for the cluster layer (feature `redis`): it moves bytes between Redis
//! channels and the caller and knows nothing of Socket.IO.
//!
//! A [`RedisLink`] holds two connections to one standalone Redis (not Redis Cluster): every
//! subscription on **one** subscriber connection, so that `PUBSUB NUMSUB` / `SHARDNUMSUB` count
//! this node exactly once, and every command (`PUBLISH`, `SPUBLISH`, `PUBSUB …`) on a second one
//! (a RESP2 connection in subscribed mode can run nothing else).
//!
//! Why [`fred`] (10.1, default features off, `i-pubsub` only; tokio, RESP2, no TLS): each client
//! is one connection that it reconnects by itself with an exponential policy, replays the commands
//! that were in flight, never writes a command whose caller already timed out, and tells us about
//! losses and reconnections (`error_rx` / `reconnect_rx`). redis-rs restores subscriptions only
//! from its `ConnectionManager` over RESP3, and its RESP2 `PubSub` connection does not reconnect.
//! fred's `SubscriberClient` remembers subscriptions too, but we do not use it: it cannot tell us
//! when a restore is complete, and its `resubscribe_all` sends an argument-less `SUBSCRIBE` when
//! only patterns or shard channels are held: fred 10.1 then hands Redis' error to the *next*
//! command (checked: a `PING` after it gets `ERR wrong number of arguments`). So we
//! keep the subscription sets ourselves (behind one lock shared with the restore), restore them on
//! the one subscriber connection after each reconnection, end each change with a `PING` on that
//! connection (fred resolves `SUBSCRIBE` as soon as it is written: the `PING` reply proves Redis
//! applied it, so a `NUMSUB` right after counts us), and only then report [`LinkEvent::Up`].
//!
//! Failures: while the link is down every publish, count and [`Job`] fails at once with
//! [`LinkError::Down`]; a command sent just before a loss fails within
//! [`LinkOptions::command_timeout`]. Incoming messages go through fred's broadcast buffer
//! ([`LinkOptions::client_buffer`]) into the bounded event channel
//! ([`LinkOptions::event_bound`]); a consumer slower than Redis first fills the event channel,
//! then fred's buffer, which then overwrites its oldest messages: those are counted in
//! [`LinkStats::dropped`] and logged with `tracing::warn!`. Redis is never slowed down (it would
//! disconnect a slow subscriber past its `client-output-buffer-limit pubsub`).

mod adapter;
mod publisher;
pub mod streams;

pub use adapter::{RedisAdapter, RedisAdapterOptions};
pub use publisher::{AppendReply, CountReply, Job, Publisher, PublisherStats, TrySendError};

use std::collections::BTreeSet;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use fred::prelude::{
    ClientLike, Config, ConnectionConfig, ErrorKind, EventInterface, PerformanceConfig,
    PubsubInterface, ReconnectPolicy, Value,
};
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{mpsc, watch, Mutex};
use tokio::task::JoinHandle;

/// The default bound of the event channel and of a [`Publisher`]'s queue.
pub const DEFAULT_QUEUE_BOUND: usize = 65_536;

/// One subscription of the subscriber connection.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Subscription {
    /// A channel (`SUBSCRIBE`).
    Channel(String),
    /// A glob pattern (`PSUBSCRIBE`).
    Pattern(String),
    /// A shard channel (`SSUBSCRIBE`, Redis ≥ 7.0).
    Shard(String),
}

/// What the link reports, in the order it happens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkEvent {
    /// A message on a subscribed channel (for a pattern: the concrete channel).
    Message {
        /// The channel it was published on.
        channel: String,
        /// The payload, as published.
        payload: Bytes,
    },
    /// Every subscription is in place (first time, and again after each reconnect).
    ///
    /// After a reconnection the first messages of the restored subscriptions may come just
    /// before this event.
    Up,
    /// The connection to Redis is lost (local work must go on; publishes fail until Up).
    Down,
}

/// How to reach Redis and how hard to try.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct LinkOptions {
    /// A `redis://[user:password@]host:port[/db]` URL of a standalone Redis.
    pub url: String,
    /// Bound of the event channel returned by [`RedisLink::connect`]. Default 65,536.
    pub event_bound: usize,
    /// Capacity of fred's own broadcast buffer of incoming messages, in front of the event
    /// channel; past it the oldest messages are dropped and counted. Default 1,024.
    pub client_buffer: usize,
    /// How long a command may take before it fails with [`LinkError::Timeout`]. Default 2 s.
    pub command_timeout: Duration,
    /// How long [`RedisLink::connect`] waits for the first connection (and each reconnection
    /// attempt for its TCP connect and handshake). Default 5 s.
    pub connect_timeout: Duration,
    /// First delay between reconnection attempts, doubled after each failure. Default 100 ms.
    pub reconnect_min: Duration,
    /// Longest delay between reconnection attempts. Default 2 s.
    pub reconnect_max: Duration,
    /// How many reconnection attempts in a row before giving up; 0 (the default) retries forever.
    pub reconnect_attempts: u32,
}

impl LinkOptions {
    /// The defaults, for the Redis at `url`.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            event_bound: DEFAULT_QUEUE_BOUND,
            client_buffer: 1_024,
            command_timeout: Duration::from_secs(2),
            connect_timeout: Duration::from_secs(5),
            reconnect_min: Duration::from_millis(100),
            reconnect_max: Duration::from_secs(2),
            reconnect_attempts: 0,
        }
    }
}

impl Default for LinkOptions {
    /// The defaults, for `redis://127.0.0.1:6379`.
    fn default() -> Self {
        Self::new("redis://127.0.0.1:6379")
    }
}

/// Why a link operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LinkError {
    /// The options are unusable (bad URL, zero bound…).
    #[error("invalid Redis link options: {0}")]
    Config(String),
    /// The first connection could not be made.
    #[error("cannot connect to Redis: {0}")]
    Connect(String),
    /// The link is down (between [`LinkEvent::Down`] and [`LinkEvent::Up`]).
    #[error("the link to Redis is down")]
    Down,
    /// Redis did not answer within [`LinkOptions::command_timeout`]; a command already written
    /// may still take effect.
    #[error("Redis did not answer within {0:?}")]
    Timeout(Duration),
    /// Redis (or the client) refused the command.
    #[error("Redis error: {0}")]
    Redis(String),
    /// The link was closed by [`RedisLink::quit`].
    #[error("the Redis link is closed")]
    Closed,
}

/// Counters of a link, see [`RedisLink::stats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct LinkStats {
    /// Whether the link is up now.
    pub up: bool,
    /// Messages handed to the event channel.
    pub received: u64,
    /// Messages lost because the event consumer was slower than Redis.
    pub dropped: u64,
    /// Times the link came up (1 after the first connection, +1 per reconnection).
    pub ups: u64,
}

/// State shared by the handle, its tasks and its publishers.
#[derive(Debug)]
struct Shared {
    up: AtomicBool,
    closed: AtomicBool,
    received: AtomicU64,
    dropped: AtomicU64,
    ups: AtomicU64,
    timeout: Duration,
}

impl Shared {
    /// `Ok` when a command may be tried now.
    fn ready(&self) -> Result<(), LinkError> {
        if self.closed.load(Ordering::Acquire) {
            Err(LinkError::Closed)
        } else if !self.up.load(Ordering::Acquire) {
            Err(LinkError::Down)
        } else {
            Ok(())
        }
    }

    /// Maps a fred error to ours.
    fn error(&self, e: fred::error::Error) -> LinkError {
        if self.closed.load(Ordering::Acquire) {
            return LinkError::Closed;
        }
        match e.kind() {
            ErrorKind::Timeout => LinkError::Timeout(self.timeout),
            ErrorKind::Canceled | ErrorKind::IO => LinkError::Down,
            ErrorKind::Config | ErrorKind::Url => LinkError::Config(e.to_string()),
            _ => LinkError::Redis(e.to_string()),
        }
    }
}

/// What the subscriber connection must hold.
#[derive(Debug, Default)]
struct Subs {
    channels: BTreeSet<String>,
    patterns: BTreeSet<String>,
    shards: BTreeSet<String>,
}

impl Subs {
    /// Puts every remembered subscription in place on the subscriber connection.
    async fn restore(&self, sub: &fred::clients::Client) -> Result<(), fred::error::Error> {
        change(
            sub,
            true,
            self.channels.iter().cloned().collect(),
            self.patterns.iter().cloned().collect(),
            self.shards.iter().cloned().collect(),
        )
        .await
    }
}

/// Sends (un)subscriptions on the subscriber connection and returns once Redis applied them.
///
/// fred resolves `SUBSCRIBE`, `PSUBSCRIBE` and `(P|S)UNSUBSCRIBE` as soon as they are written
/// (their confirmations come out of band), so a `PING` on the same connection serves as a barrier:
/// Redis answers it after the commands before it. `SSUBSCRIBE`, whose confirmation fred awaits as
/// its reply, goes one channel per command, as Node does.
async fn change(
    sub: &fred::clients::Client,
    on: bool,
    channels: Vec<String>,
    patterns: Vec<String>,
    shards: Vec<String>,
) -> Result<(), fred::error::Error> {
    let barrier = !channels.is_empty() || !patterns.is_empty() || (!on && !shards.is_empty());
    if !channels.is_empty() {
        if on {
            sub.subscribe(channels).await?;
        } else {
            sub.unsubscribe(channels).await?;
        }
    }
    if !patterns.is_empty() {
        if on {
            sub.psubscribe(patterns).await?;
        } else {
            sub.punsubscribe(patterns).await?;
        }
    }
    if on {
        for shard in shards {
            sub.ssubscribe(shard).await?;
        }
    } else if !shards.is_empty() {
        sub.sunsubscribe(shards).await?;
    }
    if barrier {
        let _: Value = sub.ping(None).await?;
    }
    Ok(())
}

/// Whether the link is up, and how many times it came up (so a quick flap is not lost).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct State {
    up: bool,
    epoch: u64,
}

struct Inner {
    sub: fred::clients::Client,
    publ: fred::clients::Client,
    shared: Arc<Shared>,
    subs: Arc<Mutex<Subs>>,
    runtime: tokio::runtime::Handle,
    tasks: std::sync::Mutex<Vec<JoinHandle<()>>>,
}

impl Inner {
    fn abort_tasks(&self) {
        let tasks = match self.tasks.lock() {
            Ok(mut tasks) => std::mem::take(&mut *tasks),
            Err(poisoned) => std::mem::take(&mut *poisoned.into_inner()),
        };
        for task in tasks {
            task.abort();
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.shared.closed.store(true, Ordering::Release);
        self.shared.up.store(false, Ordering::Release);
        self.abort_tasks();
        let (sub, publ) = (self.sub.clone(), self.publ.clone());
        self.runtime.spawn(async move {
            let _ = sub.quit().await;
            let _ = publ.quit().await;
        });
    }
}

/// A connection pair to Redis; cheap to clone (clones share the connections).
///
/// Dropping the last clone closes the connections, like [`RedisLink::quit`].
#[derive(Clone)]
pub struct RedisLink {
    inner: Arc<Inner>,
}

impl fmt::Debug for RedisLink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisLink")
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

fn build_client(options: &LinkOptions, buffer: usize) -> Result<fred::clients::Client, LinkError> {
    let mut config =
        Config::from_url(&options.url).map_err(|e| LinkError::Config(e.to_string()))?;
    config.fail_fast = true;
    let perf = PerformanceConfig {
        default_command_timeout: options.command_timeout,
        broadcast_channel_capacity: buffer.max(1),
        ..PerformanceConfig::default()
    };
    let connection = ConnectionConfig {
        connection_timeout: options.connect_timeout,
        internal_command_timeout: options.command_timeout,
        ..ConnectionConfig::default()
    };
    let mut policy = ReconnectPolicy::new_exponential(
        options.reconnect_attempts,
        millis(options.reconnect_min).max(1),
        millis(options.reconnect_max).max(millis(options.reconnect_min)),
        2,
    );
    policy.set_jitter(millis(options.reconnect_min) / 2);
    Ok(fred::clients::Client::new(
        config,
        Some(perf),
        Some(connection),
        Some(policy),
    ))
}

fn millis(d: Duration) -> u32 {
    u32::try_from(d.as_millis()).unwrap_or(u32::MAX)
}

/// The count in a `PUBSUB NUMSUB|SHARDNUMSUB <channel>` reply (`[channel, count]`).
fn parse_count(reply: Value) -> Result<usize, LinkError> {
    let count = match reply {
        Value::Array(items) => items.get(1).and_then(Value::as_i64),
        Value::Map(map) => map.inner().into_iter().next().and_then(|(_, v)| v.as_i64()),
        _ => None,
    };
    count
        .and_then(|n| usize::try_from(n).ok())
        .ok_or_else(|| LinkError::Redis("unexpected PUBSUB NUMSUB reply".into()))
}

/// The payload of a pub/sub message, without copying.
fn payload(value: Value) -> Bytes {
    match value {
        Value::Bytes(b) => b,
        Value::String(s) => s.into_inner(),
        Value::Null => Bytes::new(),
        other => Bytes::from(other.as_str().map(|s| s.into_owned()).unwrap_or_default()),
    }
}

impl RedisLink {
    /// Connects the subscriber and the publisher connections, and returns once both are up.
    ///
    /// The receiver gets [`LinkEvent::Up`] first. Must run inside a tokio runtime. Fails with
    /// [`LinkError::Config`] on a bad URL and [`LinkError::Connect`] when Redis cannot be reached
    /// within [`LinkOptions::connect_timeout`] (no retry: that is the caller's call). Later losses
    /// are retried by the reconnect policy.
    pub async fn connect(
        options: LinkOptions,
    ) -> Result<(RedisLink, mpsc::Receiver<LinkEvent>), LinkError> {
        if options.event_bound == 0 {
            return Err(LinkError::Config("event_bound must be at least 1".into()));
        }
        let sub = build_client(&options, options.client_buffer)?;
        let publ = build_client(&options, 16)?;
        let shared = Arc::new(Shared {
            up: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            received: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            ups: AtomicU64::new(0),
            timeout: options.command_timeout,
        });
        let subs = Arc::new(Mutex::new(Subs::default()));
        let (events_tx, events_rx) = mpsc::channel(options.event_bound);
        let (state_tx, state_rx) = watch::channel(State::default());

        let supervisor = Supervisor {
            sub: sub.clone(),
            shared: shared.clone(),
            subs: subs.clone(),
            state: state_tx,
            retry: options.reconnect_min.max(Duration::from_millis(10)),
        };
        let sub_reconnects = sub.reconnect_rx();
        let sub_errors = sub.error_rx();
        let pub_reconnects = publ.reconnect_rx();
        let pub_errors = publ.error_rx();
        let messages = sub.message_rx();
        let tasks = vec![
            tokio::spawn(supervisor.run(sub_reconnects, sub_errors, pub_reconnects, pub_errors)),
            tokio::spawn(forward(
                messages,
                state_rx.clone(),
                events_tx,
                shared.clone(),
            )),
        ];
        let link = RedisLink {
            inner: Arc::new(Inner {
                sub,
                publ,
                shared,
                subs,
                runtime: tokio::runtime::Handle::current(),
                tasks: std::sync::Mutex::new(tasks),
            }),
        };

        let inner = &link.inner;
        let started = async {
            inner.sub.init().await?;
            inner.publ.init().await?;
            Ok::<_, fred::error::Error>(())
        };
        match tokio::time::timeout(options.connect_timeout, started).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(LinkError::Connect(e.to_string())),
            Err(_) => return Err(LinkError::Connect("timed out".into())),
        }
        let mut state = state_rx;
        let up = tokio::time::timeout(options.connect_timeout, state.wait_for(|s| s.up)).await;
        match up {
            Ok(Ok(_)) => Ok((link, events_rx)),
            _ => Err(LinkError::Connect("timed out".into())),
        }
    }

    /// Subscribes the subscriber connection and remembers the subscriptions, to restore them
    /// after each reconnection.
    ///
    /// Subscribing again to a name is a no-op on Redis (one connection counts once). On `Err`
    /// (link down, timeout) the subscriptions stay remembered and are put in place with the next
    /// [`LinkEvent::Up`]; [`RedisLink::unsubscribe`] forgets them.
    pub async fn subscribe(&self, subs: &[Subscription]) -> Result<(), LinkError> {
        let shared = &self.inner.shared;
        if shared.closed.load(Ordering::Acquire) {
            return Err(LinkError::Closed);
        }
        let (channels, patterns, shards) = split(subs);
        let mut held = self.inner.subs.lock().await;
        held.channels.extend(channels.iter().cloned());
        held.patterns.extend(patterns.iter().cloned());
        held.shards.extend(shards.iter().cloned());
        shared.ready()?;
        change(&self.inner.sub, true, channels, patterns, shards)
            .await
            .map_err(|e| shared.error(e))
    }

    /// Unsubscribes and forgets the subscriptions (they are not restored after a reconnection,
    /// even when this fails).
    pub async fn unsubscribe(&self, subs: &[Subscription]) -> Result<(), LinkError> {
        let shared = &self.inner.shared;
        if shared.closed.load(Ordering::Acquire) {
            return Err(LinkError::Closed);
        }
        let (channels, patterns, shards) = split(subs);
        let mut held = self.inner.subs.lock().await;
        let channels: Vec<String> = channels
            .into_iter()
            .filter(|c| held.channels.remove(c))
            .collect();
        let patterns: Vec<String> = patterns
            .into_iter()
            .filter(|p| held.patterns.remove(p))
            .collect();
        let shards: Vec<String> = shards
            .into_iter()
            .filter(|s| held.shards.remove(s))
            .collect();
        shared.ready()?;
        change(&self.inner.sub, false, channels, patterns, shards)
            .await
            .map_err(|e| shared.error(e))
    }

    /// `PUBLISH channel payload` on the publisher connection.
    pub async fn publish(&self, channel: &str, payload: Bytes) -> Result<(), LinkError> {
        publish(
            &self.inner.publ,
            &self.inner.shared,
            channel,
            payload,
            false,
        )
        .await
    }

    /// `SPUBLISH channel payload` on the publisher connection.
    pub async fn spublish(&self, channel: &str, payload: Bytes) -> Result<(), LinkError> {
        publish(&self.inner.publ, &self.inner.shared, channel, payload, true).await
    }

    /// `PUBSUB NUMSUB channel`: how many connections are subscribed to `channel`.
    pub async fn numsub(&self, channel: &str) -> Result<usize, LinkError> {
        count(&self.inner.publ, &self.inner.shared, channel, false).await
    }

    /// `PUBSUB SHARDNUMSUB channel`: how many connections are subscribed to shard `channel`.
    pub async fn shard_numsub(&self, channel: &str) -> Result<usize, LinkError> {
        count(&self.inner.publ, &self.inner.shared, channel, true).await
    }

    /// An ordered, bounded queue of [`Job`]s for a caller that must not await, with its own
    /// worker task; `bound` jobs at most wait (0 counts as 1; [`DEFAULT_QUEUE_BOUND`] is the
    /// usual choice).
    pub fn publisher(&self, bound: usize) -> Publisher {
        Publisher::spawn(
            &self.inner.runtime,
            self.inner.publ.clone(),
            self.inner.shared.clone(),
            bound.max(1),
        )
    }

    /// The link's counters now.
    pub fn stats(&self) -> LinkStats {
        let shared = &self.inner.shared;
        LinkStats {
            up: shared.up.load(Ordering::Acquire),
            received: shared.received.load(Ordering::Relaxed),
            dropped: shared.dropped.load(Ordering::Relaxed),
            ups: shared.ups.load(Ordering::Relaxed),
        }
    }

    /// Closes both connections, for every clone of this handle: the event channel ends, later
    /// calls and queued jobs fail with [`LinkError::Closed`].
    pub async fn quit(self) {
        let inner = &self.inner;
        inner.shared.closed.store(true, Ordering::Release);
        inner.shared.up.store(false, Ordering::Release);
        inner.abort_tasks();
        let timeout = inner.shared.timeout;
        let _ = tokio::time::timeout(timeout, inner.sub.quit()).await;
        let _ = tokio::time::timeout(timeout, inner.publ.quit()).await;
    }
}

/// The names of each kind, deduplicated, in order.
fn split(subs: &[Subscription]) -> (Vec<String>, Vec<String>, Vec<String>) {
    let (mut channels, mut patterns, mut shards) = (Vec::new(), Vec::new(), Vec::new());
    for sub in subs {
        let (list, name) = match sub {
            Subscription::Channel(name) => (&mut channels, name),
            Subscription::Pattern(name) => (&mut patterns, name),
            Subscription::Shard(name) => (&mut shards, name),
        };
        if !list.contains(name) {
            list.push(name.clone());
        }
    }
    (channels, patterns, shards)
}

async fn publish(
    client: &fred::clients::Client,
    shared: &Shared,
    channel: &str,
    payload: Bytes,
    sharded: bool,
) -> Result<(), LinkError> {
    shared.ready()?;
    let sent: Result<Value, _> = if sharded {
        client.spublish(channel, payload).await
    } else {
        client.publish(channel, payload).await
    };
    sent.map(drop).map_err(|e| shared.error(e))
}

async fn count(
    client: &fred::clients::Client,
    shared: &Shared,
    channel: &str,
    sharded: bool,
) -> Result<usize, LinkError> {
    shared.ready()?;
    let reply: Result<Value, _> = if sharded {
        client.pubsub_shardnumsub(channel).await
    } else {
        client.pubsub_numsub(channel).await
    };
    parse_count(reply.map_err(|e| shared.error(e))?)
}

/// Follows both connections and restores the subscriptions after each reconnection.
struct Supervisor {
    sub: fred::clients::Client,
    shared: Arc<Shared>,
    subs: Arc<Mutex<Subs>>,
    state: watch::Sender<State>,
    retry: Duration,
}

impl Supervisor {
    async fn run(
        self,
        mut sub_reconnects: tokio::sync::broadcast::Receiver<fred::prelude::Server>,
        mut sub_errors: tokio::sync::broadcast::Receiver<(
            fred::error::Error,
            Option<fred::prelude::Server>,
        )>,
        mut pub_reconnects: tokio::sync::broadcast::Receiver<fred::prelude::Server>,
        mut pub_errors: tokio::sync::broadcast::Receiver<(
            fred::error::Error,
            Option<fred::prelude::Server>,
        )>,
    ) {
        // `sub_ok`: connected and every subscription restored; `pub_ok`: connected.
        let (mut sub_ok, mut pub_ok) = (false, false);
        // A restore that failed while the connection stayed up is tried again after `retry`.
        let mut restore_due: Option<tokio::time::Instant> = None;
        loop {
            let mut restore = false;
            tokio::select! {
                r = sub_reconnects.recv() => match r {
                    Ok(_) | Err(RecvError::Lagged(_)) => restore = true,
                    Err(RecvError::Closed) => break,
                },
                r = sub_errors.recv() => match r {
                    Ok((e, _)) => {
                        if sub_ok {
                            tracing::warn!(error = %e, "redis subscriber connection lost");
                        }
                        sub_ok = false;
                        restore_due = None;
                    }
                    Err(RecvError::Lagged(_)) => { sub_ok = false; restore_due = None; }
                    Err(RecvError::Closed) => break,
                },
                r = pub_reconnects.recv() => match r {
                    Ok(_) | Err(RecvError::Lagged(_)) => pub_ok = true,
                    Err(RecvError::Closed) => break,
                },
                r = pub_errors.recv() => match r {
                    Ok((e, _)) => {
                        if pub_ok {
                            tracing::warn!(error = %e, "redis publisher connection lost");
                        }
                        pub_ok = false;
                    }
                    Err(RecvError::Lagged(_)) => pub_ok = false,
                    Err(RecvError::Closed) => break,
                },
                () = sleep_until(restore_due), if restore_due.is_some() => restore = true,
            }
            if restore {
                sub_ok = false;
                self.publish_state(sub_ok && pub_ok);
                let held = self.subs.lock().await;
                match held.restore(&self.sub).await {
                    Ok(()) => {
                        sub_ok = true;
                        restore_due = None;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "redis subscriptions not restored, retrying");
                        restore_due = Some(tokio::time::Instant::now() + self.retry);
                    }
                }
                // Set the state while holding the lock, so that a `subscribe` racing with the
                // restore sees the link up only once the restore is done.
                self.publish_state(sub_ok && pub_ok);
                drop(held);
            } else {
                self.publish_state(sub_ok && pub_ok);
            }
        }
        self.publish_state(false);
    }

    fn publish_state(&self, up: bool) {
        self.shared.up.store(up, Ordering::Release);
        self.state.send_if_modified(|state| {
            if state.up == up {
                return false;
            }
            state.up = up;
            if up {
                state.epoch += 1;
                self.shared.ups.fetch_add(1, Ordering::Relaxed);
            }
            true
        });
    }
}

async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Moves messages and state changes into the event channel, in order.
async fn forward(
    mut messages: tokio::sync::broadcast::Receiver<fred::types::Message>,
    mut state: watch::Receiver<State>,
    events: mpsc::Sender<LinkEvent>,
    shared: Arc<Shared>,
) {
    let mut told = State::default();
    let mut state_open = true;
    loop {
        let event = tokio::select! {
            biased;
            changed = state.changed(), if state_open => {
                if changed.is_err() {
                    state_open = false;
                    continue;
                }
                let now = *state.borrow_and_update();
                // A Down then Up too quick to be seen apart still shows as both.
                if now.epoch != told.epoch && told.up && now.up {
                    if events.send(LinkEvent::Down).await.is_err() {
                        return;
                    }
                    told.up = false;
                }
                if now.up == told.up {
                    told = now;
                    continue;
                }
                told = now;
                if now.up { LinkEvent::Up } else { LinkEvent::Down }
            }
            message = messages.recv() => match message {
                Ok(message) => LinkEvent::Message {
                    channel: message.channel.to_string(),
                    payload: payload(message.value),
                },
                Err(RecvError::Lagged(lost)) => {
                    let total = shared.dropped.fetch_add(lost, Ordering::Relaxed) + lost;
                    tracing::warn!(lost, total, "redis messages dropped: the event consumer is slower than Redis");
                    continue;
                }
                Err(RecvError::Closed) => return,
            },
        };
        if matches!(event, LinkEvent::Message { .. }) {
            shared.received.fetch_add(1, Ordering::Relaxed);
        }
        if events.send(event).await.is_err() {
            return;
        }
    }
}
