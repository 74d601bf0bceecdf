// @example protocol_server
//
// docs/EXAMPLES.md `protocol_server`, through the official client, over the three ways the
// client can reach a server: WebSocket only, long-polling upgraded to WebSocket (the
// default), and long-polling only.

import { describe, test, after, afterEach } from "node:test";
import assert from "node:assert/strict";
import { client, manager, closeAll, connected, connectError, once, record, sleep, asBuffer, isBinary } from "./lib.mjs";

const T = { timeout: 10000 };

const MODES = [
  { name: "websocket only", opts: { transports: ["websocket"] }, final: "websocket" },
  { name: "polling upgraded to websocket", opts: {}, final: "websocket", upgrade: true },
  { name: "polling only", opts: { transports: ["polling"], upgrade: false }, final: "polling" },
];

/** Connects and, for the upgrading mode, waits until the transport is WebSocket. */
async function open(mode, nsp = "/", extra = {}) {
  const socket = client(nsp, { ...mode.opts, ...extra });
  const auth = once(socket, "auth", 5000, `${nsp} on connection`);
  auth.catch(() => {}); // awaited only by the tests about `auth`
  await connected(socket);
  if (mode.upgrade && socket.io.engine.transport.name !== "websocket") {
    await once(socket.io.engine, "upgrade", 5000, "engine upgrade to websocket");
  }
  return { socket, auth };
}

afterEach(() => closeAll());
after(() => closeAll());

for (const mode of MODES) {
  describe(`protocol_server, ${mode.name}`, () => {
    test("connects; the transport is the expected one", T, async () => {
      const socket = client("/", mode.opts);
      // Transport seen when the Engine.IO connection opens.
      let upgraded = null;
      const first = new Promise((resolve) =>
        socket.io.once("open", () => {
          socket.io.engine.once("upgrade", (t) => (upgraded = t.name));
          resolve(socket.io.engine.transport.name);
        }),
      );
      await connected(socket);
      if (mode.upgrade) {
        assert.equal(await first, "polling", "the default transports start with long-polling");
        if (socket.io.engine.transport.name !== "websocket") {
          await once(socket.io.engine, "upgrade", 5000, "engine upgrade");
        }
        assert.equal(socket.io.engine.transport.name, "websocket");
        assert.equal(upgraded, "websocket");
      } else {
        assert.equal(await first, mode.final);
        // No upgrade may happen: stay a while and look again.
        await sleep(400);
        assert.equal(socket.io.engine.transport.name, mode.final);
      }
      assert.equal(typeof socket.id, "string");
      assert.ok(socket.id.length > 0);
      // The Socket.IO id is fresh, not the Engine.IO session id (DESIGN §4).
      assert.notEqual(socket.id, socket.io.engine.id);
    });

    test("the handshake carries pingInterval 300, pingTimeout 200, maxPayload 1000000", T, async () => {
      const { socket } = await open(mode);
      const engine = socket.io.engine;
      // Fields engine.io-client 6.6 keeps from the `open` packet.
      assert.equal(engine._pingInterval, 300);
      assert.equal(engine._pingTimeout, 200);
      assert.equal(engine._maxPayload, 1000000);
      assert.equal(typeof engine.id, "string");
    });

    test("50 concurrent clients each get their own `message-back`", T, async () => {
      // pingTimeout is 200 ms, and while a client upgrades it holds its pong back until the
      // upgrade is done: on a starved machine it can miss a heartbeat, and the server closes it
      // then, as Node's does (in polling, its next request then fails: "transport error"). Such
      // a client starts over, at most four times and a little later each time; every client
      // must still get back exactly its own arguments.
      let restarts = 0;
      const roundTrip = async (i) => {
        for (let attempt = 0; ; attempt++) {
          let socket;
          try {
            ({ socket } = await open(mode));
            const back = once(socket, "message-back", 5000);
            const gone = new Promise((_, reject) =>
              socket.once("disconnect", (reason) => reject(new Error(`disconnected: ${reason}`))),
            );
            back.catch(() => {});
            gone.catch(() => {});
            socket.emit("message", i, socket.id);
            return { got: await Promise.race([back, gone]), id: socket.id };
          } catch (e) {
            socket?.disconnect();
            if (attempt >= 4) throw e;
            restarts++;
            // A starved machine: let the others through before starting over.
            await new Promise((r) => setTimeout(r, 50 * (attempt + 1)));
          }
        }
      };
      const results = await Promise.all(Array.from({ length: 50 }, (_, i) => roundTrip(i)));
      if (restarts > 0) console.log(`${restarts} clients started over after a missed heartbeat`);
      assert.deepEqual(
        results.map((r) => r.got),
        results.map((r, i) => [i, r.id]),
      );
    });

    test("a packet beyond maxPayload (1.2 MB) closes the connection", T, async () => {
      const { socket } = await open(mode);
      const disconnect = once(socket, "disconnect", 5000, "disconnect after an oversized packet");
      const back = record(socket, "message-back");
      socket.emit("message", "x".repeat(1_200_000));
      const [reason] = await disconnect;
      assert.ok(["transport close", "transport error"].includes(reason), `disconnect reason ${reason}`);
      assert.equal(back.list.length, 0, "the oversized message must not be echoed");
    });

    test("on connection emits `auth` with the auth payload", T, async () => {
      const payload = { token: "abc", n: 42, nested: { ok: true, list: [1, "two", null] } };
      const { auth } = await open(mode, "/", { auth: payload });
      const [got] = await auth;
      assert.deepEqual(got, payload);
    });

    test("without auth, `auth` is {}", T, async () => {
      const { auth } = await open(mode);
      const args = await auth;
      assert.deepEqual(args, [{}]);
    });

    test("`message` → `message-back` with the same plain arguments", T, async () => {
      const { socket } = await open(mode);
      const back = once(socket, "message-back");
      socket.emit("message", 1, "2", { 3: "4", five: [6, 7.5, true, null] }, [], "é ✓ 🚀");
      const args = await back;
      assert.deepEqual(args, [1, "2", { 3: "4", five: [6, 7.5, true, null] }, [], "é ✓ 🚀"]);
    });

    test("`message` with no arguments → `message-back` with none", T, async () => {
      const { socket } = await open(mode);
      const back = once(socket, "message-back");
      socket.emit("message");
      assert.deepEqual(await back, []);
    });

    test("`message` with binary → `message-back` with the same binary (both ways)", T, async () => {
      const { socket } = await open(mode);
      const bytes = Buffer.from([0, 1, 2, 3, 250, 251, 252, 253, 254, 255]);
      const big = Buffer.alloc(70000, 7);
      const back = once(socket, "message-back");
      socket.emit("message", "text", bytes, { nested: big, n: 1 }, [Buffer.from("x")]);
      const args = await back;
      assert.equal(args.length, 4);
      assert.equal(args[0], "text");
      assert.ok(isBinary(args[1]), `argument 1 should be binary, got ${JSON.stringify(args[1])}`);
      assert.deepEqual(asBuffer(args[1]), bytes);
      assert.ok(isBinary(args[2].nested), "nested binary should come back as binary");
      assert.ok(asBuffer(args[2].nested).equals(big));
      assert.equal(args[2].n, 1);
      assert.deepEqual(asBuffer(args[3][0]), Buffer.from("x"));
    });

    test("a large text argument (300 kB) comes back intact", T, async () => {
      const { socket } = await open(mode);
      const text = "abcdefghij".repeat(30000);
      const back = once(socket, "message-back");
      socket.emit("message", text);
      const [got] = await back;
      assert.equal(got.length, text.length);
      assert.equal(got, text);
    });

    test("`message-with-ack` is acknowledged with the same arguments", T, async () => {
      const { socket } = await open(mode);
      // Callback style: every argument of the ack.
      const args = await new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error("no ack for message-with-ack")), 3000);
        socket.emit("message-with-ack", 1, "2", { 3: [4] }, (...a) => {
          clearTimeout(timer);
          resolve(a);
        });
      });
      assert.deepEqual(args, [1, "2", { 3: [4] }]);
      // Promise style (resolves with the first argument).
      const one = await socket.timeout(3000).emitWithAck("message-with-ack", { hello: "world" });
      assert.deepEqual(one, { hello: "world" });
    });

    test("`message-with-ack` with binary is acknowledged with the same binary", T, async () => {
      const { socket } = await open(mode);
      const bytes = Buffer.from("binary ack \x00\xff", "latin1");
      const args = await new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error("no ack for binary message-with-ack")), 3000);
        socket.emit("message-with-ack", bytes, "after", (...a) => {
          clearTimeout(timer);
          resolve(a);
        });
      });
      assert.equal(args.length, 2);
      assert.ok(isBinary(args[0]), `ack argument 0 should be binary, got ${JSON.stringify(args[0])}`);
      assert.deepEqual(asBuffer(args[0]), bytes);
      assert.equal(args[1], "after");
    });

    test("many acks in flight all come back, each to its own callback", T, async () => {
      const { socket } = await open(mode);
      const n = 50;
      const results = await Promise.all(
        Array.from({ length: n }, (_, i) => socket.timeout(5000).emitWithAck("message-with-ack", i)),
      );
      assert.deepEqual(results, Array.from({ length: n }, (_, i) => i));
    });

    test("namespace /custom emits `auth` with the auth payload", T, async () => {
      const { socket, auth } = await open(mode, "/custom", { auth: { custom: "yes" } });
      assert.equal(socket.nsp, "/custom");
      assert.deepEqual(await auth, [{ custom: "yes" }]);
    });

    test("namespace /custom without auth emits `auth` with {}", T, async () => {
      const { auth } = await open(mode, "/custom");
      assert.deepEqual(await auth, [{}]);
    });

    test("/ and /custom multiplexed on one connection", T, async () => {
      const m = manager(mode.opts);
      const root = m.socket("/", { auth: { who: "root" } });
      const custom = m.socket("/custom", { auth: { who: "custom" } });
      const a1 = once(root, "auth");
      const a2 = once(custom, "auth");
      await Promise.all([connected(root), connected(custom)]);
      assert.deepEqual(await a1, [{ who: "root" }]);
      assert.deepEqual(await a2, [{ who: "custom" }]);
      assert.equal(root.io, custom.io, "one Manager");
      const back = once(root, "message-back");
      root.emit("message", "via root");
      assert.deepEqual(await back, ["via root"]);
    });

    test("an unknown namespace gives connect_error `Invalid namespace`", T, async () => {
      const socket = client("/random", mode.opts);
      const err = await connectError(socket);
      assert.equal(err.message, "Invalid namespace");
      assert.equal(socket.connected, false);
    });

    test("stays connected across several heartbeats (pingInterval 300 ms)", T, async () => {
      const { socket } = await open(mode);
      let disconnected = null;
      socket.on("disconnect", (reason) => (disconnected = reason));
      let pings = 0;
      socket.io.on("ping", () => pings++);
      await sleep(1500);
      assert.equal(disconnected, null, `disconnected: ${disconnected}`);
      assert.ok(pings >= 3, `expected at least 3 server pings in 1.5 s, saw ${pings}`);
      const back = once(socket, "message-back");
      socket.emit("message", "still here");
      assert.deepEqual(await back, ["still here"]);
    });

    test("client-side disconnect then a new connection works", T, async () => {
      const { socket } = await open(mode);
      socket.disconnect();
      assert.equal(socket.connected, false);
      const { socket: again } = await open(mode);
      const back = once(again, "message-back");
      again.emit("message", "again");
      assert.deepEqual(await back, ["again"]);
    });
  });
}
