//! The Redis commands of the streams protocol (`@socket.io/redis-streams-adapter` 0.3.1,
//! [`cluster::streams`](crate::cluster::streams)) as small async functions over one `fred`
//! client each: appending entries, reading the stream, and keeping recovery sessions.
//!
//! Everything goes through `CUSTOM` commands, so the crate's `fred` features stay as they are
//! (no `i-streams`, no `transactions`). Replies are parsed by hand from RESP2 shapes; anything
//! else is a [`LinkError::Redis`], never a panic.
//!
//! - [`xadd`] / [`xadd_many`]: `XADD <stream> MAXLEN ~ <maxLen> * <fields…>`, the second one as
//!   one pipeline (Redis keeps their order).
//! - [`StreamReader`]: `XREAD BLOCK <ms> COUNT <n> STREAMS <stream> <last id>` on a connection of
//!   its own (a blocked connection can do nothing else), resuming from the last id it handed out
//!   after a connection loss.
//! - [`save_session`] / [`take_session`]: `SET key value PX ttl`, and an atomic read-and-delete.
//! - [`entries_after`]: what a recovering client missed, bounded in pages.

use bytes::Bytes;
use fred::prelude::{ClientLike, ErrorKind, Options, Value};
use fred::types::{ClusterHash, CustomCommand};
use std::time::Duration;

use super::{build_client, LinkError, LinkOptions};
use crate::cluster::streams::{EntryFields, StreamId};

pub use crate::cluster::streams::StreamEntry;

/// What [`entries_after`] found after an offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Missed {
    /// The entries after the offset, in order.
    pub entries: Vec<StreamEntry>,
    /// `false` when the page bound was reached before the end of the stream (entries were
    /// still coming in faster than they were read, or the backlog is larger than the bound).
    pub complete: bool,
}

/// Connects a client for the streams commands: the same URL, timeouts and reconnection policy
/// as a [`RedisLink`](super::RedisLink)'s connections, one connection of its own. A
/// [`StreamReader`] needs one to itself; the other functions can share one.
pub async fn connect(options: &LinkOptions) -> Result<fred::clients::Client, LinkError> {
    let client = build_client(options, 16)?;
    match tokio::time::timeout(options.connect_timeout, client.init()).await {
        Ok(Ok(_)) => Ok(client),
        Ok(Err(e)) => Err(LinkError::Connect(e.to_string())),
        Err(_) => Err(LinkError::Connect("timed out".into())),
    }
}

pub(super) fn command(name: &'static str, blocking: bool) -> CustomCommand {
    CustomCommand::new_static(name, ClusterHash::FirstKey, blocking)
}

/// Maps a fred error to the link's.
fn error(e: fred::error::Error, timeout: Duration) -> LinkError {
    match e.kind() {
        ErrorKind::Timeout => LinkError::Timeout(timeout),
        ErrorKind::Canceled | ErrorKind::IO => LinkError::Down,
        ErrorKind::Config | ErrorKind::Url => LinkError::Config(e.to_string()),
        _ => LinkError::Redis(e.to_string()),
    }
}

/// The client's own command timeout, for error messages.
fn timeout_of(client: &fred::clients::Client) -> Duration {
    client.perf_config().default_command_timeout
}

pub(super) fn unexpected(what: &str) -> LinkError {
    LinkError::Redis(format!("unexpected {what} reply"))
}

/// The arguments of one `XADD`.
pub(super) fn xadd_args(stream: &str, max_len: u64, fields: &EntryFields) -> Vec<Value> {
    let mut args: Vec<Value> = Vec::with_capacity(5 + 2 * fields.len());
    args.push(stream.into());
    args.push("MAXLEN".into());
    args.push("~".into());
    args.push(max_len.to_string().into());
    args.push("*".into());
    for (name, value) in fields {
        args.push((*name).into());
        args.push(value.as_str().into());
    }
    args
}

/// `XADD <stream> MAXLEN ~ <max_len> * <fields…>` (what Node writes); the new entry's id.
pub async fn xadd(
    client: &fred::clients::Client,
    stream: &str,
    max_len: u64,
    fields: &EntryFields,
) -> Result<String, LinkError> {
    let reply: Value = client
        .custom(command("XADD", false), xadd_args(stream, max_len, fields))
        .await
        .map_err(|e| error(e, timeout_of(client)))?;
    text(&reply).ok_or_else(|| unexpected("XADD"))
}

/// Several `XADD`s as one pipeline, in order (Redis runs them in that order); their ids, or
/// the first failure. An empty list sends nothing.
pub async fn xadd_many(
    client: &fred::clients::Client,
    stream: &str,
    max_len: u64,
    entries: &[EntryFields],
) -> Result<Vec<String>, LinkError> {
    if entries.is_empty() {
        return Ok(Vec::new());
    }
    let pipeline = client.pipeline();
    for fields in entries {
        // Queued, not sent: a pipeline's commands are written by `try_all`.
        let _: Result<(), _> = pipeline
            .custom(command("XADD", false), xadd_args(stream, max_len, fields))
            .await;
    }
    let replies = pipeline.try_all::<Value>().await;
    replies
        .into_iter()
        .map(|r| {
            let v = r.map_err(|e| error(e, timeout_of(client)))?;
            text(&v).ok_or_else(|| unexpected("XADD"))
        })
        .collect()
}

/// `SET <key> <value> PX <ttl_ms>`: a session, kept for the recovery window (what Node's
/// `persistSession` sends).
pub async fn save_session(
    client: &fred::clients::Client,
    key: &str,
    value: &str,
    ttl_ms: u64,
) -> Result<(), LinkError> {
    let args: Vec<Value> = vec![
        key.into(),
        value.into(),
        "PX".into(),
        ttl_ms.max(1).to_string().into(),
    ];
    let reply: Value = client
        .custom(command("SET", false), args)
        .await
        .map_err(|e| error(e, timeout_of(client)))?;
    match text(&reply).as_deref() {
        Some("OK") => Ok(()),
        _ => Err(unexpected("SET")),
    }
}

/// Reads and deletes a session at once, so that a session is restored at most once: `GETDEL`
/// (Redis ≥ 6.2); on a server without it, `MULTI GET DEL EXEC` in one pipeline, which is what
/// Node's adapter always sends. `None` when there is no such key (never saved, expired, or
/// already taken).
pub async fn take_session(
    client: &fred::clients::Client,
    key: &str,
) -> Result<Option<Bytes>, LinkError> {
    let timeout = timeout_of(client);
    match client
        .custom::<Value, Value>(command("GETDEL", false), vec![key.into()])
        .await
    {
        Ok(v) => Ok(bulk(v)),
        Err(e) if is_unknown_command(&e) => take_session_multi(client, key, timeout).await,
        Err(e) => Err(error(e, timeout)),
    }
}

fn is_unknown_command(e: &fred::error::Error) -> bool {
    let d = e.details().to_ascii_lowercase();
    d.contains("unknown command") || d.contains("unknown or disabled command")
}

/// `MULTI`, `GET key`, `DEL key`, `EXEC` written together on the client's connection.
async fn take_session_multi(
    client: &fred::clients::Client,
    key: &str,
    timeout: Duration,
) -> Result<Option<Bytes>, LinkError> {
    let pipeline = client.pipeline();
    let empty: Vec<Value> = Vec::new();
    let _: Result<(), _> = pipeline
        .custom(command("MULTI", false), empty.clone())
        .await;
    let _: Result<(), _> = pipeline
        .custom(command("GET", false), vec![Value::from(key)])
        .await;
    let _: Result<(), _> = pipeline
        .custom(command("DEL", false), vec![Value::from(key)])
        .await;
    let _: Result<(), _> = pipeline.custom(command("EXEC", false), empty).await;
    let mut replies = pipeline.try_all::<Value>().await;
    let exec = replies
        .pop()
        .ok_or_else(|| unexpected("EXEC"))?
        .map_err(|e| error(e, timeout))?;
    match exec {
        Value::Array(mut results) if results.len() == 2 => Ok(bulk(results.swap_remove(0))),
        _ => Err(unexpected("EXEC")),
    }
}

/// The entries after `offset` for a recovering client: `None` when `offset` itself is no
/// longer in the stream (`XRANGE <stream> <offset> <offset>` is empty: trimmed, or never
/// written), else every later entry, read in pages of `XRANGE <stream> <next id> + COUNT
/// <page>`, at most `max_pages` of them (Node reads up to 100 ranges without `COUNT`; the
/// bound here is on entries too).
pub async fn entries_after(
    client: &fred::clients::Client,
    stream: &str,
    offset: StreamId,
    page: usize,
    max_pages: usize,
) -> Result<Option<Missed>, LinkError> {
    let at = offset.to_string();
    let first = xrange(client, stream, &at, &at, None).await?;
    if first.is_empty() {
        return Ok(None);
    }
    let page = page.max(1);
    let mut entries = Vec::new();
    let mut last = offset;
    for _ in 0..max_pages {
        let Some(next) = last.next() else {
            return Ok(Some(Missed {
                entries,
                complete: true,
            }));
        };
        let batch = xrange(client, stream, &next.to_string(), "+", Some(page)).await?;
        let full = batch.len() >= page;
        if let Some(e) = batch.last() {
            last = StreamId::parse(&e.id).map_err(|_| unexpected("XRANGE id"))?;
        }
        entries.extend(batch);
        if !full {
            return Ok(Some(Missed {
                entries,
                complete: true,
            }));
        }
    }
    Ok(Some(Missed {
        entries,
        complete: false,
    }))
}

/// `XRANGE <stream> <start> <end> [COUNT n]`.
async fn xrange(
    client: &fred::clients::Client,
    stream: &str,
    start: &str,
    end: &str,
    count: Option<usize>,
) -> Result<Vec<StreamEntry>, LinkError> {
    let mut args: Vec<Value> = vec![stream.into(), start.into(), end.into()];
    if let Some(n) = count {
        args.push("COUNT".into());
        args.push(n.to_string().into());
    }
    let reply: Value = client
        .custom(command("XRANGE", false), args)
        .await
        .map_err(|e| error(e, timeout_of(client)))?;
    match reply {
        Value::Array(items) => items.into_iter().map(entry).collect(),
        Value::Null => Ok(Vec::new()),
        _ => Err(unexpected("XRANGE")),
    }
}

/// `[id, [field, value, …]]`.
fn entry(v: Value) -> Result<StreamEntry, LinkError> {
    let Value::Array(mut pair) = v else {
        return Err(unexpected("stream entry"));
    };
    if pair.len() != 2 {
        return Err(unexpected("stream entry"));
    }
    let list = pair.pop().ok_or_else(|| unexpected("stream entry"))?;
    let id = pair
        .pop()
        .as_ref()
        .and_then(text)
        .ok_or_else(|| unexpected("stream entry id"))?;
    let list = match list {
        Value::Array(list) if list.len() % 2 == 0 => list,
        // A deleted entry in a consumer group's pending list reads as nil fields.
        Value::Null => Vec::new(),
        _ => return Err(unexpected("stream entry fields")),
    };
    let mut fields = Vec::with_capacity(list.len() / 2);
    let mut it = list.into_iter();
    while let (Some(k), Some(v)) = (it.next(), it.next()) {
        match (bulk(k), bulk(v)) {
            (Some(k), Some(v)) => fields.push((k, v)),
            _ => return Err(unexpected("stream entry field")),
        }
    }
    Ok(StreamEntry { id, fields })
}

/// A bulk string's bytes, without copying; `None` for nil or a non-string.
fn bulk(v: Value) -> Option<Bytes> {
    match v {
        Value::Bytes(b) => Some(b),
        Value::String(s) => Some(s.into_inner()),
        Value::Integer(i) => Some(Bytes::from(i.to_string())),
        _ => None,
    }
}

/// A reply as text (ids, `OK`).
pub(super) fn text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.to_string()),
        Value::Bytes(b) => std::str::from_utf8(b).ok().map(str::to_owned),
        _ => None,
    }
}

/// How a [`StreamReader`] reads.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ReaderOptions {
    /// How long one `XREAD` blocks waiting for entries (`blockTimeInMs`). Default 5 s.
    pub block: Duration,
    /// Most entries per `XREAD` (`readCount`), the bound of one batch. Default 100.
    pub count: usize,
}

impl Default for ReaderOptions {
    fn default() -> Self {
        ReaderOptions {
            block: Duration::from_millis(5000),
            count: 100,
        }
    }
}

/// Reads one stream in order on a connection of its own, from where it stood when it started
/// (Node starts at `$`): each [`StreamReader::next`] is one `XREAD BLOCK`.
///
/// After a connection loss the client reconnects by itself and the next read resumes after the
/// last entry handed out, so nothing written meanwhile is skipped (unless the stream was
/// trimmed past it). Unlike Node, which keeps reading from `$` until it has seen an entry, the
/// start is resolved to the stream's last id first, so entries written during an outage before
/// the first one are not lost either.
#[derive(Debug)]
pub struct StreamReader {
    client: fred::clients::Client,
    stream: String,
    last: String,
    options: ReaderOptions,
}

impl StreamReader {
    /// A reader of `stream` over `client` (which it must have to itself), starting after the
    /// stream's current last entry (`0-0` for a stream that does not exist yet).
    pub async fn start(
        client: fred::clients::Client,
        stream: &str,
        options: ReaderOptions,
    ) -> Result<StreamReader, LinkError> {
        let args: Vec<Value> = vec![
            stream.into(),
            "+".into(),
            "-".into(),
            "COUNT".into(),
            "1".into(),
        ];
        let reply: Value = client
            .custom(command("XREVRANGE", false), args)
            .await
            .map_err(|e| error(e, timeout_of(&client)))?;
        let last = match reply {
            Value::Array(mut items) => match items.pop() {
                Some(e) => entry(e)?.id,
                None => "0-0".to_owned(),
            },
            Value::Null => "0-0".to_owned(),
            _ => return Err(unexpected("XREVRANGE")),
        };
        Ok(Self::resume(client, stream, &last, options))
    }

    /// A reader of `stream` that goes on after entry `last` (an id, or `$` for only what comes
    /// next, as Node starts).
    pub fn resume(
        client: fred::clients::Client,
        stream: &str,
        last: &str,
        options: ReaderOptions,
    ) -> StreamReader {
        StreamReader {
            client,
            stream: stream.to_owned(),
            last: last.to_owned(),
            options,
        }
    }

    /// The id after which the next read starts.
    pub fn last_id(&self) -> &str {
        &self.last
    }

    /// One `XREAD BLOCK <block> COUNT <count> STREAMS <stream> <last>`: the entries after the
    /// last one handed out, in order, at most `count`; empty when the block time passed with
    /// nothing new. On `Err` (connection lost, timeout) nothing was consumed: call again, it
    /// resumes from the same id.
    pub async fn next(&mut self) -> Result<Vec<StreamEntry>, LinkError> {
        let block_ms = u64::try_from(self.options.block.as_millis()).unwrap_or(u64::MAX);
        let args: Vec<Value> = vec![
            "BLOCK".into(),
            block_ms.to_string().into(),
            "COUNT".into(),
            self.options.count.max(1).to_string().into(),
            "STREAMS".into(),
            self.stream.as_str().into(),
            self.last.as_str().into(),
        ];
        // The reply may take the whole block time: wait that long plus the usual timeout.
        let wait = self.options.block + timeout_of(&self.client);
        let reply: Value = self
            .client
            .with_options(&Options {
                timeout: Some(wait),
                ..Options::default()
            })
            .custom(
                CustomCommand::new_static("XREAD", ClusterHash::Offset(5), true),
                args,
            )
            .await
            .map_err(|e| error(e, wait))?;
        let entries = match reply {
            Value::Null => Vec::new(),
            Value::Array(mut streams) => match streams.pop() {
                None => Vec::new(),
                Some(Value::Array(mut pair)) if pair.len() == 2 => match pair.pop() {
                    Some(Value::Array(items)) => items
                        .into_iter()
                        .map(entry)
                        .collect::<Result<Vec<_>, _>>()?,
                    _ => return Err(unexpected("XREAD")),
                },
                _ => return Err(unexpected("XREAD")),
            },
            // RESP3 would give a map; this client speaks RESP2.
            _ => return Err(unexpected("XREAD")),
        };
        if entries.len() > self.options.count.max(1) {
            return Err(unexpected("XREAD (more entries than COUNT)"));
        }
        if let Some(e) = entries.last() {
            self.last = e.id.clone();
        }
        Ok(entries)
    }

    /// Closes the reader's connection.
    pub async fn quit(self) {
        let _ = self.client.quit().await;
    }
}
