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

use super::{
    CountReply, Job, LinkError, LinkEvent, LinkOptions, LinkStats, Publisher, PublisherStats,
    RedisLink, Subscription, TrySendError, DEFAULT_QUEUE_BOUND,
};
use crate::cluster::adapter::Topic;
use crate::io::tokio::SocketIo;
use crate::io::tokio::{ClusterOutput, Link};
use crate::{ClusterConfig, ClusterSubscription, ClusterTransmit, Server};
use serde::Serialize;
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
}

impl RedisAdapter {
    /// Joins the cluster on Redis: the core's cluster layer is switched on, every namespace's
    /// channels are subscribed (on one connection), and from then on what the core publishes
    /// goes to Redis and what Redis delivers reaches the core. Returns once subscribed: the
    /// node is counted by every other node from then on.
    ///
    /// Namespaces created later (by [`SocketIo::ns`], or dynamic ones) are subscribed as they
    /// appear. A socket's data travels in `fetchSockets` answers as `serde` serializes it.
    pub async fn attach<D>(
        io: &SocketIo<D>,
        options: RedisAdapterOptions,
    ) -> Result<RedisAdapter, LinkError>
    where
        D: Send + Sync + Clone + Default + Serialize + 'static,
    {
        let (link, mut events) = RedisLink::connect(options.link).await?;
        let publisher = link.publisher(options.publish_queue);
        let driver = io.link.clone();
        let (sink_publisher, sink_link, sink_driver) =
            (publisher.clone(), link.clone(), driver.clone());
        let cluster = options.cluster;
        let subs = io
            .query(move |ctx| {
                ctx.server.join_cluster(cluster);
                let mut subs = Vec::new();
                while let Some(c) = ctx.server.poll_cluster_subscription() {
                    if let ClusterSubscription::Subscribe(topics) = c {
                        subs.extend(topics.iter().map(subscription));
                    }
                }
                let mut sink = Sink {
                    publisher: sink_publisher,
                    link: sink_link,
                    driver: sink_driver,
                    changes: None,
                };
                ctx.cluster_sink = Some(Box::new(move |out| sink.take(out)));
                subs
            })
            .await
            .ok_or(LinkError::Closed)?;
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
        self.link.quit().await;
    }
}

/// The link's subscription for what the core asks to subscribe to.
fn subscription(t: &Topic) -> Subscription {
    match t {
        Topic::Channel(c) => Subscription::Channel(c.clone()),
        Topic::Pattern(p) => Subscription::Pattern(p.clone()),
        Topic::Shard(s) => Subscription::Shard(s.clone()),
    }
}

/// The driver's cluster output, handed to the publisher without waiting.
struct Sink<D: Send + Sync + Clone + Default + 'static> {
    publisher: Publisher,
    link: RedisLink,
    driver: Link<Server<D>>,
    /// The last subscription change, which the next one waits for.
    changes: Option<JoinHandle<()>>,
}

impl<D: Send + Sync + Clone + Default + 'static> Sink<D> {
    fn take(&mut self, out: ClusterOutput) {
        match out {
            ClusterOutput::Subscription(change) => {
                let link = self.link.clone();
                // In order: a room left and joined again must end subscribed.
                let previous = self.changes.take();
                self.changes = Some(tokio::spawn(async move {
                    if let Some(p) = previous {
                        let _ = p.await;
                    }
                    let r = match &change {
                        ClusterSubscription::Subscribe(t) => {
                            link.subscribe(&t.iter().map(subscription).collect::<Vec<_>>())
                                .await
                        }
                        ClusterSubscription::Unsubscribe(t) => {
                            link.unsubscribe(&t.iter().map(subscription).collect::<Vec<_>>())
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
            ..
        } = t;
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
        match self.publisher.try_send(job) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                tracing::warn!("redis adapter: publish queue full, message dropped (counted)")
            }
            Err(TrySendError::Closed(_)) => {
                tracing::debug!("redis adapter: closed, message dropped")
            }
        }
    }
}
