// Fault tests, for every selected pair of kinds and adapter:
//  (a) Redis SIGKILLed mid-run and restarted on the same port;
//  (b) a node that stops answering while a request is in flight (SIGSTOP: still subscribed, so
//      still counted), then SIGKILLed;
//  (c) hostile messages on every channel of the protocol.

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { createRequire } from "node:module";
import {
  selectedPairs,
  selectedAdapters,
  setUpCluster,
  expectRecipients,
  payload,
  unique,
  names,
  fetchModel,
  assertAllAlive,
  withLogs,
  waitCounted,
  waitFor,
  sleep,
  redisPipeline,
  NAMESPACES,
} from "./lib.mjs";

const notepack = createRequire(import.meta.url)("notepack.io");
const T = { timeout: 60000 };

/** Runs `fn(world)` on a fresh cluster, stops it afterwards, adds the nodes' output to failures. */
async function onCluster(kinds, adapter, fn, opts) {
  const world = await setUpCluster(kinds, adapter, opts);
  try {
    await withLogs(world, () => fn(world));
  } finally {
    await world.stop();
  }
}

async function toCheck(world, from, arg, expected, what) {
  const tag = unique("f");
  assert.equal(await from.ask("to", { ...arg, payload: payload(tag) }), true, `${what}: ack`);
  await expectRecipients(world, "msg", tag, expected, { what });
}

/** Everything of the cluster works across nodes: to, server-emit-ack, broadcast-ack, fetch. */
async function assertClusterWorks(world, what) {
  const [A, B] = world.nodes;
  const a = world.socks.find((s) => s.node === A && s.nsp === "/");
  const bc = world.socks.find((s) => s.node === B && s.nsp === "/chat");
  await Promise.all([
    toCheck(world, a, { rooms: [] }, world.select("/"), `${what}: to whole / from ${A.label}`),
    toCheck(world, bc, { rooms: ["red"] }, world.select("/chat", { rooms: ["red"] }), `${what}: /chat to red from ${B.label}`),
  ]);
  const others = (n) => world.nodes.filter((x) => x !== n).map((x) => x.name).sort();
  const [sea, seb, back, fa] = await Promise.all([
    a.ask("server-emit-ack", { payload: 1 }),
    bc.ask("server-emit-ack", { payload: 2 }),
    a.ask("broadcast-ack", { rooms: [], timeout: 4000, question: { tag: unique("q") } }),
    a.ask("fetch", { rooms: [] }),
  ]);
  assert.deepEqual(sea, { err: null, responses: others(A) }, `${what}: server-emit-ack from ${A.label}`);
  assert.deepEqual(seb, { err: null, responses: others(B) }, `${what}: server-emit-ack from ${B.label}`);
  assert.deepEqual(back, { err: null, responses: names(world.select("/")) }, `${what}: broadcast-ack`);
  assert.deepEqual(fa, fetchModel(world.select("/")), `${what}: fetch`);
}

function faultScenario(kinds, adapter) {
  describe(`faults ${adapter} (${kinds.join(", ")})`, () => {
    test("(a) Redis SIGKILLed and restarted on the same port", T, (t) =>
      onCluster(kinds, adapter, async (world) => {
        const [A, B] = world.nodes;
        const a0 = world.sock("p00");
        await world.redis.kill();
        await sleep(300);

        // cluster requests issued while Redis is down
        const t0 = Date.now();
        const stamp = (p) => p.then((v) => ({ v, ms: Date.now() - t0 }), (e) => ({ e: e.message, ms: Date.now() - t0 }));
        const sea = stamp(a0.ask("server-emit-ack", { payload: 1 }, 20000));
        const fetch = stamp(a0.ask("fetch", { rooms: [] }, 20000));
        const back = stamp(a0.ask("broadcast-ack", { rooms: [], timeout: 2000, question: { tag: unique("q") } }, 20000));

        // local delivery continues
        await Promise.all([
          toCheck(world, a0, { rooms: [], local: true }, world.select("/", { node: A }), "local to / on A during the outage"),
          toCheck(world, world.sock("p11-chat"), { rooms: ["red"], local: true }, world.select("/chat", { rooms: ["red"], node: B }), "local /chat to red on B during the outage"),
        ]);
        const b = await back;
        assert.deepEqual(b.v, { err: "operation has timed out", responses: names(world.select("/", { node: A })) }, "broadcast-ack during the outage");
        assert.ok(b.ms >= 1900 && b.ms < 4000, `broadcast-ack timed out after its 2 s (${b.ms} ms)`);

        await sleep(Math.max(0, 7000 - (Date.now() - t0)));
        for (const n of world.nodes) assert.ok(n.proc.alive, `${n.label} survives the outage`);
        // before the restart: a roomcast requester has answered with a timeout error
        const settled = { sea: null, fetch: null };
        sea.then((r) => (settled.sea = r));
        fetch.then((r) => (settled.fetch = r));
        await sleep(10);
        if (A.kind === "roomcast") {
          assert.ok(settled.sea && /time/i.test(settled.sea.v?.err ?? ""), `server-emit-ack during the outage acks with a timeout error before Redis is back: ${JSON.stringify(settled.sea)}`);
          assert.deepEqual(settled.sea.v.responses, []);
          assert.ok(settled.fetch && /time/i.test(settled.fetch.v?.error ?? ""), `fetch during the outage acks with a timeout error before Redis is back: ${JSON.stringify(settled.fetch)}`);
        } else {
          t.diagnostic(`node requester, before the restart: server-emit-ack ${JSON.stringify(settled.sea)}, fetch ${settled.fetch ? "acked" : "pending"}`);
        }

        const r0 = Date.now();
        await world.redis.restart();
        await waitCounted(world.redis, adapter, world.nodes.length, 10000);
        t.diagnostic(`counted again ${Date.now() - r0} ms after the restart`);
        const [s, f] = await Promise.all([sea, fetch]);
        assert.ok(!s.e && !f.e, `both requests acked eventually: ${JSON.stringify([s, f]).slice(0, 300)}`);
        if (A.kind === "node") t.diagnostic(`node requester, after the restart: server-emit-ack ${JSON.stringify(s)} fetch ${f.v?.length ?? JSON.stringify(f)} sockets at ${f.ms} ms`);

        await sleep(500);
        await assertClusterWorks(world, "after the Redis restart");
        for (const nsp of NAMESPACES) assert.equal(await world.redis.numsub(adapter, nsp), world.nodes.length, `counted exactly once each on ${nsp}`);
        await assertAllAlive(world, "after the Redis restart");
      }),
    );

    test("(b) a node stops answering while requests are in flight (SIGSTOP), then dies (SIGKILL)", T, (t) =>
      onCluster([kinds[0], kinds[1], kinds[1]], adapter, async (world) => {
        const [A, B, C] = world.nodes;
        const a0 = world.sock("p00");
        C.proc.killGroupSync("SIGSTOP");
        await sleep(200);
        for (const nsp of NAMESPACES) assert.equal(await world.redis.numsub(adapter, nsp), 3, "a stopped node is still counted");
        const t0 = Date.now();
        const timed = (p) => p.then((v) => ({ v, ms: Date.now() - t0 }));
        const AB = world.select("/").filter((s) => s.node !== C);
        const [sea, back, fetch, rooms] = await Promise.all([
          timed(a0.ask("server-emit-ack", { payload: payload(unique("ask")) }, 15000)),
          timed(a0.ask("broadcast-ack", { rooms: [], timeout: 3000, question: { tag: unique("q") } }, 15000)),
          timed(a0.ask("fetch", { rooms: [] }, 15000)),
          adapter === "classic" ? timed(a0.ask("all-rooms", undefined, 15000)) : null,
        ]);
        t.diagnostic(`server-emit-ack ${JSON.stringify(sea)}; broadcast-ack ${JSON.stringify(back)}; fetch ${JSON.stringify(fetch)}; all-rooms ${JSON.stringify(rooms)}`);
        assert.deepEqual(sea.v, { err: "timeout reached: only 1 responses received out of 2", responses: [B.name] });
        assert.ok(sea.ms >= 4500 && sea.ms < 8000, `server-emit-ack after its 5 s timeout (${sea.ms} ms)`);
        assert.deepEqual(back.v, { err: "operation has timed out", responses: names(AB) });
        assert.ok(back.ms >= 2900 && back.ms < 6000, `broadcast-ack after its 3 s timeout (${back.ms} ms)`);
        // fetch rejects without the partial list (Node); the message depends on the protocol
        assert.deepEqual(fetch.v, {
          error: adapter === "classic" ? "timeout reached while waiting for fetchSockets response" : "timeout reached: only 1 responses received out of 2",
        });
        assert.ok(fetch.ms >= 4500 && fetch.ms < 8000, `fetch after its 5 s timeout (${fetch.ms} ms)`);
        if (rooms) assert.deepEqual(rooms.v, { error: "timeout reached while waiting for allRooms response" });

        await C.proc.kill();
        world.peers.filter((p) => p.node === C).forEach((p) => Object.values(p.socks).forEach((s) => (s.gone = true)));
        await waitCounted(world.redis, adapter, 2, 10000);
        for (const n of [A, B]) assert.ok(n.proc.alive, `${n.label} is running`);
        world.nodes = [A, B];
        await assertClusterWorks(world, "after the stopped node died");
      }),
    );

    test("(c) hostile messages on every channel: every node stays up, the next operations work", T, (t) =>
      onCluster(kinds, adapter, async (world) => {
        const sharded = adapter === "sharded";
        const listed = await world.redis.channels(sharded);
        const channels = new Set(listed);
        for (const nsp of NAMESPACES) {
          channels.add(`socket.io#${nsp}#`);
          channels.add(`socket.io#${nsp}#red#`);
          channels.add(`socket.io#${nsp}#${world.socks.find((s) => s.nsp === nsp).id}#`);
          if (!sharded) {
            channels.add(`socket.io-request#${nsp}#`);
            channels.add(`socket.io-response#${nsp}#`);
          }
        }
        const messages = hostileMessages();
        const cmd = sharded ? "SPUBLISH" : "PUBLISH";
        const commands = [];
        for (const ch of channels) for (const m of messages) commands.push([cmd, ch, m]);
        t.diagnostic(`${commands.length} hostile publishes: ${messages.length} messages × ${channels.size} channels (${[...channels].join(" ")})`);
        // in slices, so a node's output buffer limit is not what is being tested
        for (let i = 0; i < commands.length; i += 200) {
          const replies = await redisPipeline(world.redis.port, commands.slice(i, i + 200));
          const errs = replies.filter((r) => r instanceof Error);
          assert.equal(errs.length, 0, `publish errors: ${errs.map((e) => e.message).slice(0, 3)}`);
        }
        await sleep(1500);
        for (const n of world.nodes) assert.ok(n.proc.alive, `${n.label} survived: ${JSON.stringify(n.proc.exit)}`);
        for (const nsp of NAMESPACES) assert.equal(await world.redis.numsub(adapter, nsp), world.nodes.length, `still counted once each on ${nsp}`);
        // A Node node forwards some hostile broadcasts to its clients as packets they cannot
        // parse (e.g. `["x", {}, {}]`: a packet without a type, to the whole namespace), and
        // they disconnect with "parse error". That is Node's behaviour, tolerated for clients of
        // Node nodes only: a roomcast node must not send its clients anything unparseable.
        const dropped = world.socks.filter((s) => !s.alive);
        for (const s of dropped) {
          assert.equal(s.node.kind, "node", `${s} (a client of ${s.node.label}) was disconnected by hostile input: ${s.disconnects}`);
          s.gone = true;
        }
        if (dropped.length) t.diagnostic(`Node nodes' clients disconnected by hostile broadcasts: ${dropped.map((s) => `${s} (${s.disconnects})`).join(", ")}`);
        for (const [i, n] of world.nodes.entries()) {
          const p = await world.addPeer(n, `post${i}`);
          assert.deepEqual(await p.socks["/chat"].ask("join", "red"), ["red"]);
          p.socks["/chat"].rooms.add("red");
        }
        await assertAllAlive(world, "after the hostile messages");
        await assertClusterWorks(world, "after the hostile messages");
        for (const n of world.nodes.filter((n) => n.kind === "node")) {
          const dropped = (n.proc.output().match(/hostile message dropped/g) ?? []).length;
          const uncaught = (n.proc.output().match(/uncaught (exception|rejection)/g) ?? []).length;
          t.diagnostic(`${n.label}: ${dropped} hostile-message log lines (capped at 50 per namespace), ${uncaught} uncaught errors logged`);
        }
      }),
    );
  });
}

/** Garbage, truncated msgpack, wrong types, huge and deep values, for every framing in use. */
export function hostileMessages() {
  const B = (x) => (Buffer.isBuffer(x) ? x : Buffer.from(x));
  const mp = (x) => notepack.encode(x);
  const js = (x) => Buffer.from(JSON.stringify(x));
  const nobody = { rooms: ["hostile-nobody"], except: [], flags: {} };
  const goodBroadcast = mp(["hostile", { type: 2, data: ["msg", { tag: "hostile" }], nsp: "/" }, { rooms: ["hostile-nobody"], except: [], flags: {} }]);
  const rnd = Buffer.alloc(256);
  for (let i = 0; i < rnd.length; i++) rnd[i] = (i * 7919 + 13) & 0xff;
  const list = [
    // garbage
    "garbage", "", "{", "{\"type\":", "[", "null", "123", "\"str\"", "[]", "{}", Buffer.from([0, 255, 254]), rnd,
    // truncated / lying msgpack
    Buffer.from([0x93]), goodBroadcast.subarray(0, goodBroadcast.length >> 1), goodBroadcast.subarray(0, goodBroadcast.length - 1),
    Buffer.from([0xdd, 0xff, 0xff, 0xff, 0xff]), Buffer.from([0xdf, 0xff, 0xff, 0xff, 0xff]),
    Buffer.from([0xdb, 0xff, 0xff, 0xff, 0xff, 0x41]), Buffer.from([0xc6, 0xff, 0xff, 0xff, 0xff, 0]),
    Buffer.from([0xc7, 0x05, 0x07, 1]), Buffer.from([0xd4, 0x00, 0x00]), Buffer.from([0xc1]),
    Buffer.concat([goodBroadcast, Buffer.from("trailing")]),
    // deep nesting
    Buffer.concat([Buffer.alloc(100000, 0x91), Buffer.from([0xc0])]),
    Buffer.from("[".repeat(100000)),
    // huge arrays (real ones)
    Buffer.concat([Buffer.from([0xdd, 0x00, 0x03, 0x0d, 0x40]), Buffer.alloc(200000, 0xc0)]),
    js({ type: 2, opts: { rooms: Array.from({ length: 50000 }, (_, i) => `h${i}`), except: [] }, rooms: ["hostile-room"] }),
    // classic broadcast frames with wrong types
    mp([1, 2, 3]), mp(["hostile", "packet", "opts"]), mp(["hostile", null, null]), mp(["hostile", {}, {}]),
    mp(["hostile", { type: 2, data: "notarray", nsp: "/" }, { rooms: 5, except: "x", flags: null }]),
    mp(["hostile", { type: 2, data: ["msg", { tag: "hostile" }], nsp: "/" }, null]),
    mp(["hostile", { type: 2, data: ["msg", { tag: "hostile" }], nsp: 5 }, nobody]),
    mp(["hostile", { type: 99, data: [null], nsp: "/" }, nobody]),
    mp(["hostile", { type: 2, data: [], nsp: "/" }, nobody]),
    mp(["hostile", { type: 2, data: [5, 6], nsp: "/" }, nobody]),
    mp(["hostile", { type: 2, data: ["connect"], nsp: "/" }, nobody]),
    mp([null, { type: 2, data: ["msg", {}], nsp: "/" }, { rooms: [1, {}, null], except: [[]], flags: { timeout: "x", volatile: 3 } }]),
    // classic requests / responses with wrong types (none of them selects a real socket)
    js({ type: 2, opts: { rooms: 5 } }), js({ type: 2, opts: null }), js({ type: 2, opts: { rooms: ["hostile-nobody"], except: [] }, rooms: 7 }),
    js({ type: 3, opts: { rooms: ["hostile-nobody"], except: 3 }, rooms: null }), js({ type: 4, opts: { rooms: ["hostile-nobody"], except: [] }, close: "yes" }),
    js({ type: 2, sid: "nope", room: "x", requestId: "h0" }), js({ type: 5, requestId: "h1", opts: null }), js({ type: 5, requestId: "h2" }),
    js({ type: 5, requestId: ["x"], opts: { rooms: ["hostile-nobody"], except: [] } }),
    js({ type: 6, data: "notarray" }), js({ type: 6, requestId: "h3", data: [] }), js({ type: 6, requestId: "h4", data: null }),
    js({ type: 6, data: [null] }), js({ type: 6, data: [{ a: 1 }] }), js({ type: 6, data: ["connection", {}] }), js({ type: 6, data: ["cluster-ask"] }),
    js({ type: 0, rooms: 5, requestId: "h5" }), js({ type: 1 }), js({ type: 7, requestId: "h6", packet: null, opts: null }),
    mp({ type: 7, requestId: "h7", packet: { type: 2, data: "x", nsp: "/" }, opts: { rooms: 1, except: 2, flags: { timeout: -1 } } }),
    js({ type: 9999 }), js({ type: "2" }), js({ type: null }), Buffer.from('{"__proto__":{"polluted":1},"type":2,"opts":{"rooms":["hostile-nobody"],"except":[]},"rooms":["x"]}'),
    js({ requestId: "nonexistent", sockets: 5 }), js({ type: 8, requestId: "x", clientCount: "a" }), js({ type: 6, requestId: null, data: 1 }),
    mp({ type: 9, requestId: "x", packet: { deep: [1, 2, 3] } }), mp({ type: 9 }), mp("just a string"), mp(42),
    // sharded (ClusterAdapter) messages with wrong types
    ...["/", "/chat", 5, null].flatMap((nsp) => [
      js({ type: 3, data: null, uid: "hostile", nsp }),
      js({ type: 3, data: { packet: { type: 2, data: ["msg", { tag: "hostile" }] }, opts: { rooms: 5 } }, uid: "hostile", nsp }),
      js({ type: 3, data: { packet: null, opts: nobody }, uid: "hostile", nsp }),
      js({ type: 3, data: { packet: { type: 2, data: "x" }, requestId: "r", opts: { rooms: [], except: [], flags: { timeout: "x" } } }, uid: "hostile", nsp }),
      js({ type: 4, data: { opts: null, rooms: "x" }, uid: "hostile", nsp }),
      js({ type: 5, data: null, uid: "hostile", nsp }),
      js({ type: 6, data: { opts: { rooms: ["hostile-nobody"], except: [], flags: {} }, close: 1 }, uid: "hostile", nsp }),
      js({ type: 7, data: { opts: null, requestId: null }, uid: "hostile", nsp }),
      js({ type: 8, data: { requestId: "x", sockets: null }, uid: "hostile", nsp }),
      js({ type: 8, data: null, uid: "hostile", nsp }),
      js({ type: 9, data: { packet: "notarray" }, uid: "hostile", nsp }),
      js({ type: 9, data: { requestId: "r", packet: null }, uid: "hostile", nsp }),
      js({ type: 10, data: null, uid: "hostile", nsp }),
      js({ type: 11, data: { requestId: "r", clientCount: "many" }, uid: "hostile", nsp }),
      js({ type: 12, uid: "hostile", nsp }),
      js({ type: 1, uid: "hostile", nsp }), js({ type: 2, uid: "hostile", nsp }), js({ type: 13, uid: "hostile", nsp }),
      js({ type: 3, data: {}, nsp }),
      mp({ type: 3, data: { packet: { type: 2, data: ["msg", Buffer.from([1])] }, opts: { rooms: "x", except: null, flags: 7 } }, uid: "hostile", nsp }),
      mp({ type: 8, data: { requestId: "x", sockets: [null, 1, "s"] }, uid: "hostile", nsp }),
    ]),
  ];
  return list.map(B);
}

// The Pub/Sub protocols only (streams has its own file).
for (const adapter of selectedAdapters().filter((a) => a !== "streams")) for (const kinds of selectedPairs()) faultScenario(kinds, adapter);
