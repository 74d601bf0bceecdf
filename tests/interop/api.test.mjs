// @example api_tour
//
// The Node server API on roomcast (examples/api_tour.rs), with the official client: middleware
// seeing the query and headers and refusing with data, synchronous socket data, disconnecting
// with its rooms, onAny / onAnyOutgoing, packet middleware, several listeners and a fallback,
// acks with timeouts from one socket and from everyone, concurrent listeners keeping their
// emits' order, remote-socket operations and acks, child namespaces, room life-cycle events,
// removing a socket's listeners (off, once, offAny, prependAny).

import { describe, test, afterEach, after } from "node:test";
import assert from "node:assert/strict";
import { client, closeAll, connected, connectError, record, sleep } from "./lib.mjs";

const T = { timeout: 15000 };
afterEach(() => closeAll());
after(() => closeAll());

const TRANSPORTS = [["websocket"], ["polling"], ["polling", "websocket"]];

function user(name, transports, extra = {}) {
  return client("/", { transports, query: { token: "secret", name }, ...extra });
}

for (const transports of TRANSPORTS) {
  describe(`over ${transports.join("+")}`, () => {
    test("middleware sees the query and headers; a refusal carries its message and data", T, async () => {
      const bad = client("/", { transports, query: { token: "nope" } });
      const err = await connectError(bad);
      assert.equal(err.message, "bad token");
      assert.deepEqual(err.data, { hint: "token=secret" });

      const ann = user("bob", transports, { extraHeaders: { "x-user": "ann" } });
      await connected(ann);
      const me = await ann.emitWithAck("whoami");
      assert.equal(me.id, ann.id);
      assert.equal(me.name, "ann", "the header wins over the query");
      assert.equal(me.query, "bob");
      assert.equal(me.header, "ann");
      assert.equal(me.address, "127.0.0.1");
    });

    test("the transport, and the upgrade as it happens", T, async () => {
      const s = user("u", transports);
      const upgraded = record(s, "upgraded");
      await connected(s);
      if (transports.length === 1) {
        assert.equal((await s.emitWithAck("whoami")).transport, transports[0]);
      }
      if (transports.length === 2) {
        assert.deepEqual((await upgraded.until(1, 5000))[0], ["websocket"]);
        assert.equal((await s.emitWithAck("whoami")).transport, "websocket");
      } else {
        await sleep(300);
        assert.equal(upgraded.list.length, 0);
      }
      const others = user("v", transports);
      await connected(others);
      const mine = record(s, "volatile");
      const theirs = record(others, "volatile");
      s.emit("volatile");
      assert.deepEqual((await mine.until(1))[0], ["to me alone"]);
      await sleep(200);
      assert.equal(theirs.list.length, 0);
    });

    test("socket data is written and read back at once", T, async () => {
      const s = user("carl", transports);
      await connected(s);
      assert.equal(await s.emitWithAck("rename", "dora"), "dora");
      assert.equal((await s.emitWithAck("whoami")).name, "dora");
    });

    test("disconnecting still sees the rooms: each room's others are told", T, async () => {
      const a = user("a", transports);
      const b = user("b", transports);
      await Promise.all([connected(a), connected(b)]);
      const rooms = await a.emitWithAck("join", "r1");
      assert.deepEqual(rooms, [a.id, "r1"]);
      await b.emitWithAck("join", "r1");
      const left = record(b, "left-room");
      const aid = a.id;
      a.disconnect();
      const got = await left.until(1);
      assert.deepEqual(got[0], [aid, "r1"]);
    });

    test("onAny counts the events, onAnyOutgoing what was sent", T, async () => {
      const s = user("e", transports);
      await connected(s);
      await s.emitWithAck("whoami");
      await s.emitWithAck("rename", "f");
      // whoami, rename, and this one; two acks went out (acks are not events: not counted).
      const [events] = await s.emitWithAck("counted");
      assert.equal(events, 3);
      const other = user("g", transports);
      await connected(other);
      await sleep(200); // an upgrade's `upgraded` emit, if any, is out of the way
      const [, before] = await s.emitWithAck("counted");
      const twice = record(s, "twice");
      s.emit("twice");
      await twice.until(2);
      const [, outgoing] = await s.emitWithAck("counted");
      assert.equal(outgoing - before, 2, "the two `twice` emits");
      await other.emitWithAck("fetch"); // emits `fetched` to s: one more outgoing
      const [, after] = await s.emitWithAck("counted");
      assert.equal(after - before, 3);
    });

    test("packet middleware stops an event; the error listener tells the client", T, async () => {
      const s = user("h", transports);
      await connected(s);
      const errors = record(s, "error");
      const acked = [];
      s.emit("forbidden", (x) => acked.push(x));
      const [[e]] = await errors.until(1);
      assert.equal(e.message, "not allowed");
      assert.deepEqual(e.data, { event: "forbidden" });
      await sleep(200);
      assert.deepEqual(acked, [], "a listener ran");
    });

    test("several listeners of one event run in order; the fallback takes the rest", T, async () => {
      const s = user("i", transports);
      await connected(s);
      const twice = record(s, "twice");
      s.emit("twice");
      const got = await twice.until(2);
      assert.deepEqual(got, [["first"], ["second"]]);
      assert.deepEqual(await s.emitWithAck("no-such-event", 1), "nobody listens to");
    });

    test("socket.timeout(ms).emitWithAck: the answer, or the timeout", T, async () => {
      const s = user("j", transports);
      await connected(s);
      s.on("question", (q, cb) => cb({ answer: 42, q }));
      assert.deepEqual(await s.emitWithAck("ask-me", 2000), { answer: 42, q: "what?" });
      s.off("question");
      s.on("question", () => {}); // never answers
      assert.equal(await s.emitWithAck("ask-me", 200), "operation has timed out");
    });

    test("io.timeout(ms).emitWithAck: every reply with its socket id, or a timeout", T, async () => {
      const a = user("k", transports);
      const b = user("l", transports);
      await Promise.all([connected(a), connected(b)]);
      a.on("poll", (cb) => cb("from a"));
      b.on("poll", (cb) => cb("from b"));
      const { answers, timedOut } = await a.emitWithAck("ask-all", 2000);
      assert.equal(timedOut, false);
      const byId = Object.fromEntries(answers.map((r) => [r.id, r.answer]));
      assert.deepEqual(byId, { [a.id]: "from a", [b.id]: "from b" });
      b.off("poll");
      b.on("poll", () => {});
      const late = await a.emitWithAck("ask-all", 300);
      assert.equal(late.timedOut, true);
      assert.deepEqual(late.answers.map((r) => r.id), [a.id]);
    });

    test("listeners run concurrently: `fast` is answered while `slow` waits; emits keep their order", T, async () => {
      const s = user("m", transports);
      await connected(s);
      const order = record(s, "order");
      s.emit("slow");
      s.emit("fast");
      const got = await order.until(3);
      assert.deepEqual(got.map((x) => x[0]), ["slow-start", "fast", "slow-end"]);
    });

    test("fetchSockets: emit to, join and disconnect remote sockets", T, async () => {
      const a = user("n", transports);
      const b = user("o", transports);
      await Promise.all([connected(a), connected(b)]);
      const fetched = record(b, "fetched");
      const seen = await a.emitWithAck("fetch");
      const mine = seen.find((x) => x.id === b.id);
      assert.ok(mine, JSON.stringify(seen));
      assert.equal(mine.name, "o");
      assert.deepEqual((await fetched.until(1))[0], [a.id]);
      // b joined `fetched`: kick disconnects it.
      const gone = new Promise((r) => b.once("disconnect", r));
      const kicked = await a.emitWithAck("kick");
      assert.ok(kicked >= 1);
      assert.equal(await gone, "io server disconnect");
    });

    test("socket.off(id) removes one listener, the other still runs; off_event removes them all", T, async () => {
      const s = user("r", transports);
      await connected(s);
      const setup = await s.emitWithAck("off-setup");
      assert.equal(setup.removed, true);
      assert.equal(setup.again, false, "an id removes its listener once");
      assert.ok(setup.names.includes("off-ping"), JSON.stringify(setup.names));
      const pongs = record(s, "off-pong");
      s.emit("off-ping");
      assert.deepEqual(await pongs.until(1), [["b"]]);
      assert.equal(await s.emitWithAck("listener-count", "off-ping"), 1);
      await sleep(200);
      assert.deepEqual(pongs.list, [["b"]], "the removed listener ran");
      assert.equal(await s.emitWithAck("off-event", "off-ping"), 0);
      // Nobody of its own listens any more: the namespace's fallback answers.
      assert.equal(await s.emitWithAck("off-ping"), "nobody listens to");
      assert.deepEqual(pongs.list, [["b"]]);
    });

    test("socket.once: the listener answers the first event only", T, async () => {
      const s = user("s", transports);
      await connected(s);
      assert.equal(await s.emitWithAck("once-setup"), 1);
      assert.equal(await s.emitWithAck("knock"), "first knock");
      assert.equal(await s.emitWithAck("listener-count", "knock"), 0);
      assert.equal(await s.emitWithAck("knock"), "nobody listens to");
    });

    test("prepend_any runs first; off_any and off_any_outgoing remove them all", T, async () => {
      const s = user("t", transports);
      await connected(s);
      const hello = record(s, "any-hello");
      // with the counters every socket of api_tour has: one `on_any`, one `on_any_outgoing`
      assert.deepEqual(await s.emitWithAck("any-setup"), [4, 3]);
      await hello.until(1);
      s.emit("probe");
      const log = await s.emitWithAck("any-log");
      const of = (name) => log.filter((e) => e[1] === name).map((e) => e[0]);
      assert.deepEqual(of("probe"), ["first", "second", "third"]);
      assert.deepEqual(of("any-hello"), ["out-first", "out-second"]);
      assert.deepEqual(await s.emitWithAck("off-any"), [0, 0]);
      await hello.until(2);
      s.emit("probe");
      // an `upgraded` emit may come any time: left out
      const mine = (l) => l.filter((e) => e[1] !== "upgraded");
      assert.deepEqual(of("any-log"), ["first", "second", "third"]);
      // `off-any` itself was seen before its listener removed them; nothing after
      const offAny = ["first", "second", "third"].map((tag) => [tag, "off-any"]);
      assert.deepEqual(mine(await s.emitWithAck("any-log")), mine(log).concat(offAny), "a removed listener ran");
    });

    test("remoteSocket.timeout(ms).emitWithAck: the answer, or the timeout; without one, until it leaves", T, async () => {
      const a = user("u", transports);
      const b = user("v", transports);
      await Promise.all([connected(a), connected(b)]);
      b.on("question", (q, cb) => cb({ answer: 7, q }));
      assert.deepEqual(await a.emitWithAck("ask-remote", b.id, 2000), { answer: 7, q: "remote?" });
      assert.deepEqual(await a.emitWithAck("ask-remote", b.id, null), { answer: 7, q: "remote?" });
      b.off("question");
      b.on("question", () => {}); // never answers
      assert.equal(await a.emitWithAck("ask-remote", b.id, 200), "operation has timed out");
      const waiting = a.emitWithAck("ask-remote", b.id, null);
      await sleep(300);
      b.disconnect();
      assert.equal(await waiting, "socket has been disconnected");
      assert.equal(await a.emitWithAck("ask-remote", b.id, 200), "no such socket");
    });

    test("child namespaces of a parent namespace", T, async () => {
      const s = client("/dyn-42", { transports });
      const hello = record(s, "hello");
      await connected(s);
      assert.deepEqual((await hello.until(1))[0], ["/dyn-42"]);
      const refused = client("/other", { transports });
      const err = await connectError(refused);
      assert.equal(err.message, "Invalid namespace");
    });

    test("room life-cycle events reach the application", T, async () => {
      const s = user("p", transports);
      await connected(s);
      const room = `life-${transports.join("-")}`;
      await s.emitWithAck("join", room);
      s.disconnect();
      await sleep(200);
      const t = user("q", transports);
      await connected(t);
      const log = await t.emitWithAck("room-log", room);
      assert.deepEqual(log.map((e) => e[0]), ["create-room", "join-room", "leave-room", "delete-room"]);
    });
  });
}
