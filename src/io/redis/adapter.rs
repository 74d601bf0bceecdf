//! A [`SocketIo`] server as one node of a Socket.IO cluster over Redis, speaking a protocol of
//! `@socket.io/redis-adapter` (`createAdapter(pub, sub)`, or `createShardedAdapter(pub, sub)`
//! on Redis 7): the core's cluster layer on a [`RedisLink`]. Messages the core publishes go out through one ordered, bounded
//! [`Publisher`] (a request's node count, `PUBSUB NUMSUB`, just before the request itself);
//! messages on the subscribed channels go back into the core, in order, through the driver's
//! call queue (waiting for room there: Redis, not this node, buffers a burst).
//!
//! Redis going away does not take the node down: local delivery goes on, publishes fail and are
//! counted, requests end at their timeout with what came; the link resubscribes on the one
//! subscriber connection when Redis is back, so every node counts this one once again.

use super::streams::{self, ReaderOptions, StreamReader};
use super::AppendReply;
use super::{
    CountReply, Job, LinkError, LinkEvent, LinkOptions, LinkStats, Publisher, PublisherStats,
    RedisLink, Subscription, TrySendError, DEFAULT_QUEUE_BOUND,
};
use crate::cluster::adapter::Protocol;
use crate::cluster::adapter::Topic;
use crate::cluster::streams::StreamId;
use crate::io::tokio::SocketIo;
use crate::io::tokio::{ClusterOutput, Link};
use crate::{
    ClusterConfig, ClusterSubscription, ClusterTransmit, Command, Server, SessionFound,
    SessionRestore,
};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use tokio::task::JoinHandle;

/// Messages handed to the core in one driver call, at most.
const READ_BATCH: usize = 256;

/// How to join the cluster.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RedisAdapterOptions {
    /// The Redis connection.
    pub link: LinkOptions,
    /// The adapter's options (key, requests timeout, bounds).
    pub cluster: ClusterConfig,
    /// Messages waiting to be published (default 65,536); more are refused and counted.
    pub publish_queue: usize,
}

impl RedisAdapterOptions {
    /// The defaults of `createAdapter(pub, sub)` on the Redis at `url` (set
    /// `cluster.protocol` for `createShardedAdapter`).
    pub fn new(url: impl Into<String>) -> Self {
        RedisAdapterOptions {
            link: LinkOptions::new(url),
            cluster: ClusterConfig::default(),
            publish_queue: DEFAULT_QUEUE_BOUND,
        }
    }
}

/// A running Redis adapter: dropping it leaves the tasks running; [`close`](Self::close)
/// stops them.
pub struct RedisAdapter {
    link: RedisLink,
    publisher: Publisher,
    reader: JoinHandle<()>,
    streams: Option<Streams>,
}

/// The streams protocol's side: one reader task per stream (its own connection), and a
/// connection for sessions.
#[derive(Clone)]
struct Streams {
    options: LinkOptions,
    store: fred::clients::Client,
    /// Session commands, run one after the other: a session stored when a stale socket is
    /// closed for a recovering client must be there before that client's restore reads it.
    sessions: tokio::sync::mpsc::Sender<SessionJob>,
    readers: Arc<Mutex<Readers>>,
}

/// A session command of the streams protocol.
enum SessionJob {
    Save {
        key: String,
        value: bytes::Bytes,
        ttl_ms: u64,
    },
    Restore {
        key: String,
        token: SessionRestore,
        reply: SessionReply,
    },
}

/// Hands a restore's answer to the core.
type SessionReply = Box<dyn FnOnce(SessionRestore, Option<SessionFound>) + Send>;

/// Session commands waiting, at most (more: a save is dropped and logged, a restore answered
/// with nothing, so the client gets a fresh socket).
const SESSION_QUEUE: usize = 4096;

/// Runs session commands in order on the store connection.
async fn run_sessions(
    store: fred::clients::Client,
    mut jobs: tokio::sync::mpsc::Receiver<SessionJob>,
) {
    while let Some(job) = jobs.recv().await {
        match job {
            SessionJob::Save { key, value, ttl_ms } => {
                let value = String::from_utf8_lossy(&value);
                if let Err(e) = streams::save_session(&store, &key, &value, ttl_ms).await {
                    tracing::warn!(%e, "redis adapter: session not stored");
                }
            }
            SessionJob::Restore { key, token, reply } => {
                let found = restore(&store, &key, token.stream(), token.offset())
                    .await
                    .unwrap_or_else(|e| {
                        tracing::warn!(%e, "redis adapter: session not read");
                        None
                    });
                reply(token, found);
            }
        }
    }
}

/// The streams read (each once) and their reader tasks.
#[derive(Default)]
struct Readers {
    streams: HashSet<String>,
    tasks: Vec<JoinHandle<()>>,
}

/// Entries read are handed to the core in batches of at most this many (the reader's
/// `readCount`).
const STREAM_BATCH: usize = 100;

impl Streams {
    /// Starts reading `stream` (once per stream), from its last entry now: returns once the
    /// reader knows where it starts, so nothing written after is missed.
    async fn read<D>(&self, stream: String, driver: Link<Server<D>>)
    where
        D: Send + Sync + Clone + Default + 'static,
    {
        if !lock(&self.readers).streams.insert(stream.clone()) {
            return;
        }
        let options = self.options.clone();
        let (started_tx, started) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let mut started_tx = Some(started_tx);
            let mut reader = loop {
                let r = match streams::connect(&options).await {
                    Ok(client) => {
                        let opts = ReaderOptions {
                            count: STREAM_BATCH,
                            ..ReaderOptions::default()
                        };
                        StreamReader::start(client, &stream, opts).await
                    }
                    Err(e) => Err(e),
                };
                match r {
                    Ok(reader) => break reader,
                    Err(e) => {
                        tracing::warn!(%e, %stream, "redis adapter: stream reader not started");
                        if let Some(tx) = started_tx.take() {
                            let _ = tx.send(());
                        }
                        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                    }
                }
            };
            if let Some(tx) = started_tx.take() {
                let _ = tx.send(());
            }
            loop {
                let entries = match reader.next().await {
                    Ok(e) => e,
                    Err(e) => {
                        tracing::debug!(%e, %stream, "redis adapter: stream read failed");
                        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                        continue;
                    }
                };
                if entries.is_empty() {
                    continue;
                }
                let key = stream.clone();
                let delivered = driver
                    .call(Box::new(move |ctx| {
                        let now = ctx.now();
                        if let Err(e) = ctx.server.handle_stream_entries(now, &key, &entries) {
                            tracing::warn!(%e, stream = %key, "stream entry ignored");
                        }
                    }))
                    .await;
                if delivered.is_err() {
                    break;
                }
            }
        });
        lock(&self.readers).tasks.push(task);
        let _ = started.await;
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl RedisAdapter {
    /// Joins the cluster on Redis: the core's cluster layer is switched on, every namespace's
    /// channels are subscribed (on one connection), and from then on what the core publishes
    /// goes to Redis and what Redis delivers reaches the core. Returns once subscribed: the
    /// node is counted by every other node from then on.
    ///
    /// Namespaces created later (by [`SocketIo::of`], or dynamic ones) are subscribed as they
    /// appear. A socket's data travels in `fetchSockets` answers as `serde` serializes it.
    pub async fn attach<D>(
        io: &SocketIo<D>,
        options: RedisAdapterOptions,
    ) -> Result<RedisAdapter, LinkError>
    where
        D: Send + Sync + Clone + Default + Serialize + DeserializeOwned + 'static,
    {
        let link_options = options.link.clone();
        let (link, mut events) = RedisLink::connect(options.link).await?;
        let streams = match options.cluster.protocol {
            Protocol::Streams => {
                let store = streams::connect(&link_options).await?;
                let (sessions, jobs) = tokio::sync::mpsc::channel(SESSION_QUEUE);
                tokio::spawn(run_sessions(store.clone(), jobs));
                Some(Streams {
                    store,
                    sessions,
                    options: link_options,
                    readers: Arc::default(),
                })
            }
            _ => None,
        };
        let sink_streams = streams.clone();
        let publisher = link.publisher(options.publish_queue);
        let driver = io.link.clone();
        let (sink_publisher, sink_link, sink_driver) =
            (publisher.clone(), link.clone(), driver.clone());
        let cluster = options.cluster;
        let subs = io
            .query(move |ctx| {
                ctx.server.join_cluster(cluster);
                let mut subs = Vec::new();
                let mut streams_to_read = Vec::new();
                while let Some(c) = ctx.server.poll_cluster_subscription() {
                    if let ClusterSubscription::Subscribe(topics) = c {
                        subs.extend(topics.iter().filter_map(subscription));
                        streams_to_read.extend(topics.iter().filter_map(stream_of));
                    }
                }
                let mut sink = Sink {
                    publisher: sink_publisher,
                    link: sink_link,
                    driver: sink_driver,
                    changes: None,
                    streams: sink_streams,
                };
                ctx.cluster_sink = Some(Box::new(move |out| sink.take(out)));
                (subs, streams_to_read)
            })
            .await
            .ok_or(LinkError::Closed)?;
        let (subs, streams_to_read) = subs;
        // Reading before subscribing: once counted as a node, nothing written is missed.
        if let Some(s) = &streams {
            for stream in streams_to_read {
                s.read(stream, driver.clone()).await;
            }
        }
        link.subscribe(&subs).await?;
        let reader = tokio::spawn(async move {
            // What has arrived goes to the core in one call (up to a bound): a burst of remote
            // broadcasts is delivered, and its frames flushed, together, as a burst of local
            // ones is.
            let mut batch = Vec::new();
            while let Some(event) = events.recv().await {
                let mut next = Some(event);
                while let Some(event) = next.take() {
                    match event {
                        LinkEvent::Message { channel, payload } => batch.push((channel, payload)),
                        LinkEvent::Up => tracing::info!("redis adapter: subscribed"),
                        LinkEvent::Down => {
                            tracing::warn!("redis adapter: Redis lost; local delivery goes on")
                        }
                    }
                    if batch.len() < READ_BATCH {
                        next = events.try_recv().ok();
                    }
                }
                if batch.is_empty() {
                    continue;
                }
                let messages = std::mem::take(&mut batch);
                let delivered = driver
                    .call(Box::new(move |ctx| {
                        let now = ctx.now();
                        for (channel, payload) in messages {
                            if let Err(e) =
                                ctx.server.handle_cluster_message(now, &channel, &payload)
                            {
                                tracing::warn!(%e, %channel, "cluster message ignored");
                            }
                        }
                    }))
                    .await;
                if delivered.is_err() {
                    break;
                }
            }
        });
        Ok(RedisAdapter {
            link,
            publisher,
            reader,
            streams,
        })
    }

    /// The link's state and counters.
    pub fn link_stats(&self) -> LinkStats {
        self.link.stats()
    }

    /// The publisher's counters (published, failed while Redis was away, refused when full).
    pub fn publisher_stats(&self) -> PublisherStats {
        self.publisher.stats()
    }

    /// Leaves the cluster: stops reading, closes both Redis connections.
    pub async fn close(self) {
        self.reader.abort();
        if let Some(s) = self.streams {
            for task in lock(&s.readers).tasks.drain(..) {
                task.abort();
            }
            let _ = fred::prelude::ClientLike::quit(&s.store).await;
        }
        self.link.quit().await;
    }
}

/// The link's subscription for what the core asks to subscribe to (`None` for a stream: a
/// reader of its own reads it).
fn subscription(t: &Topic) -> Option<Subscription> {
    Some(match t {
        Topic::Channel(c) => Subscription::Channel(c.clone()),
        Topic::Pattern(p) => Subscription::Pattern(p.clone()),
        Topic::Shard(s) => Subscription::Shard(s.clone()),
        _ => return None,
    })
}

fn stream_of(t: &Topic) -> Option<String> {
    match t {
        Topic::Stream(s) => Some(s.clone()),
        _ => None,
    }
}

/// The driver's cluster output, handed to the publisher without waiting.
struct Sink<D: Send + Sync + Clone + Default + 'static> {
    publisher: Publisher,
    link: RedisLink,
    driver: Link<Server<D>>,
    /// The last subscription change, which the next one waits for.
    changes: Option<JoinHandle<()>>,
    streams: Option<Streams>,
}

impl<D: Send + Sync + Clone + Default + 'static> Sink<D> {
    fn take(&mut self, out: ClusterOutput) {
        match out {
            ClusterOutput::Subscription(change) => {
                if let (Some(s), ClusterSubscription::Subscribe(topics)) = (&self.streams, &change)
                {
                    for stream in topics.iter().filter_map(stream_of) {
                        let (s, driver) = (s.clone(), self.driver.clone());
                        tokio::spawn(async move { s.read(stream, driver).await });
                    }
                }
                let link = self.link.clone();
                // In order: a room left and joined again must end subscribed.
                let previous = self.changes.take();
                self.changes = Some(tokio::spawn(async move {
                    if let Some(p) = previous {
                        let _ = p.await;
                    }
                    let r = match &change {
                        ClusterSubscription::Subscribe(t) => {
                            link.subscribe(&t.iter().filter_map(subscription).collect::<Vec<_>>())
                                .await
                        }
                        ClusterSubscription::Unsubscribe(t) => {
                            link.unsubscribe(&t.iter().filter_map(subscription).collect::<Vec<_>>())
                                .await
                        }
                    };
                    if let Err(e) = r {
                        // Kept by the link: restored with the next reconnection.
                        tracing::warn!(%e, "redis adapter: subscription change delayed");
                    }
                }));
            }
            ClusterOutput::Transmit(t) => self.transmit(t),
        }
    }

    fn transmit(&mut self, t: ClusterTransmit) {
        let ClusterTransmit {
            channel,
            payload,
            sharded,
            count,
            command,
            ..
        } = t;
        match command {
            Command::Publish => {}
            Command::Append {
                fields,
                max_len,
                offset,
            } => {
                let reply = offset.map(|token| {
                    let driver = self.driver.clone();
                    let reply: AppendReply = Box::new(move |r| {
                        driver.call_detached(Box::new(move |ctx| {
                            let now = ctx.now();
                            let id = r.ok();
                            ctx.server.handle_stream_offset(now, token, id.as_deref());
                        }))
                    });
                    reply
                });
                return self.send(Job::Append {
                    stream: channel,
                    max_len,
                    fields,
                    reply,
                });
            }
            Command::SaveSession { ttl } => {
                let ttl_ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX);
                let job = SessionJob::Save {
                    key: channel,
                    value: payload,
                    ttl_ms,
                };
                if let Some(s) = &self.streams {
                    if s.sessions.try_send(job).is_err() {
                        tracing::warn!("redis adapter: session queue full, session not stored");
                    }
                }
                return;
            }
            Command::Restore(token) => {
                let driver = self.driver.clone();
                let reply: SessionReply = Box::new(move |token, found| {
                    driver.call_detached(Box::new(move |ctx| {
                        let now = ctx.now();
                        ctx.server.handle_restore(now, token, found);
                    }));
                });
                let job = SessionJob::Restore {
                    key: channel,
                    token,
                    reply,
                };
                let refused = match &self.streams {
                    Some(s) => s.sessions.try_send(job).err().map(|e| e.into_inner()),
                    None => Some(job),
                };
                // No room: the client waits no longer, it gets a fresh socket.
                if let Some(SessionJob::Restore { token, reply, .. }) = refused {
                    tracing::warn!("redis adapter: session queue full, recovery refused");
                    reply(token, None);
                }
                return;
            }
        }
        if let Some(token) = count {
            let driver = self.driver.clone();
            let counted = token.channel().to_owned();
            let count_sharded = token.sharded();
            let reply: CountReply = Box::new(move |r| match r {
                Ok(n) => driver.call_detached(Box::new(move |ctx| {
                    ctx.server.handle_node_count(token, n);
                })),
                // Without a count the request ends at its timeout, with what came.
                Err(e) => {
                    tracing::debug!(%e, "redis adapter: nodes not counted");
                    drop(token);
                }
            });
            self.send(Job::Count {
                channel: counted,
                sharded: count_sharded,
                reply,
            });
        }
        self.send(Job::Publish {
            channel,
            payload,
            sharded,
        });
    }

    fn send(&self, job: Job) {
        let refused = match self.publisher.try_send(job) {
            Ok(()) => return,
            Err(TrySendError::Full(job)) => {
                tracing::warn!("redis adapter: publish queue full, message dropped (counted)");
                job
            }
            Err(TrySendError::Closed(job)) => {
                tracing::debug!("redis adapter: closed, message dropped");
                job
            }
        };
        // A broadcast waiting for its entry id is delivered here without one.
        if let Job::Append {
            reply: Some(reply), ..
        } = refused
        {
            reply(Err(LinkError::Closed));
        }
    }
}

/// A recovering client's session and what it missed: the session taken (read and deleted), then
/// the entries after its offset, if the offset is still in the stream.
async fn restore(
    store: &fred::clients::Client,
    key: &str,
    stream: &str,
    offset: &str,
) -> Result<Option<SessionFound>, LinkError> {
    let Some(session) = streams::take_session(store, key).await? else {
        return Ok(None);
    };
    let Ok(offset) = StreamId::parse(offset) else {
        return Ok(None);
    };
    // The reference reads up to 100 pages; a longer backlog is not replayed in part.
    let Some(missed) = streams::entries_after(store, stream, offset, 100, 100).await? else {
        return Ok(None);
    };
    Ok(Some(SessionFound {
        session,
        entries: missed.entries,
        complete: missed.complete,
    }))
}
