//! The Redis commands of the streams protocol (`roomcast::io::redis::streams`) against a private
//! `redis-server` each test starts on a free loopback port and stops by PID (also when the test
//! fails). Without `redis-server` on PATH the tests print a notice and pass, unless
//! `ROOMCAST_REQUIRE_REDIS=1`.
#![cfg(feature = "redis")]

use std::time::{Duration, Instant};

use fred::prelude::ClientLike;
use roomcast::cluster::classic::{Broadcast, ClusterPacket, Options};
use roomcast::cluster::streams::{self, decode_entry, EntryFields, Message, Session, StreamId};
use roomcast::io::redis::streams::{
    connect, entries_after, save_session, take_session, xadd, xadd_many, ReaderOptions,
    StreamReader,
};
use roomcast::io::redis::LinkOptions;

#[path = "support/redis.rs"]
mod redis_support;
use redis_support::Redis;

fn options(redis: &Redis) -> LinkOptions {
    let mut options = LinkOptions::new(redis.url());
    options.command_timeout = Duration::from_millis(500);
    options.reconnect_max = Duration::from_millis(200);
    options
}

fn broadcast(tag: &str) -> Broadcast {
    Broadcast {
        uid: "aaaaaaaaaaaaaaaa".into(),
        packet: ClusterPacket {
            nsp: "/".into(),
            data: vec![rmpv::Value::from("msg"), rmpv::Value::from(tag)],
        },
        opts: Options {
            rooms: vec!["red".into()],
            ..Options::default()
        },
    }
}

fn tag_of(fields: &[(bytes::Bytes, bytes::Bytes)]) -> String {
    match decode_entry(fields).expect("decodes").message {
        Message::Broadcast(b) => b.packet.data[1].as_str().unwrap().to_owned(),
        other => panic!("not a broadcast: {other:?}"),
    }
}

fn reader_options(block_ms: u64, count: usize) -> ReaderOptions {
    let mut o = ReaderOptions::default();
    o.block = Duration::from_millis(block_ms);
    o.count = count;
    o
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entries_are_written_as_node_writes_them_and_read_back() {
    let Some(redis) = Redis::start() else { return };
    let c = connect(&options(&redis)).await.unwrap();
    let fields = streams::encode_broadcast(&broadcast("one"));
    let id = xadd(&c, "socket.io", 10_000, &fields).await.unwrap();
    assert!(StreamId::parse(&id).is_ok(), "{id}");
    // The fields as stored, in order.
    let ids = xadd_many(
        &c,
        "socket.io",
        10_000,
        &[
            streams::encode_broadcast(&broadcast("two")),
            streams::encode_broadcast(&broadcast("three")),
        ],
    )
    .await
    .unwrap();
    assert_eq!(ids.len(), 2);
    let parse = |s: &str| StreamId::parse(s).unwrap();
    assert!(parse(&id) < parse(&ids[0]) && parse(&ids[0]) < parse(&ids[1]));
    assert!(xadd_many(&c, "socket.io", 10, &[])
        .await
        .unwrap()
        .is_empty());

    let missed = entries_after(&c, "socket.io", parse(&id), 100, 100)
        .await
        .unwrap()
        .expect("the offset is in the stream");
    assert!(missed.complete);
    let got: Vec<(String, String)> = missed
        .entries
        .iter()
        .map(|e| (e.id.clone(), tag_of(&e.fields)))
        .collect();
    assert_eq!(
        got,
        [
            (ids[0].clone(), "two".into()),
            (ids[1].clone(), "three".into())
        ]
    );
    let names: Vec<&[u8]> = missed.entries[0]
        .fields
        .iter()
        .map(|(k, _)| &k[..])
        .collect();
    assert_eq!(names, [&b"uid"[..], b"nsp", b"type", b"data"]);
    let written: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    assert_eq!(redis.raw(&["XLEN", "socket.io"]), ":3");
    assert_eq!(written[2], ("type", "3"));
    c.quit().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entries_after_an_offset_are_paged_and_bounded() {
    let Some(redis) = Redis::start() else { return };
    let c = connect(&options(&redis)).await.unwrap();
    let first = xadd(
        &c,
        "s",
        100_000,
        &streams::encode_broadcast(&broadcast("0")),
    )
    .await
    .unwrap();
    let batch: Vec<EntryFields> = (1..=250)
        .map(|i| streams::encode_broadcast(&broadcast(&i.to_string())))
        .collect();
    let ids = xadd_many(&c, "s", 100_000, &batch).await.unwrap();
    let first = StreamId::parse(&first).unwrap();

    let all = entries_after(&c, "s", first, 100, 100)
        .await
        .unwrap()
        .unwrap();
    assert!(all.complete);
    assert_eq!(all.entries.len(), 250);
    let tags: Vec<String> = all.entries.iter().map(|e| tag_of(&e.fields)).collect();
    assert_eq!(tags, (1..=250).map(|i| i.to_string()).collect::<Vec<_>>());
    assert_eq!(
        all.entries.iter().map(|e| e.id.clone()).collect::<Vec<_>>(),
        ids
    );

    // The page bound: 2 pages of 100, not complete.
    let some = entries_after(&c, "s", first, 100, 2)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((some.entries.len(), some.complete), (200, false));
    // Exactly a page's worth left: one more (empty) read says it is complete.
    let at_150 = StreamId::parse(&ids[149]).unwrap();
    let rest = entries_after(&c, "s", at_150, 100, 100)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((rest.entries.len(), rest.complete), (100, true));
    // At the end: nothing missed.
    let last = StreamId::parse(ids.last().unwrap()).unwrap();
    let none = entries_after(&c, "s", last, 100, 100)
        .await
        .unwrap()
        .unwrap();
    assert!(none.entries.is_empty() && none.complete);
    // An offset that is not in the stream (never written, or trimmed): None.
    let gone = StreamId { ms: 1, seq: 0 };
    assert_eq!(entries_after(&c, "s", gone, 100, 100).await.unwrap(), None);
    assert_eq!(
        entries_after(&c, "nothing", first, 100, 100).await.unwrap(),
        None
    );
    redis.raw(&["XTRIM", "s", "MAXLEN", "10"]);
    assert_eq!(entries_after(&c, "s", first, 100, 100).await.unwrap(), None);
    c.quit().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reader_hands_out_every_entry_once_in_order_in_bounded_batches() {
    let Some(redis) = Redis::start() else { return };
    let opts = options(&redis);
    let writer = connect(&opts).await.unwrap();
    // Written before the reader starts: not read (the reader starts at the end, as Node's).
    xadd(
        &writer,
        "socket.io",
        10_000,
        &streams::encode_broadcast(&broadcast("old")),
    )
    .await
    .unwrap();
    let mut reader = StreamReader::start(
        connect(&opts).await.unwrap(),
        "socket.io",
        reader_options(200, 100),
    )
    .await
    .unwrap();
    // Nothing new: an empty batch after the block time.
    let t = Instant::now();
    assert!(reader.next().await.unwrap().is_empty());
    assert!(t.elapsed() >= Duration::from_millis(150));

    let batch: Vec<EntryFields> = (0..250)
        .map(|i| streams::encode_broadcast(&broadcast(&i.to_string())))
        .collect();
    xadd_many(&writer, "socket.io", 10_000, &batch)
        .await
        .unwrap();
    let mut tags = Vec::new();
    while tags.len() < 250 {
        let got = reader.next().await.unwrap();
        assert!(!got.is_empty() && got.len() <= 100, "{}", got.len());
        tags.extend(got.iter().map(|e| tag_of(&e.fields)));
    }
    assert_eq!(tags, (0..250).map(|i| i.to_string()).collect::<Vec<_>>());
    assert!(reader.next().await.unwrap().is_empty());
    reader.quit().await;
    writer.quit().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reader_resumes_after_a_connection_loss() {
    let Some(redis) = Redis::start() else { return };
    let opts = options(&redis);
    let writer = connect(&opts).await.unwrap();
    let mut reader = StreamReader::start(
        connect(&opts).await.unwrap(),
        "socket.io",
        reader_options(300, 10),
    )
    .await
    .unwrap();
    xadd(
        &writer,
        "socket.io",
        10_000,
        &streams::encode_broadcast(&broadcast("a")),
    )
    .await
    .unwrap();
    let got = reader.next().await.unwrap();
    assert_eq!(tag_of(&got[0].fields), "a");

    // Every client connection is dropped (as by a proxy or a failover) while the reader is
    // blocked in an XREAD; entries are written while it is away.
    let (during, ()) = tokio::join!(reader.next(), async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        redis.raw(&["CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes"]);
    });
    assert!(during.map_or(true, |got| got.is_empty()));
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut written = 0;
    while written < 3 {
        assert!(Instant::now() < deadline, "the writer did not come back");
        let fields = streams::encode_broadcast(&broadcast(&format!("b{written}")));
        if xadd(&writer, "socket.io", 10_000, &fields).await.is_ok() {
            written += 1;
        } else {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let mut tags = Vec::new();
    let mut errors = 0;
    while tags.len() < 3 {
        assert!(
            Instant::now() < deadline,
            "the reader did not resume: {tags:?}"
        );
        match reader.next().await {
            Ok(got) => tags.extend(got.iter().map(|e| tag_of(&e.fields))),
            Err(_) => {
                errors += 1;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    assert_eq!(tags, ["b0", "b1", "b2"], "after {errors} failed reads");
    assert!(reader.next().await.unwrap().is_empty());
    reader.quit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_are_kept_for_their_ttl_and_taken_once() {
    let Some(redis) = Redis::start() else { return };
    let c = connect(&options(&redis)).await.unwrap();
    let session = Session {
        sid: "9kr2WTlK_02NMRD5AAAC".into(),
        pid: "NgsQxnj6S7_MMxDLAAAD".into(),
        rooms: vec!["9kr2WTlK_02NMRD5AAAC".into(), "green".into()],
        data: rmpv::Value::Map(vec![("node".into(), "33081".into())]),
    };
    let key = streams::session_key(streams::DEFAULT_SESSION_KEY_PREFIX, &session.pid);
    save_session(&c, &key, &session.encode(), 30_000)
        .await
        .unwrap();
    let pttl: i64 = redis.raw(&["PTTL", &key])[1..].parse().unwrap();
    assert!(pttl > 29_000 && pttl <= 30_000, "{pttl}");
    let taken = take_session(&c, &key).await.unwrap().expect("stored");
    assert_eq!(Session::decode(&taken).unwrap(), session);
    assert_eq!(take_session(&c, &key).await.unwrap(), None, "taken once");

    save_session(&c, "short", "x", 50).await.unwrap();
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_eq!(take_session(&c, "short").await.unwrap(), None, "expired");
    c.quit().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_are_taken_with_multi_where_getdel_is_missing() {
    // GETDEL renamed away: the server answers "unknown command", as one before 6.2 does.
    let Some(redis) = Redis::start_with(&["--rename-command", "GETDEL", ""]) else {
        return;
    };
    assert!(redis
        .raw(&["GETDEL", "k"])
        .starts_with("-ERR unknown command"));
    let c = connect(&options(&redis)).await.unwrap();
    save_session(&c, "k", "value", 10_000).await.unwrap();
    assert_eq!(
        take_session(&c, "k").await.unwrap().as_deref(),
        Some(&b"value"[..])
    );
    assert_eq!(take_session(&c, "k").await.unwrap(), None);
    assert_eq!(redis.raw(&["EXISTS", "k"]), ":0");
    // The connection is still usable after the transaction.
    save_session(&c, "k2", "v2", 10_000).await.unwrap();
    assert_eq!(redis.raw(&["GET", "k2"]), "v2");
    c.quit().await.unwrap();
}
