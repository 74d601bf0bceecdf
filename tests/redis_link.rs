//! The Redis link against a private `redis-server` each test starts on a free loopback port and
//! stops by PID (also when the test fails). Without `redis-server` on PATH the tests print a
//! notice and pass, unless `ROOMCAST_REQUIRE_REDIS=1`.

use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use roomcast::io::redis::{
    Job, LinkError, LinkEvent, LinkOptions, RedisLink, Subscription, TrySendError,
};
use tokio::sync::mpsc::Receiver;

#[path = "support/redis.rs"]
mod redis_support;
use redis_support::Redis;

/// What `CLIENT LIST` says of subscriptions.
trait Subscriptions {
    /// `(sub, psub, ssub)` of every connection that holds a subscription.
    fn subscribed_connections(&self) -> Vec<(u32, u32, u32)>;
}

impl Subscriptions for Redis {
    fn subscribed_connections(&self) -> Vec<(u32, u32, u32)> {
        let field = |line: &str, name: &str| -> u32 {
            line.split(' ')
                .find_map(|kv| kv.strip_prefix(name))
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        };
        self.raw(&["CLIENT", "LIST"])
            .lines()
            .map(|l| (field(l, "sub="), field(l, "psub="), field(l, "ssub=")))
            .filter(|&(s, p, ss)| s + p + ss > 0)
            .collect()
    }
}

fn options(redis: &Redis) -> LinkOptions {
    let mut options = LinkOptions::new(redis.url());
    options.command_timeout = Duration::from_millis(500);
    options.reconnect_max = Duration::from_millis(500);
    options
}

async fn link(redis: &Redis) -> (RedisLink, Receiver<LinkEvent>) {
    let (link, mut events) = RedisLink::connect(options(redis)).await.expect("connect");
    assert_eq!(next(&mut events).await, LinkEvent::Up);
    (link, events)
}

async fn next(events: &mut Receiver<LinkEvent>) -> LinkEvent {
    tokio::time::timeout(Duration::from_secs(5), events.recv())
        .await
        .expect("an event within 5 s")
        .expect("the event channel is open")
}

/// The next message, skipping Up/Down.
async fn message(events: &mut Receiver<LinkEvent>) -> (String, Bytes) {
    loop {
        if let LinkEvent::Message { channel, payload } = next(events).await {
            return (channel, payload);
        }
    }
}

fn all_subs() -> Vec<Subscription> {
    vec![
        Subscription::Channel("room#/#".into()),
        Subscription::Pattern("room#/#*".into()),
        Subscription::Shard("shard#/#".into()),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_counts_and_unsubscribe() {
    let Some(redis) = Redis::start() else { return };
    let (a, mut a_events) = link(&redis).await;
    let (b, mut b_events) = link(&redis).await;

    a.subscribe(&all_subs()).await.unwrap();
    // Subscribing again changes nothing: still one connection.
    a.subscribe(&all_subs()).await.unwrap();
    assert_eq!(redis.subscribed_connections(), vec![(1, 1, 1)]);
    assert_eq!(a.numsub("room#/#").await.unwrap(), 1);
    assert_eq!(b.numsub("room#/#").await.unwrap(), 1);
    assert_eq!(b.shard_numsub("shard#/#").await.unwrap(), 1);
    assert_eq!(b.numsub("nobody").await.unwrap(), 0);

    b.publish("room#/#", Bytes::from_static(b"one"))
        .await
        .unwrap();
    // The channel and the pattern both match: two deliveries.
    let mut got = vec![message(&mut a_events).await, message(&mut a_events).await];
    got.sort();
    assert_eq!(got, vec![("room#/#".into(), "one".into()); 2]);
    b.publish("room#/#x#", Bytes::from_static(b"\x93\xa6bin\xff"))
        .await
        .unwrap();
    assert_eq!(
        message(&mut a_events).await,
        ("room#/#x#".into(), Bytes::from_static(b"\x93\xa6bin\xff"))
    );
    b.spublish("shard#/#", Bytes::from_static(b"three"))
        .await
        .unwrap();
    assert_eq!(
        message(&mut a_events).await,
        ("shard#/#".into(), "three".into())
    );

    // Two nodes count two.
    b.subscribe(&[Subscription::Channel("room#/#".into())])
        .await
        .unwrap();
    assert_eq!(a.numsub("room#/#").await.unwrap(), 2);

    // Unsubscribe: a no longer counts nor receives on the channel (the pattern still matches).
    a.unsubscribe(&[
        Subscription::Channel("room#/#".into()),
        Subscription::Shard("shard#/#".into()),
    ])
    .await
    .unwrap();
    assert_eq!(a.numsub("room#/#").await.unwrap(), 1);
    assert_eq!(a.shard_numsub("shard#/#").await.unwrap(), 0);
    b.publish("room#/#", Bytes::from_static(b"four"))
        .await
        .unwrap();
    assert_eq!(
        message(&mut a_events).await,
        ("room#/#".into(), "four".into())
    );
    assert_eq!(
        message(&mut b_events).await,
        ("room#/#".into(), "four".into())
    );
    b.publish("room#/#", Bytes::from_static(b"five"))
        .await
        .unwrap();
    assert_eq!(
        message(&mut a_events).await,
        ("room#/#".into(), "five".into())
    );
    assert!(a_events.try_recv().is_err(), "a got one copy only");
    assert_eq!(a.stats().dropped, 0);
    assert_eq!(a.stats().received, 6);

    a.quit().await;
    b.quit().await;
    assert!(
        a_events.recv().await.is_none(),
        "quit ends the event channel"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_resubscribes_exactly_once() {
    let Some(mut redis) = Redis::start() else {
        return;
    };
    let (a, mut events) = link(&redis).await;
    let (b, mut b_events) = link(&redis).await;
    a.subscribe(&all_subs()).await.unwrap();
    // A pattern-only link (fred's own resubscribe_all would send an empty SUBSCRIBE for it).
    let (p, mut p_events) = link(&redis).await;
    p.subscribe(&[Subscription::Pattern("only#*".into())])
        .await
        .unwrap();
    let publisher = a.publisher(16);

    for round in 0..2 {
        redis.kill();
        assert_eq!(next(&mut events).await, LinkEvent::Down, "round {round}");
        assert_eq!(next(&mut p_events).await, LinkEvent::Down);
        assert_eq!(next(&mut b_events).await, LinkEvent::Down);

        // While down, everything fails fast.
        let started = Instant::now();
        assert_eq!(
            a.publish("room#/#", Bytes::from_static(b"lost")).await,
            Err(LinkError::Down)
        );
        assert!(a.numsub("room#/#").await.is_err());
        let (tx, rx) = std::sync::mpsc::channel();
        publisher
            .try_send(Job::Count {
                channel: "room#/#".into(),
                sharded: false,
                reply: Box::new(move |r| tx.send(r).unwrap()),
            })
            .unwrap();
        assert_eq!(
            rx.recv_timeout(Duration::from_secs(1)).unwrap(),
            Err(LinkError::Down)
        );
        assert!(started.elapsed() < Duration::from_millis(500));
        // Remembered while down, restored with the rest.
        let extra = Subscription::Channel(format!("extra{round}"));
        assert_eq!(a.subscribe(&[extra]).await, Err(LinkError::Down));

        redis.restart();
        assert_eq!(next(&mut events).await, LinkEvent::Up, "round {round}");
        assert_eq!(next(&mut p_events).await, LinkEvent::Up);
        assert_eq!(next(&mut b_events).await, LinkEvent::Up);

        // Exactly one connection per link holds subscriptions, each exactly once.
        let mut held = redis.subscribed_connections();
        held.sort();
        assert_eq!(held, vec![(0, 1, 0), (2 + round, 1, 1)], "round {round}");
        assert_eq!(b.numsub("room#/#").await.unwrap(), 1);
        assert_eq!(b.numsub(&format!("extra{round}")).await.unwrap(), 1);
        assert_eq!(b.shard_numsub("shard#/#").await.unwrap(), 1);

        // Messages flow again, on each kind.
        b.spublish("shard#/#", Bytes::from_static(b"s"))
            .await
            .unwrap();
        assert_eq!(message(&mut events).await, ("shard#/#".into(), "s".into()));
        b.publish("room#/#x#", Bytes::from_static(b"p"))
            .await
            .unwrap();
        assert_eq!(message(&mut events).await, ("room#/#x#".into(), "p".into()));
        b.publish("only#1", Bytes::from_static(b"o")).await.unwrap();
        assert_eq!(message(&mut p_events).await, ("only#1".into(), "o".into()));
    }
    assert_eq!(a.stats().ups, 3);
    assert_eq!(publisher.stats().failed, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_to_a_silent_redis_times_out() {
    let Some(redis) = Redis::start() else { return };
    let (a, _events) = link(&redis).await;
    // SIGSTOP: the connections stay open, nothing answers. The link still looks up.
    let pid = redis.pid().unwrap().to_string();
    assert!(Command::new("kill")
        .args(["-STOP", &pid])
        .status()
        .unwrap()
        .success());
    let started = Instant::now();
    let result = a.publish("x", Bytes::from_static(b"y")).await;
    let elapsed = started.elapsed();
    assert!(Command::new("kill")
        .args(["-CONT", &pid])
        .status()
        .unwrap()
        .success());
    assert!(matches!(result, Err(LinkError::Timeout(_))), "{result:?}");
    assert!(elapsed < Duration::from_secs(1), "{elapsed:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publisher_keeps_order() {
    let Some(redis) = Redis::start() else { return };
    let (a, mut events) = link(&redis).await;
    let (b, _b_events) = link(&redis).await;
    a.subscribe(&[Subscription::Channel("o".into())])
        .await
        .unwrap();
    let publisher = b.publisher(1_000);
    let log = Arc::new(Mutex::new(Vec::new()));
    for i in 0..100u32 {
        let log = log.clone();
        publisher
            .try_send(Job::Count {
                channel: "o".into(),
                sharded: false,
                reply: Box::new(move |r| log.lock().unwrap().push((i, r))),
            })
            .unwrap();
        publisher
            .try_send(Job::Publish {
                channel: "o".into(),
                payload: Bytes::from(i.to_string()),
                sharded: false,
            })
            .unwrap();
    }
    for i in 0..100u32 {
        let (_, payload) = message(&mut events).await;
        assert_eq!(payload, Bytes::from(i.to_string()));
    }
    // Every Count ran, in order, on the connection the Publishes went out on (jobs queued
    // together go as one pipeline, so a reply may come after the next message is delivered).
    let deadline = Instant::now() + Duration::from_secs(2);
    while log.lock().unwrap().len() < 100 {
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let expected: Vec<_> = (0..100u32).map(|i| (i, Ok(1))).collect();
    assert_eq!(*log.lock().unwrap(), expected);
    // The last Publish may be counted just after its message arrived.
    let deadline = Instant::now() + Duration::from_secs(2);
    while publisher.stats().published < 100 {
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let stats = publisher.stats();
    assert_eq!(
        (stats.published, stats.counted, stats.failed),
        (100, 100, 0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publisher_refuses_past_its_bound() {
    let Some(redis) = Redis::start() else { return };
    let (a, _events) = link(&redis).await;
    let publisher = a.publisher(2);
    // The first job holds the worker until the gate opens.
    let (gate_tx, gate) = std::sync::mpsc::channel::<()>();
    let (entered_tx, entered) = std::sync::mpsc::channel::<()>();
    publisher
        .try_send(Job::Count {
            channel: "c".into(),
            sharded: true,
            reply: Box::new(move |r| {
                assert_eq!(r, Ok(0));
                entered_tx.send(()).unwrap();
                gate.recv().unwrap();
            }),
        })
        .unwrap();
    entered.recv_timeout(Duration::from_secs(2)).unwrap();
    let job = |n: &str| Job::Publish {
        channel: n.into(),
        payload: Bytes::new(),
        sharded: false,
    };
    publisher.try_send(job("1")).unwrap();
    publisher.try_send(job("2")).unwrap();
    assert_eq!(publisher.stats().queued, 2);
    match publisher.try_send(job("3")) {
        Err(TrySendError::Full(Job::Publish { channel, .. })) => assert_eq!(channel, "3"),
        other => panic!("expected Full, got {other:?}"),
    }
    assert_eq!(publisher.stats().refused, 1);
    gate_tx.send(()).unwrap();
    let deadline = Instant::now() + Duration::from_secs(2);
    while publisher.stats().published < 2 {
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let stats = publisher.stats();
    assert_eq!(
        (stats.counted, stats.published, stats.refused, stats.queued),
        (1, 2, 1, 0)
    );
}
