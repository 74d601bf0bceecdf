// @socket.io/redis-emitter 5.1.0 (classic protocol only) publishing into a two-node cluster of
// every selected pair of kinds: emit to rooms/except/namespace, socketsJoin/socketsLeave,
// disconnectSockets and serverSideEmit, each with exact recipient sets.

import { describe, test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createClient } from "redis";
import { Emitter } from "@socket.io/redis-emitter";
import {
  selectedPairs,
  selectedAdapters,
  setUpCluster,
  expectRecipients,
  payload,
  assertSame,
  jsonRoundTrip,
  notepackRoundTrip,
  unique,
  fetchModel,
  assertAllAlive,
  withLogs,
  waitFor,
  sleep,
} from "./lib.mjs";

const T = { timeout: 30000 };

function emitterScenario(kinds) {
  describe(`emitter → cluster classic (${kinds.join(", ")})`, () => {
    let world, redisClient, emitter;
    const check = (fn) => () => withLogs(world, fn);

    before(async () => {
      world = await setUpCluster(kinds, "classic");
      redisClient = createClient({ url: world.redis.url });
      redisClient.on("error", () => {});
      await redisClient.connect();
      emitter = new Emitter(redisClient);
    });
    after(async () => {
      await redisClient?.quit().catch(() => {});
      await world?.stop();
    });

    // The emitter encodes with notepack.io, like a Node node: 1e300 arrives as 0 everywhere.
    async function emitCheck(op, expected, what) {
      const tag = unique("em");
      const p = payload(tag);
      op(p);
      const got = await expectRecipients(world, "msg", tag, expected, { what });
      for (const [s, [m]] of got) assertSame(m, notepackRoundTrip(p), `${what} at ${s}`);
    }

    test("emit: namespace, one room, union with except, socket id, /chat, volatile", T, check(async () => {
      const sid = world.sock("p11").id;
      await Promise.all([
        emitCheck((p) => emitter.emit("msg", p), world.select("/"), "emit to /"),
        emitCheck((p) => emitter.to("red").emit("msg", p), world.select("/", { rooms: ["red"] }), "to red"),
        emitCheck((p) => emitter.to(["red", "blue"]).except("blue").emit("msg", p), world.select("/", { rooms: ["red", "blue"], except: ["blue"] }), "to red+blue except blue"),
        emitCheck((p) => emitter.in(["red", "blue", "green"]).except(["green", world.sock("p00").id]).emit("msg", p), world.select("/", { rooms: ["red", "blue", "green"], except: ["green", world.sock("p00").id] }), "union except a socket id"),
        emitCheck((p) => emitter.to(sid).emit("msg", p), [world.sock("p11")], "to a socket id"),
        emitCheck((p) => emitter.to("nobody-here").emit("msg", p), [], "to an empty room"),
        emitCheck((p) => emitter.of("/chat").emit("msg", p), world.select("/chat"), "of(/chat) emit"),
        emitCheck((p) => emitter.of("chat").to("red").except("blue").emit("msg", p), world.select("/chat", { rooms: ["red"], except: ["blue"] }), "of(chat) to red except blue"),
      ]);
      // volatile: dropped where the transport is busy, so only to an idle WebSocket client
      await sleep(300);
      await emitCheck((p) => emitter.volatile.to(world.sock("p10").id).emit("msg", p), [world.sock("p10")], "volatile to an idle socket");
    }));

    test("serverSideEmit(cluster-ping) → server-ping on every node's sockets of that namespace", T, check(async () => {
      for (const [em, nsp] of [[emitter, "/"], [emitter.of("/chat"), "/chat"]]) {
        const tag = unique("emping");
        const p = payload(tag);
        em.serverSideEmit("cluster-ping", p);
        const got = await expectRecipients(world, "server-ping", tag, world.select(nsp), { pick: (a) => a[0]?.payload?.tag, what: `serverSideEmit on ${nsp}` });
        for (const [s, [ping]] of got) {
          assert.equal(ping.node, s.node.name);
          assertSame(ping.payload, jsonRoundTrip(p), `server-ping payload at ${s} (the emitter's requests are JSON)`);
        }
      }
      assert.throws(() => emitter.serverSideEmit("cluster-ask", 1, () => {}), /Acknowledgements are not supported/);
    }));

    test("socketsJoin / socketsLeave", T, check(async () => {
      const from = world.sock("p00");
      const joiners = world.select("/", { rooms: ["red"], except: [world.sock("p11").id] });
      emitter.in("red").except(world.sock("p11").id).socketsJoin(["em1", "em2"]);
      joiners.forEach((s) => s.rooms.add("em1").add("em2"));
      const chatJoiner = world.sock("p12-chat");
      emitter.of("/chat").in(chatJoiner.id).socketsJoin("emc");
      chatJoiner.rooms.add("emc");
      const same = async () => {
        const [a, b] = await Promise.all([from.ask("fetch", { rooms: [] }), world.sock("p00-chat").ask("fetch", { rooms: [] })]);
        return (JSON.stringify(a) === JSON.stringify(fetchModel(world.select("/"))) && JSON.stringify(b) === JSON.stringify(fetchModel(world.select("/chat")))) || [a, b];
      };
      await waitFor(same, 3000, "the emitter's socketsJoin to land");
      await emitCheck((p) => emitter.to("em1").emit("msg", p), joiners, "to em1");
      await emitCheck((p) => emitter.of("/chat").to("emc").emit("msg", p), [chatJoiner], "/chat to emc");

      const leavers = world.select("/", { rooms: ["em1"], except: [world.sock("p00").id] });
      emitter.in("em1").except(world.sock("p00").id).socketsLeave("em1");
      leavers.forEach((s) => s.rooms.delete("em1"));
      emitter.socketsLeave("em2"); // whole namespace
      world.select("/").forEach((s) => s.rooms.delete("em2"));
      emitter.of("/chat").socketsLeave("emc");
      chatJoiner.rooms.delete("emc");
      await waitFor(same, 3000, "the emitter's socketsLeave to land");
      await emitCheck((p) => emitter.to(["em1", "em2"]).emit("msg", p), world.select("/", { rooms: ["em1"] }), "to em1+em2 after leave");
    }));

    test("disconnectSockets: close=false drops one namespace; close=true whole connections", T, check(async () => {
      const [A, B] = world.nodes;
      const v1 = await world.addPeer(B, "evb0");
      const v2 = await world.addPeer(A, "eva0", ["polling"]);
      const v3 = await world.addPeer(B, "evb1");
      emitter.in(v1.socks["/"].id).disconnectSockets();
      await waitFor(() => !v1.socks["/"].alive, 3000, "close=false target to disconnect");
      v1.socks["/"].gone = true;
      await sleep(300);
      assert.ok(v1.socks["/chat"].alive, "its /chat socket stays");
      assert.deepEqual(v1.socks["/"].disconnects, ["io server disconnect"]);
      await assertAllAlive(world, "after emitter disconnect close=false");

      for (const p of [v2, v3]) {
        assert.deepEqual(await p.socks["/chat"].ask("join", "edoomed"), ["edoomed"]);
        p.socks["/chat"].rooms.add("edoomed");
      }
      emitter.of("/chat").in("edoomed").disconnectSockets(true);
      const gone = [v2, v3].flatMap((p) => Object.values(p.socks));
      await waitFor(() => gone.every((s) => !s.alive), 4000, "close=true targets to close");
      gone.forEach((s) => (s.gone = true));
      await sleep(300);
      await assertAllAlive(world, "after emitter disconnect close=true");
      assert.deepEqual(await world.sock("p10").ask("fetch", { rooms: [] }), fetchModel(world.select("/")));
    }));
  });
}

if (selectedAdapters().includes("classic")) for (const kinds of selectedPairs()) emitterScenario(kinds);
