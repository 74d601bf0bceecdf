// The cluster scenario: two nodes of the given kinds over one private Redis with the given
// ADAPTER, three peers per node (two over WebSocket, one over long-polling), each peer a socket
// on `/` and on `/chat`. Every operation of the `cluster` example is checked with exact
// recipient sets over every socket of both namespaces.

import { describe, test, before, after } from "node:test";
import assert from "node:assert/strict";
import {
  setUpCluster,
  expectRecipients,
  payload,
  assertSame,
  jsonRoundTrip,
  notepackRoundTrip,
  unique,
  names,
  fetchModel,
  assertAllAlive,
  withLogs,
  byString,
  sleep,
  waitFor,
} from "./lib.mjs";

const T = { timeout: 30000 };

export function clusterScenario(kinds, adapter) {
  describe(`cluster ${adapter} (${kinds.join(", ")})`, () => {
    let world, A, B;
    const check = (fn) => () => withLogs(world, fn);

    before(async () => {
      world = await setUpCluster(kinds, adapter);
      [A, B] = world.nodes;
    });
    after(async () => {
      await world?.stop();
    });

    // What `p`, sent by a client of `from`'s node, looks like at `to`: unchanged, except that a
    // Node node of the redis adapter publishes msgpack with notepack.io, which mangles
    // integer-valued numbers of 2^64 and more (1e300 arrives as 0 on the other nodes); the
    // streams adapter's @msgpack/msgpack does not.
    const mangles = (from, to) => adapter !== "streams" && to.node !== from.node && from.node.kind === "node";
    const arrives = (p, from, to) => (mangles(from, to) ? notepackRoundTrip(p) : p);

    // One `to`/`broadcast` from `from` and its exact recipients.
    async function emitCheck(from, event, arg, expected, what) {
      const tag = unique(event);
      const p = payload(tag);
      assert.equal(await from.ask(event, { ...arg, payload: p }), true, `${what}: ack`);
      const got = await expectRecipients(world, "msg", tag, expected, { what: `${what} from ${from}` });
      for (const [s, args] of got) assertSame(args[0], arrives(p, from, s), `${what}: msg at ${s}`);
      if (adapter === "streams" && got.length > 0) {
        // Through the stream: one entry id as the offset of every copy, on every node; none
        // for what stays on one node.
        const offsets = new Set(got.map(([, args]) => args.offset));
        if (arg?.local) assert.deepEqual([...offsets], [undefined], `${what}: local, no offset`);
        else {
          assert.equal(offsets.size, 1, `${what}: one offset for all copies: ${[...offsets]}`);
          assert.match(String([...offsets][0]), /^[0-9]+-[0-9]+$/, `${what}: the offset is the entry id`);
        }
      }
    }

    test("whoami on every socket: its node, id and namespace", T, check(async () => {
      for (const s of world.socks) {
        assert.deepEqual(await s.ask("whoami"), { node: s.node.name, id: s.id, nsp: s.nsp });
        assert.equal(s.id.length, 20, `${s}: socket ids are 20 characters`);
      }
    }));

    test("join / leave ack the socket's rooms, sorted, own id excluded", T, check(async () => {
      const s = world.sock("p10");
      const before = [...s.rooms].sort(byString);
      assert.deepEqual(await s.ask("join", "zeta"), [...before, "zeta"].sort(byString));
      assert.deepEqual(await s.ask("join", ["alpha", "zeta", "mid"]), [...before, "alpha", "mid", "zeta"].sort(byString));
      assert.deepEqual(await s.ask("leave", "mid"), [...before, "alpha", "zeta"].sort(byString));
      assert.deepEqual(await s.ask("leave", ["alpha", "zeta", "never-joined"]), before);
    }));

    test("to: whole namespace, one room, union, except, socket-id room, empty room (both namespaces, both nodes)", T, check(async () => {
      const a0 = world.sock("p00");
      const b1 = world.sock("p11");
      const chatA1 = world.sock("p01-chat");
      const b2 = world.sock("p12"); // long-polling
      const targetId = world.sock("p12").id;
      assert.ok(world.sock("p02").rooms.has("red") && world.sock("p02").rooms.has("blue"), "room pattern: p02 is in red and blue");
      const cases = [
        [a0, { rooms: [] }, world.select("/"), "to whole /"],
        [a0, { rooms: ["red"] }, world.select("/", { rooms: ["red"] }), "to red"],
        [b1, { rooms: ["red", "blue"] }, world.select("/", { rooms: ["red", "blue"] }), "to red+blue (union, once each)"],
        [a0, { rooms: ["red", "blue"], except: ["blue"] }, world.select("/", { rooms: ["red", "blue"], except: ["blue"] }), "to red+blue except blue"],
        [b2, { rooms: [], except: ["green", world.sock("p11").id] }, world.select("/", { except: ["green", world.sock("p11").id] }), "to all except green and a socket id"],
        [a0, { rooms: [targetId] }, world.select("/", { rooms: [targetId] }), "to a remote socket-id room"],
        [a0, { rooms: ["nobody-here"] }, [], "to an empty room"],
        [chatA1, { rooms: [] }, world.select("/chat"), "to whole /chat"],
        [chatA1, { rooms: ["red"], except: ["green"] }, world.select("/chat", { rooms: ["red"], except: ["green"] }), "/chat to red except green"],
        [world.sock("p10-chat"), { rooms: ["blue", "green"] }, world.select("/chat", { rooms: ["blue", "green"] }), "/chat to blue+green from B"],
      ];
      await Promise.all(cases.map(([from, arg, expected, what]) => emitCheck(from, "to", arg, expected, what)));
    }));

    test("to with local: only the sender's node", T, check(async () => {
      await Promise.all([
        emitCheck(world.sock("p00"), "to", { rooms: [], local: true }, world.select("/", { node: A }), "local to whole / on A"),
        emitCheck(world.sock("p11"), "to", { rooms: ["red"], local: true }, world.select("/", { rooms: ["red"], node: B }), "local to red on B"),
        emitCheck(world.sock("p01-chat"), "to", { rooms: ["red"], except: ["blue"], local: true }, world.select("/chat", { rooms: ["red"], except: ["blue"], node: A }), "local /chat"),
        emitCheck(world.sock("p00"), "to", { rooms: [world.sock("p12").id], local: true }, [], "local to a remote socket id: nobody"),
      ]);
    }));

    test("broadcast: everyone matching but the sender", T, check(async () => {
      const a0 = world.sock("p00");
      const a2 = world.sock("p02");
      const b0c = world.sock("p10-chat");
      await Promise.all([
        emitCheck(a0, "broadcast", { rooms: [] }, world.select("/", { notSelf: a0 }), "broadcast whole /"),
        emitCheck(a2, "broadcast", { rooms: ["red", "blue"] }, world.select("/", { rooms: ["red", "blue"], notSelf: a2 }), "broadcast red+blue"),
        emitCheck(a2, "broadcast", { rooms: [], except: ["red"] }, world.select("/", { except: ["red"], notSelf: a2 }), "broadcast except red"),
        emitCheck(b0c, "broadcast", { rooms: ["blue"] }, world.select("/chat", { rooms: ["blue"], notSelf: b0c }), "/chat broadcast blue from B"),
      ]);
    }));

    test("fetch: cluster-wide and local, rooms and except", T, check(async () => {
      const a0 = world.sock("p00");
      const b1c = world.sock("p11-chat");
      const cases = [
        [a0, { rooms: [] }, world.select("/")],
        [a0, { rooms: ["red"] }, world.select("/", { rooms: ["red"] })],
        [a0, { rooms: ["red", "blue"], except: ["green", world.sock("p02").id] }, world.select("/", { rooms: ["red", "blue"], except: ["green", world.sock("p02").id] })],
        [a0, { rooms: [world.sock("p11").id] }, world.select("/", { rooms: [world.sock("p11").id] })],
        [a0, { rooms: ["nobody-here"] }, []],
        [a0, { rooms: [], local: true }, world.select("/", { node: A })],
        [b1c, { rooms: [] }, world.select("/chat")],
        [b1c, { rooms: ["red"], local: true }, world.select("/chat", { rooms: ["red"], node: B })],
        [b1c, { rooms: ["blue"], except: ["red"] }, world.select("/chat", { rooms: ["blue"], except: ["red"] })],
      ];
      for (const [from, arg, expected] of cases) {
        assert.deepEqual(await from.ask("fetch", arg), fetchModel(expected), `fetch ${JSON.stringify(arg)} from ${from}`);
      }
    }));

    test("sockets-join and sockets-leave across nodes (then visible to fetch and to)", T, check(async () => {
      const a0 = world.sock("p00");
      const b0c = world.sock("p10-chat");
      // / : red except blue join purple
      const joiners = world.select("/", { rooms: ["red"], except: ["blue"] });
      assert.ok(joiners.some((s) => s.node === A) && joiners.some((s) => s.node === B), "joiners on both nodes");
      assert.equal(await a0.ask("sockets-join", { rooms: ["red"], except: ["blue"], join: "purple" }), true);
      joiners.forEach((s) => s.rooms.add("purple"));
      // /chat: one remote socket by id joins two rooms
      const target = world.sock("p01-chat");
      assert.equal(await b0c.ask("sockets-join", { rooms: [target.id], join: ["c1", "c2"] }), true);
      target.rooms.add("c1").add("c2");
      await waitFor(async () => {
        const got = await a0.ask("fetch", { rooms: ["purple"] });
        return JSON.stringify(got) === JSON.stringify(fetchModel(world.select("/", { rooms: ["purple"] }))) || got;
      }, 3000, "sockets-join purple to land");
      await waitFor(async () => {
        const got = await b0c.ask("fetch", { rooms: ["c1"] });
        return JSON.stringify(got) === JSON.stringify(fetchModel([target])) || got;
      }, 3000, "sockets-join c1 to land");
      assert.deepEqual(await a0.ask("fetch", { rooms: [] }), fetchModel(world.select("/")), "no other / socket changed");
      assert.deepEqual(await b0c.ask("fetch", { rooms: [] }), fetchModel(world.select("/chat")), "no other /chat socket changed");
      await emitCheck(world.sock("p11"), "to", { rooms: ["purple"] }, joiners, "to purple");
      await emitCheck(world.sock("p11"), "to", { rooms: ["c2"] }, [], "to c2 in / (it is a /chat room)");

      // leave: everyone in / except green leaves purple; /chat target leaves c1
      const leavers = world.select("/", { rooms: ["purple"], except: ["green"] });
      assert.equal(await world.sock("p12").ask("sockets-leave", { rooms: [], except: ["green"], leave: "purple" }), true);
      leavers.forEach((s) => s.rooms.delete("purple"));
      assert.equal(await b0c.ask("sockets-leave", { rooms: ["c2"], leave: "c1" }), true);
      target.rooms.delete("c1");
      await waitFor(async () => {
        const [p, c] = await Promise.all([a0.ask("fetch", { rooms: [] }), b0c.ask("fetch", { rooms: [] })]);
        return (
          (JSON.stringify(p) === JSON.stringify(fetchModel(world.select("/"))) &&
            JSON.stringify(c) === JSON.stringify(fetchModel(world.select("/chat")))) || [p, c]
        );
      }, 3000, "sockets-leave to land");
      await emitCheck(a0, "to", { rooms: ["purple"] }, world.select("/", { rooms: ["purple"] }), "to purple after leave");
      // tidy up: c2 away, so later all-rooms counts are from the base pattern plus nothing
      assert.equal(await b0c.ask("sockets-leave", { rooms: [], leave: "c2" }), true);
      target.rooms.delete("c2");
    }));

    test("server-emit: server-ping reaches only the other nodes' sockets of that namespace", T, check(async () => {
      const runs = [
        [world.sock("p00"), B, "/"],
        [world.sock("p11-chat"), A, "/chat"],
      ];
      await Promise.all(
        runs.map(async ([from, other, nsp]) => {
          const tag = unique("ping");
          const p = payload(tag);
          assert.equal(await from.ask("server-emit", { payload: p }), true);
          const expected = world.select(nsp, { node: other });
          const got = await expectRecipients(world, "server-ping", tag, expected, { pick: (args) => args[0]?.payload?.tag, what: `server-emit from ${from}` });
          // A Node node sends classic requests as JSON: Buffers arrive as {type:"Buffer",data:[...]}.
          // A roomcast node sends a request that holds binary as msgpack (receivers tell the
          // framings apart by the first byte), so binary stays binary; so does sharded.
          const asJson = adapter === "classic" && from.node.kind === "node";
          for (const [s, [ping]] of got) {
            assert.equal(ping.node, s.node.name, `server-ping node at ${s}`);
            assertSame(ping.payload, asJson ? jsonRoundTrip(p) : arrives(p, from, s), `server-ping payload at ${s}`);
          }
        }),
      );
    }));

    test("server-emit-ack: responses are the other nodes' names", T, check(async () => {
      const [r1, r2] = await Promise.all([
        world.sock("p00").ask("server-emit-ack", { payload: payload(unique("ask")) }),
        world.sock("p12-chat").ask("server-emit-ack", { payload: { q: 1 } }),
      ]);
      assert.deepEqual(r1, { err: null, responses: [B.name] });
      assert.deepEqual(r2, { err: null, responses: [A.name] });
    }));

    test("broadcast-ack: the matched clients' names over all nodes; zero matches; silent clients time out", T, check(async () => {
      const a0 = world.sock("p00");
      const b0c = world.sock("p10-chat");
      const q = (tag, silent = []) => ({ tag, silent, bin: Buffer.from([9, 8, 7]), text: "héllo 世界 🎉", f: -2.5e-7 });
      const all = world.select("/");
      const silent = [world.sock("p01").name, world.sock("p12").name];
      const tags = [unique("q"), unique("q"), unique("q"), unique("q"), unique("q")];
      const started = Date.now();
      const [whole, red, none, chat, timedOut] = await Promise.all([
        a0.ask("broadcast-ack", { rooms: [], timeout: 4000, question: q(tags[0]) }),
        a0.ask("broadcast-ack", { rooms: ["red", "blue"], except: ["green"], timeout: 4000, question: q(tags[1]) }),
        a0.ask("broadcast-ack", { rooms: ["nobody-here"], timeout: 4000, question: q(tags[2]) }),
        b0c.ask("broadcast-ack", { rooms: ["red"], timeout: 4000, question: q(tags[3]) }),
        a0.ask("broadcast-ack", { rooms: [], timeout: 1500, question: q(tags[4], silent) }),
      ]);
      assert.deepEqual(whole, { err: null, responses: names(all) });
      assert.deepEqual(red, { err: null, responses: names(world.select("/", { rooms: ["red", "blue"], except: ["green"] })) });
      assert.deepEqual(none, { err: null, responses: [] });
      assert.deepEqual(chat, { err: null, responses: names(world.select("/chat", { rooms: ["red"] })) });
      assert.deepEqual(timedOut, { err: "operation has timed out", responses: names(all.filter((s) => !silent.includes(s.name))) });
      assert.ok(Date.now() - started >= 1400, "the silent case waits for its timeout");
      // each matched client was asked exactly once, with the question unchanged
      const expectQ = [all, world.select("/", { rooms: ["red", "blue"], except: ["green"] }), [], world.select("/chat", { rooms: ["red"] }), all];
      for (let i = 0; i < tags.length; i++) {
        const got = await expectRecipients(world, "question", tags[i], expectQ[i], { settle: 0, what: `question ${i}` });
        for (const [s, [question]] of got) assertSame(question, q(tags[i], i === 4 ? silent : []), `question at ${s}`);
      }
    }));

    test("all-rooms", T, check(async () => {
      for (const [from, nsp] of [[world.sock("p00"), "/"], [world.sock("p11-chat"), "/chat"]]) {
        const got = await from.ask("all-rooms");
        if (adapter !== "classic") {
          // `ClusterAdapter` (sharded, streams) has no allRooms.
          assert.deepEqual(got, { error: "unsupported" });
          continue;
        }
        const rooms = new Set();
        for (const s of world.select(nsp)) {
          rooms.add(s.id);
          s.rooms.forEach((r) => rooms.add(r));
        }
        assert.deepEqual(got, { rooms: [...rooms].sort(byString) }, `all-rooms of ${nsp}`);
      }
    }));

    test("payloads survive every hop: to, broadcast from each node and namespace, over websocket and polling", T, check(async () => {
      // already asserted per recipient in the cases above; here the polling senders
      await Promise.all([
        emitCheck(world.sock("p02-chat"), "to", { rooms: [] }, world.select("/chat"), "polling sender /chat"),
        emitCheck(world.sock("p12"), "broadcast", { rooms: [] }, world.select("/", { notSelf: world.sock("p12") }), "polling sender / broadcast"),
      ]);
    }));

    test("disconnect-sockets close=false: only that namespace's socket goes, its other namespace stays", T, check(async () => {
      const victim = await world.addPeer(B, "vb0");
      const victimA = await world.addPeer(A, "va0", ["polling"]);
      const v = victim.socks["/"];
      const va = victimA.socks["/chat"];
      assert.equal(await world.sock("p00").ask("disconnect-sockets", { rooms: [v.id], close: false }), true);
      assert.equal(await world.sock("p11-chat").ask("disconnect-sockets", { rooms: [va.id], close: false }), true);
      await waitFor(() => !v.alive && !va.alive, 3000, "the targeted sockets to be disconnected");
      v.gone = true;
      va.gone = true;
      await sleep(300);
      assert.deepEqual(v.disconnects, ["io server disconnect"]);
      assert.deepEqual(va.disconnects, ["io server disconnect"]);
      assert.ok(victim.socks["/chat"].alive && victimA.socks["/"].alive, "the other namespace of each stays connected");
      await assertAllAlive(world, "after disconnect close=false");
    }));

    test("disconnect-sockets close=true: the whole connection goes (both namespaces), nobody else", T, check(async () => {
      const victims = [await world.addPeer(A, "va1"), await world.addPeer(B, "vb1", ["polling"]), await world.addPeer(B, "vb2")];
      for (const p of victims.slice(0, 2)) {
        assert.deepEqual(await p.socks["/chat"].ask("join", "doomed"), ["doomed"]);
        p.socks["/chat"].rooms.add("doomed");
      }
      const spared = victims[2];
      assert.deepEqual(await spared.socks["/"].ask("join", "doomed"), ["doomed"]); // same room name, other namespace
      spared.socks["/"].rooms.add("doomed");
      assert.equal(await world.sock("p00-chat").ask("disconnect-sockets", { rooms: ["doomed"], close: true }), true);
      const gone = victims.slice(0, 2).flatMap((p) => Object.values(p.socks));
      await waitFor(() => gone.every((s) => !s.alive), 4000, "both namespaces of the doomed connections to close");
      gone.forEach((s) => (s.gone = true));
      await sleep(300);
      for (const s of gone) assert.equal(s.disconnects.length, 1, `${s} disconnected once: ${s.disconnects}`);
      await assertAllAlive(world, "after disconnect close=true");
      assert.deepEqual(await world.sock("p00").ask("fetch", { rooms: [] }), fetchModel(world.select("/")));
      assert.deepEqual(await world.sock("p00-chat").ask("fetch", { rooms: [] }), fetchModel(world.select("/chat")));
      // and the cluster still delivers to everyone left
      await emitCheck(world.sock("p10"), "to", { rooms: [] }, world.select("/"), "to whole / after disconnects");
    }));

    test("the nodes are still up and counted once each", T, check(async () => {
      for (const n of world.nodes) assert.ok(n.proc.alive, `${n.label} is running`);
      for (const nsp of ["/", "/chat"]) assert.equal(await world.redis.numsub(adapter, nsp), world.nodes.length, `NUMSUB ${nsp}`);
    }));
  });
}
