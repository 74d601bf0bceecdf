//! The ordered, bounded job queue for callers that must never block or await.

use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::mpsc;

use super::{count, parse_count, publish, LinkError, Shared};
use crate::cluster::streams::EntryFields;
use fred::prelude::{ClientLike, PubsubInterface, Value};

/// Called with the answer of a [`Job::Count`], on the publisher's worker task.
pub type CountReply = Box<dyn FnOnce(Result<usize, LinkError>) + Send>;

/// Called with the entry id of a [`Job::Append`], on the publisher's worker task.
pub type AppendReply = Box<dyn FnOnce(Result<String, LinkError>) + Send>;

/// One unit of work for a [`Publisher`].
pub enum Job {
    /// `PUBLISH` (or `SPUBLISH` when `sharded`) `payload` on `channel`.
    Publish {
        /// The channel.
        channel: String,
        /// The payload.
        payload: Bytes,
        /// `SPUBLISH` instead of `PUBLISH`.
        sharded: bool,
    },
    /// Count subscribers of `channel` (NUMSUB, or SHARDNUMSUB when sharded) and hand the result to `reply`.
    Count {
        /// The channel.
        channel: String,
        /// `PUBSUB SHARDNUMSUB` instead of `PUBSUB NUMSUB`.
        sharded: bool,
        /// Gets the count, or why there is none; called exactly once, on the worker task, so it
        /// must not block.
        reply: CountReply,
    },
    /// `XADD <stream> MAXLEN ~ <max_len> * <fields…>`, in order with the publishes around it.
    Append {
        /// The stream.
        stream: String,
        /// `MAXLEN ~`.
        max_len: u64,
        /// The entry's fields.
        fields: EntryFields,
        /// Gets the entry id, or why there is none (called once, must not block), if asked.
        reply: Option<AppendReply>,
    },
}

impl fmt::Debug for Job {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Job::Publish {
                channel,
                payload,
                sharded,
            } => f
                .debug_struct("Publish")
                .field("channel", channel)
                .field("payload_len", &payload.len())
                .field("sharded", sharded)
                .finish(),
            Job::Count {
                channel, sharded, ..
            } => f
                .debug_struct("Count")
                .field("channel", channel)
                .field("sharded", sharded)
                .finish_non_exhaustive(),
            Job::Append { stream, fields, .. } => f
                .debug_struct("Append")
                .field("stream", stream)
                .field("fields", &fields.len())
                .finish_non_exhaustive(),
        }
    }
}

/// A job [`Publisher::try_send`] did not take, handed back.
#[derive(Debug, thiserror::Error)]
pub enum TrySendError {
    /// The queue holds its bound of jobs.
    #[error("the Redis publisher queue is full")]
    Full(Job),
    /// The worker is gone (the runtime is shutting down).
    #[error("the Redis publisher is closed")]
    Closed(Job),
}

impl TrySendError {
    /// The job that was refused.
    pub fn into_job(self) -> Job {
        match self {
            TrySendError::Full(job) | TrySendError::Closed(job) => job,
        }
    }
}

/// A publisher's counters, see [`Publisher::stats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PublisherStats {
    /// Publish jobs Redis accepted.
    pub published: u64,
    /// Count jobs answered with a count.
    pub counted: u64,
    /// Jobs that failed (link down or closed, timeout, Redis error); a failed Count's reply got
    /// the error.
    pub failed: u64,
    /// Jobs [`Publisher::try_send`] refused (queue full or closed).
    pub refused: u64,
    /// Jobs waiting in the queue now.
    pub queued: usize,
}

#[derive(Debug, Default)]
struct Counters {
    published: AtomicU64,
    counted: AtomicU64,
    failed: AtomicU64,
    refused: AtomicU64,
}

/// An ordered, bounded queue of [`Job`]s run one after the other on the link's publisher
/// connection, by a worker task of its own.
///
/// Jobs run strictly in the order they were accepted: a Count queued before a Publish is
/// answered before the Publish goes out. While the link is down each job fails at once (a Count's
/// reply gets [`LinkError::Down`]), so the queue drains instead of growing; a job caught by a loss
/// fails within the command timeout. Clones share the queue and the counters; the worker stops
/// when the last clone is dropped, after running what was queued.
#[derive(Clone)]
pub struct Publisher {
    jobs: mpsc::Sender<Job>,
    counters: Arc<Counters>,
}

impl fmt::Debug for Publisher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Publisher")
            .field("stats", &self.stats())
            .finish()
    }
}

impl Publisher {
    pub(super) fn spawn(
        runtime: &tokio::runtime::Handle,
        client: fred::clients::Client,
        shared: Arc<Shared>,
        bound: usize,
    ) -> Publisher {
        let (jobs, queue) = mpsc::channel(bound);
        let counters = Arc::new(Counters::default());
        runtime.spawn(work(queue, client, shared, counters.clone()));
        Publisher { jobs, counters }
    }

    /// Queues `job` without blocking; a full (or closed) queue hands it back, counted as refused.
    pub fn try_send(&self, job: Job) -> Result<(), TrySendError> {
        self.jobs.try_send(job).map_err(|e| {
            self.counters.refused.fetch_add(1, Ordering::Relaxed);
            match e {
                mpsc::error::TrySendError::Full(job) => TrySendError::Full(job),
                mpsc::error::TrySendError::Closed(job) => TrySendError::Closed(job),
            }
        })
    }

    /// The counters now.
    pub fn stats(&self) -> PublisherStats {
        let c = &self.counters;
        PublisherStats {
            published: c.published.load(Ordering::Relaxed),
            counted: c.counted.load(Ordering::Relaxed),
            failed: c.failed.load(Ordering::Relaxed),
            refused: c.refused.load(Ordering::Relaxed),
            queued: self.jobs.max_capacity() - self.jobs.capacity(),
        }
    }
}

/// Jobs sent to Redis together, at most: what queued up while the previous ones were out.
const PIPELINE: usize = 128;

async fn work(
    mut queue: mpsc::Receiver<Job>,
    client: fred::clients::Client,
    shared: Arc<Shared>,
    counters: Arc<Counters>,
) {
    let mut jobs = Vec::with_capacity(PIPELINE);
    while let Some(job) = queue.recv().await {
        jobs.push(job);
        while jobs.len() < PIPELINE {
            match queue.try_recv() {
                Ok(job) => jobs.push(job),
                Err(_) => break,
            }
        }
        if jobs.len() == 1 {
            if let Some(job) = jobs.pop() {
                one(&client, &shared, &counters, job).await;
            }
        } else {
            batch(&client, &shared, &counters, std::mem::take(&mut jobs)).await;
        }
    }
}

/// One job, alone: one round trip.
async fn one(client: &fred::clients::Client, shared: &Shared, counters: &Counters, job: Job) {
    match job {
        Job::Publish {
            channel,
            payload,
            sharded,
        } => {
            let r = publish(client, shared, &channel, payload, sharded).await;
            finish_publish(counters, &channel, r);
        }
        Job::Count {
            channel,
            sharded,
            reply,
        } => {
            let r = count(client, shared, &channel, sharded).await;
            finish_count(counters, &channel, r, reply);
        }
        Job::Append {
            stream,
            max_len,
            fields,
            reply,
        } => {
            let r = match shared.ready() {
                Ok(()) => super::streams::xadd(client, &stream, max_len, &fields).await,
                Err(e) => Err(e),
            };
            finish_append(counters, &stream, r, reply);
        }
    }
}

/// One command of a pipeline, taken apart from its job.
enum Command {
    Publish(String, Bytes, bool),
    Count(String, bool),
    Append(String, u64, EntryFields),
}

/// Several jobs as one pipeline, in their order: Redis runs them in that order on this
/// connection (so a Count still sees the cluster before the Publish after it), and a burst of
/// broadcasts costs it one read and one reply write instead of one round trip each.
async fn batch(
    client: &fred::clients::Client,
    shared: &Shared,
    counters: &Counters,
    jobs: Vec<Job>,
) {
    let results: Vec<Result<Value, LinkError>> = match shared.ready() {
        Err(e) => jobs.iter().map(|_| Err(e.clone())).collect(),
        Ok(()) => {
            // The commands apart from the jobs: a Count's reply is not `Sync`, so no reference
            // to a job may be held across the awaits below.
            let commands: Vec<Command> = jobs
                .iter()
                .map(|job| match job {
                    Job::Publish {
                        channel,
                        payload,
                        sharded,
                    } => Command::Publish(channel.clone(), payload.clone(), *sharded),
                    Job::Count {
                        channel, sharded, ..
                    } => Command::Count(channel.clone(), *sharded),
                    Job::Append {
                        stream,
                        max_len,
                        fields,
                        ..
                    } => Command::Append(stream.clone(), *max_len, fields.clone()),
                })
                .collect();
            let pipeline = client.pipeline();
            for c in commands {
                // Queuing in memory cannot fail but for a bad argument, which these are not.
                let _: Result<(), _> = match c {
                    Command::Publish(channel, p, false) => pipeline.publish(channel, p).await,
                    Command::Publish(channel, p, true) => pipeline.spublish(channel, p).await,
                    Command::Count(channel, false) => pipeline.pubsub_numsub(channel).await,
                    Command::Count(channel, true) => pipeline.pubsub_shardnumsub(channel).await,
                    Command::Append(stream, max_len, fields) => {
                        let args = super::streams::xadd_args(&stream, max_len, &fields);
                        pipeline
                            .custom(super::streams::command("XADD", false), args)
                            .await
                    }
                };
            }
            match tokio::time::timeout(shared.timeout, pipeline.try_all::<Value>()).await {
                Ok(results) => results
                    .into_iter()
                    .map(|r| r.map_err(|e| shared.error(e)))
                    .collect(),
                Err(_) => jobs
                    .iter()
                    .map(|_| Err(LinkError::Timeout(shared.timeout)))
                    .collect(),
            }
        }
    };
    let mut results = results.into_iter();
    for job in jobs {
        let r = results
            .next()
            .unwrap_or(Err(LinkError::Redis("no reply in the pipeline".into())));
        match job {
            Job::Publish { channel, .. } => finish_publish(counters, &channel, r.map(drop)),
            Job::Count { channel, reply, .. } => {
                finish_count(counters, &channel, r.and_then(parse_count), reply)
            }
            Job::Append { stream, reply, .. } => {
                let id = r.and_then(|v| {
                    super::streams::text(&v).ok_or_else(|| super::streams::unexpected("XADD"))
                });
                finish_append(counters, &stream, id, reply)
            }
        }
    }
}

fn finish_append(
    counters: &Counters,
    stream: &str,
    result: Result<String, LinkError>,
    reply: Option<AppendReply>,
) {
    let counter = if result.is_ok() {
        &counters.published
    } else {
        &counters.failed
    };
    counter.fetch_add(1, Ordering::Relaxed);
    if let Err(e) = &result {
        tracing::debug!(error = %e, %stream, "redis XADD job failed");
    }
    if let Some(reply) = reply {
        if catch_unwind(AssertUnwindSafe(move || reply(result))).is_err() {
            tracing::error!(%stream, "a redis Append reply panicked");
        }
    }
}

fn finish_publish(counters: &Counters, channel: &str, r: Result<(), LinkError>) {
    match r {
        Ok(()) => {
            counters.published.fetch_add(1, Ordering::Relaxed);
        }
        Err(e) => {
            counters.failed.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(error = %e, %channel, "redis publish job failed");
        }
    }
}

fn finish_count(
    counters: &Counters,
    channel: &str,
    result: Result<usize, LinkError>,
    reply: CountReply,
) {
    let counter = if result.is_ok() {
        &counters.counted
    } else {
        &counters.failed
    };
    counter.fetch_add(1, Ordering::Relaxed);
    if catch_unwind(AssertUnwindSafe(move || reply(result))).is_err() {
        tracing::error!(%channel, "a redis Count reply panicked");
    }
}
