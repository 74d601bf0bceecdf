// Captures what two Node nodes (socket.io 4.8.4 + @socket.io/redis-streams-adapter 0.3.1 over
// node-redis 4.7.1) write to Redis for each operation of the `cluster` example, as fixtures for
// the Rust codec of the streams protocol (src/cluster/streams.rs):
//
//   node tests/cluster/capture_streams.mjs [out.json]
//   (default out: tests/cluster/fixtures/streams/node.json)
//
// It starts its own redis-server on a free loopback port and two Node nodes (ADAPTER=streams),
// and watches Redis three ways: `MONITOR` (the commands as text, for people), `PSUBSCRIBE *`
// (every Pub/Sub payload, byte for byte) and `XRANGE` after each operation (every stream entry
// with its fields, byte for byte). Then it stores one session and restores it. Everything it
// starts is stopped at the end, also on failure.

import fs from "node:fs";
import net from "node:net";
import path from "node:path";
import { io } from "socket.io-client";
import { Redis, startNodes, sleep, waitFor, HERE, redisCommand } from "./lib.mjs";

const OUT = process.argv[2] ?? path.join(HERE, "fixtures/streams/node.json");

/** A raw RESP connection that collects pushed replies (MONITOR lines or pmessages). */
function rawWatch(port, command) {
  const s = net.connect({ host: "127.0.0.1", port });
  const w = { lines: [], messages: [], socket: s };
  let buf = Buffer.alloc(0);
  s.once("connect", () => {
    const args = command;
    s.write(`*${args.length}\r\n` + args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join(""));
  });
  s.on("data", (d) => {
    buf = Buffer.concat([buf, d]);
    for (;;) {
      const r = parse(buf, 0);
      if (!r) break;
      buf = buf.subarray(r.end);
      if (typeof r.value === "string") w.lines.push(r.value);
      else if (Array.isArray(r.value) && String(r.value[0]) === "pmessage") {
        w.messages.push({ channel: r.value[2].toString("utf8"), payload: r.value[3] });
      }
    }
  });
  return w;
}

function parse(buf, pos) {
  const nl = buf.indexOf("\r\n", pos);
  if (nl < 0) return null;
  const type = String.fromCharCode(buf[pos]);
  const line = buf.toString("latin1", pos + 1, nl);
  const next = nl + 2;
  if (type === "+" || type === "-") return { value: line, end: next };
  if (type === ":") return { value: Number(line), end: next };
  if (type === "$") {
    const n = Number(line);
    if (n < 0) return { value: null, end: next };
    if (buf.length < next + n + 2) return null;
    return { value: buf.subarray(next, next + n), end: next + n + 2 };
  }
  if (type === "*") {
    const n = Number(line);
    const out = [];
    let p = next;
    for (let i = 0; i < n; i++) {
      const r = parse(buf, p);
      if (!r) return null;
      out.push(r.value);
      p = r.end;
    }
    return { value: out, end: p };
  }
  throw new Error(`bad RESP ${type}`);
}

const client = (node, name, opts = {}) =>
  io(node.url, { transports: ["websocket"], forceNew: true, reconnection: false, auth: { name }, ...opts });
const connected = (s) =>
  new Promise((resolve, reject) => {
    if (s.connected) return resolve();
    s.once("connect", resolve);
    s.once("connect_error", reject);
  });
const ask = (s, ev, arg) => s.timeout(8000).emitWithAck(ev, arg);

const redis = await Redis.start();
let nodes = [];
const sockets = [];
try {
  const monitor = rawWatch(redis.port, ["MONITOR"]);
  const pubsub = rawWatch(redis.port, ["PSUBSCRIBE", "*"]);
  await sleep(200);
  nodes = await startNodes(["node", "node"], redis, "streams", { RECOVERY_MS: "30000" });
  const [A, B] = nodes;

  const a1 = client(A, "a1");
  const b1 = client(B, "b1");
  const b2 = client(B, "b2");
  sockets.push(a1, b1, b2);
  await Promise.all(sockets.map(connected));
  b1.on("question", (_q, ack) => ack("b1"));
  await ask(a1, "join", "red");
  await ask(b1, "join", ["red", "blue"]);

  let lastId = "0-0";
  const actions = [];
  async function capture(name, fn) {
    const m0 = monitor.lines.length;
    const p0 = pubsub.messages.length;
    const result = await fn();
    await sleep(400);
    const entries = await redisCommand(redis.port, ["XRANGE", "socket.io", `(${lastId}`, "+"]);
    const stream = entries.map(([id, fields]) => {
      const pairs = [];
      for (let i = 0; i < fields.length; i += 2) pairs.push([fields[i].toString("utf8"), fields[i + 1].toString("utf8")]);
      return { id: id.toString(), fields: pairs };
    });
    if (stream.length) lastId = stream[stream.length - 1].id;
    actions.push({
      name,
      result: result === undefined ? null : result,
      stream,
      pubsub: pubsub.messages.slice(p0).map((m) => ({ channel: m.channel, payload_hex: m.payload.toString("hex") })),
      // Without the capture's own commands (exclusive XRANGEs, PTTL) and the polling noise.
      monitor: monitor.lines.slice(m0).filter((l) => !/"(PING|XREAD|CLIENT|PSUBSCRIBE|PTTL)"|"XRANGE" "socket\.io" "\(/i.test(l)),
    });
    console.error(`captured ${name}: ${stream.length} entries, ${pubsub.messages.length - p0} messages`);
  }

  const plain = { tag: "t1", n: 1, f: 0.5, big: 2 ** 40, neg: -3, s: "héllo" };
  const binary = { tag: "t2", bin: Buffer.from([0, 1, 2, 255]), n: 1, f: 0.5, big: 2 ** 40, neg: -3, neg2: -(2 ** 35), u16: 300, s: "héllo" };
  await capture("broadcast-room-except", () => ask(a1, "to", { rooms: ["red"], except: ["blue"], payload: plain }));
  await capture("broadcast-binary", () => ask(a1, "to", { payload: binary }));
  await capture("sockets-join", () => ask(a1, "sockets-join", { rooms: [b1.id], join: "yellow" }));
  await capture("sockets-leave", () => ask(a1, "sockets-leave", { rooms: [b1.id], leave: "yellow" }));
  await capture("disconnect-sockets", () => ask(a1, "disconnect-sockets", { rooms: [b2.id], close: false }));
  await capture("fetch", () => ask(a1, "fetch", { rooms: ["red"] }));
  await capture("server-emit", () => ask(a1, "server-emit", { payload: { p: 1 } }));
  await capture("server-emit-ack", () => ask(a1, "server-emit-ack", { payload: { q: 1 } }));
  await capture("broadcast-ack", () => ask(a1, "broadcast-ack", { rooms: ["red"], timeout: 3000, question: { q: 2 } }));

  // A session: a socket in a room gets one broadcast (its offset), its transport closes.
  const s1 = client(A, "s1");
  sockets.push(s1);
  await connected(s1);
  await ask(s1, "join", "green");
  const got = new Promise((resolve) => s1.once("msg", (...args) => resolve(args)));
  await capture("broadcast-for-offset", () => ask(b1, "to", { rooms: ["green"], payload: { tag: "t3" } }));
  const args = await got;
  const sid = s1.id;
  const pid = s1._pid;
  const offset = s1._lastOffset;
  await capture("session-stored", async () => {
    s1.io.engine.close();
    await sleep(300);
    return { sid, pid, offset, msgArgs: args };
  });
  const key = `sio:session:${pid}`;
  const stored = await redisCommand(redis.port, ["GET", key]);
  const pttl = await redisCommand(redis.port, ["PTTL", key]);
  await capture("missed-broadcast", () => ask(b1, "to", { rooms: ["green"], payload: { tag: "t4" } }));
  // The restore: a new client presents pid and offset by hand.
  await capture("session-restored", async () => {
    const s2 = client(B, "s2", { auth: { name: "s2", pid, offset } });
    sockets.push(s2);
    const missed = [];
    s2.on("msg", (...a) => missed.push(a));
    await connected(s2);
    await sleep(200);
    return { id: s2.id, sameId: s2.id === sid, missed };
  });

  const fixture = {
    captured: {
      by: "tests/cluster/capture_streams.mjs",
      versions: "socket.io 4.8.4, @socket.io/redis-streams-adapter 0.3.1, @msgpack/msgpack 2.8.0, redis (node-redis) 4.7.1",
      redis: (await redisCommand(redis.port, ["INFO", "server"])).toString().match(/redis_version:(\S+)/)?.[1],
    },
    session: { key, value: stored?.toString() ?? null, pttl, sid, pid, offset },
    actions,
  };
  fs.mkdirSync(path.dirname(OUT), { recursive: true });
  fs.writeFileSync(OUT, JSON.stringify(fixture, null, 1) + "\n");
  console.error(`wrote ${OUT}`);
  monitor.socket.destroy();
  pubsub.socket.destroy();
} finally {
  for (const s of sockets) s.disconnect();
  await Promise.all(nodes.map((n) => n.stop()));
  await redis.stop();
}
