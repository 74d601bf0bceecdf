// Connection state recovery across a streams cluster (@socket.io/redis-streams-adapter 0.3.1,
// ADAPTER=streams): an official socket.io-client behind a forwarder (a load balancer) loses its
// connection to node A, misses broadcasts from both nodes, and comes back on node B with the
// same id, its rooms, and every missed eligible broadcast exactly once and in order, each with
// its stream offset as last argument. Also: an expired session and an already used one give a
// fresh socket.
//
// Runs for every selected pair (CLUSTER_KINDS) when CLUSTER_ADAPTERS includes streams: a client
// drops from a roomcast node and comes back on a Node node, and the other way round.

import { describe, test, before, after } from "node:test";
import assert from "node:assert/strict";
import { io } from "socket.io-client";
import { Redis, startNodes, nodeOutputs, selectedPairs, selectedAdapters, sleep, waitFor, unique, byString } from "./lib.mjs";
import { Forwarder } from "./forwarder.mjs";

const T = { timeout: 30000 };
const OFFSET = /^[0-9]+-[0-9]+$/;

/** `a` before `b` as stream ids. */
const idLess = (a, b) => {
  const [am, as] = a.split("-").map(BigInt);
  const [bm, bs] = b.split("-").map(BigInt);
  return am < bm || (am === bm && as < bs);
};

/** A client of the official socket.io-client that records every `msg` (args as received). */
function client(url, { name, auth = {}, reconnection = true } = {}) {
  const socket = io(url, {
    transports: ["websocket"],
    forceNew: true,
    reconnection,
    reconnectionDelay: 100,
    reconnectionDelayMax: 200,
    randomizationFactor: 0,
    timeout: 3000,
    auth: { name, ...auth },
  });
  const c = { socket, name, msgs: [], connects: 0, disconnects: [] };
  socket.on("msg", (...args) => c.msgs.push(args));
  socket.on("connect", () => c.connects++);
  socket.on("disconnect", (reason) => c.disconnects.push(reason));
  c.ask = (event, arg, ms = 8000) => socket.timeout(ms).emitWithAck(event, arg);
  c.connected = (ms = 8000) =>
    waitFor(() => socket.connected, ms, `${name} to connect`);
  c.close = () => socket.disconnect();
  return c;
}

/** The `msg`s of `c` whose payload has tag `tag`. */
const tagged = (c, tag) => c.msgs.filter((args) => args[0]?.tag === tag);

async function cluster(kinds, env) {
  const redis = await Redis.start();
  const nodes = await startNodes(kinds, redis, "streams", env);
  const clients = [];
  const fwd = await new Forwarder(nodes[0].port).listen();
  return {
    redis,
    nodes,
    fwd,
    client(url, opts) {
      const c = client(url, opts);
      clients.push(c);
      return c;
    },
    async stop() {
      for (const c of clients) c.close();
      await fwd.close();
      await Promise.all(nodes.map((n) => n.stop()));
      await redis.stop();
    },
  };
}

/** Connects `x` through the forwarder to A, joins `rooms`, and gives it one broadcast (its offset). */
async function prepare(w, x, rooms, from) {
  await x.connected();
  assert.equal(x.socket.recovered, false, "a first connection is not a recovery");
  assert.deepEqual(await x.ask("join", rooms), [...rooms].sort(byString));
  const tag = unique("first");
  assert.equal(await from.ask("to", { rooms: [rooms[0]], payload: { tag } }), true);
  await waitFor(() => tagged(x, tag).length === 1, 5000, `${x.name} to get its first broadcast`);
  const args = tagged(x, tag)[0];
  assert.match(args[args.length - 1], OFFSET, "a broadcast carries its stream offset as last argument");
  return { id: x.socket.id, pid: x.socket._pid, offset: args[args.length - 1] };
}

/** Whether any of the last entries of the stream holds the bytes of `tag` (stored msgpack). */
async function inStream(w, tag) {
  const entries = await w.redis.command(["XREVRANGE", "socket.io", "+", "-", "COUNT", "50"]);
  const holds = (v) =>
    Array.isArray(v) ? v.some(holds) : Buffer.from(typeof v === "string" ? v : v ?? "").includes(tag);
  return entries.some(holds);
}

/** Cuts `x` off: new connections are refused, the current one gets a RST. */
async function cut(w, x) {
  w.fwd.setTarget(null);
  w.fwd.reset();
  await waitFor(() => !x.socket.connected, 5000, `${x.name} to see its connection drop`);
}

function streamsScenario(kinds) {
  describe(`streams recovery (${kinds.join(", ")})`, () => {
    let w, A, B;
    const check = (fn) => async () => {
      try {
        await fn();
      } catch (e) {
        e.message += `\n${nodeOutputs(w.nodes, 2500)}`;
        throw e;
      }
    };
    before(async () => {
      w = await cluster(kinds, { RECOVERY_MS: "30000" });
      [A, B] = w.nodes;
    });
    after(async () => {
      await w?.stop();
    });

    let used; // the session of the recovered client, for the "already used" test

    test("a client cut off from A recovers on B: same id, rooms, every missed broadcast once, in order", T, check(async () => {
      const sA = w.client(A.url, { name: "sender-a" });
      const sB = w.client(B.url, { name: "sender-b" });
      const x = w.client(w.fwd.url, { name: "x" });
      await Promise.all([sA.connected(), sB.connected()]);
      const before = await prepare(w, x, ["red", "blue"], sA);
      used = before;
      assert.deepEqual(await x.ask("whoami"), { node: A.name, id: before.id, nsp: "/" });

      await cut(w, x);
      // While x is away: eligible and ineligible broadcasts from both nodes.
      const t = (what) => unique(what);
      const plan = [
        { tag: t("a-red"), from: sA, ev: "to", arg: { rooms: ["red"] }, eligible: true },
        { tag: t("b-all"), from: sB, ev: "to", arg: {}, eligible: true },
        { tag: t("a-green"), from: sA, ev: "to", arg: { rooms: ["green"] }, eligible: false },
        { tag: t("b-except-blue"), from: sB, ev: "to", arg: { except: ["blue"] }, eligible: false },
        { tag: t("a-red-except-green"), from: sA, ev: "to", arg: { rooms: ["red"], except: ["green"] }, eligible: true },
        { tag: t("b-broadcast-blue"), from: sB, ev: "broadcast", arg: { rooms: ["blue"] }, eligible: true },
        { tag: t("a-all-except-red"), from: sA, ev: "to", arg: { except: ["red", "yellow"] }, eligible: false },
      ];
      // Node acks the `to` before its XADD has landed, so the next broadcast, from the other
      // node, could be stored first: each waits for the one before it to be in the stream, and
      // the stream order (the order recovery replays) is the plan's.
      for (const p of plan) {
        assert.equal(await p.from.ask(p.ev, { ...p.arg, payload: { tag: p.tag } }), true, p.tag);
        await waitFor(() => inStream(w, p.tag), 5000, `${p.tag} to be in the stream`);
      }
      // A broadcast with acks goes by Pub/Sub: never stored, never replayed.
      const question = unique("question");
      const acked = await sA.ask("broadcast-ack", { rooms: ["red"], timeout: 500, question: { tag: question } });
      assert.equal(acked.err, null, "nobody in red is connected: no ack is awaited");
      assert.equal(x.msgs.length, 1, "nothing reaches x while it is cut off");

      w.fwd.setTarget(B.port);
      await waitFor(() => x.socket.connected, 10000, "x to reconnect through the forwarder");
      assert.equal(x.socket.recovered, true, "the connection is recovered");
      assert.equal(x.socket.id, before.id, "same id");
      assert.deepEqual(await x.ask("whoami"), { node: B.name, id: before.id, nsp: "/" });
      await sleep(300);

      const missed = x.msgs.slice(1);
      const want = plan.filter((p) => p.eligible).map((p) => p.tag);
      assert.deepEqual(missed.map((args) => args[0].tag), want, "every missed eligible broadcast once, in order, nothing else");
      const offsets = missed.map((args) => args[args.length - 1]);
      for (const [i, args] of missed.entries()) {
        assert.equal(args.length, 2, `${args[0].tag}: payload and offset`);
        assert.match(offsets[i], OFFSET);
        assert.ok(idLess(i === 0 ? before.offset : offsets[i - 1], offsets[i]), `offsets grow: ${offsets}`);
      }
      // The offsets are the stream entries' ids.
      const entries = await w.redis.command(["XRANGE", "socket.io", "-", "+"]);
      const ids = entries.map(([id]) => id.toString());
      for (const o of offsets) assert.ok(ids.includes(o), `${o} is an entry of the stream`);

      // Rooms intact, on B now.
      const fetched = await sB.ask("fetch", { rooms: ["red"] });
      const me = fetched.find((s) => s.id === before.id);
      assert.ok(me, `x is in red: ${JSON.stringify(fetched)}`);
      assert.deepEqual(me, { id: before.id, node: B.name, name: "x", rooms: ["blue", "red"] });

      // Live again: a new broadcast from A reaches it on B, once, with its offset.
      const after = unique("after");
      assert.equal(await sA.ask("to", { rooms: ["blue"], payload: { tag: after } }), true);
      await waitFor(() => tagged(x, after).length === 1, 5000, "the broadcast after recovery");
      await sleep(200);
      assert.equal(tagged(x, after).length, 1);
      const last = tagged(x, after)[0];
      assert.ok(idLess(offsets[offsets.length - 1], last[1]));
      assert.equal(x.msgs.filter((args) => args[0]?.tag === question).length, 0);
      assert.equal(x.connects, 2);
    }));

    test("a session already used gives a fresh socket", T, check(async () => {
      assert.ok(used, "needs the recovery test");
      // The same pid and offset, presented by hand by another client, to the node the session
      // was stored from (x lives on B now: a roomcast node would hand x's live socket over to a
      // client presenting its pid there, the stale-transport case of socket.io#4880).
      const y = w.client(A.url, { name: "y", auth: { pid: used.pid, offset: used.offset }, reconnection: false });
      await y.connected();
      assert.notEqual(y.socket.id, used.id, "not the recovered id");
      assert.equal(y.socket.recovered, false);
      const me = await y.ask("whoami");
      assert.equal(me.id, y.socket.id);
      await sleep(200);
      assert.equal(y.msgs.length, 0, "no replay");
      // Nothing of it is left in Redis either.
      assert.equal(await w.redis.command(["EXISTS", `sio:session:${used.pid}`]), 0);
    }));
  });

  describe(`streams recovery, expired session (${kinds.join(", ")})`, () => {
    let w, A, B;
    const RECOVERY_MS = 1500;
    before(async () => {
      w = await cluster(kinds, { RECOVERY_MS: String(RECOVERY_MS) });
      [A, B] = w.nodes;
    });
    after(async () => {
      await w?.stop();
    });

    test("past the recovery window a client gets a new id, not recovered", T, async () => {
      const sA = w.client(A.url, { name: "sender-a" });
      await sA.connected();
      const x = w.client(w.fwd.url, { name: "x" });
      const before = await prepare(w, x, ["red"], sA);
      await cut(w, x);
      const key = `sio:session:${before.pid}`;
      await waitFor(async () => (await w.redis.command(["EXISTS", key])) === 1, 3000, "the session to be stored");
      const pttl = await w.redis.command(["PTTL", key]);
      assert.ok(pttl > 0 && pttl <= RECOVERY_MS, `TTL ${pttl} within the window`);
      await sleep(RECOVERY_MS + 700);
      assert.equal(await w.redis.command(["EXISTS", key]), 0, "expired");
      const missedTag = unique("missed");
      assert.equal(await sA.ask("to", { rooms: ["red"], payload: { tag: missedTag } }), true);
      w.fwd.setTarget(B.port);
      await waitFor(() => x.socket.connected, 10000, "x to reconnect");
      assert.equal(x.socket.recovered, false);
      assert.notEqual(x.socket.id, before.id, "a new id");
      assert.deepEqual(await x.ask("whoami"), { node: B.name, id: x.socket.id, nsp: "/" });
      await sleep(200);
      assert.equal(tagged(x, missedTag).length, 0, "no replay for a new socket");
      // A new socket is in no room.
      const inRed = await sA.ask("fetch", { rooms: ["red"] });
      assert.equal(inRed.filter((s) => s.name === "x").length, 0);
    });
  });
}

if (selectedAdapters().includes("streams")) for (const kinds of selectedPairs()) streamsScenario(kinds);
