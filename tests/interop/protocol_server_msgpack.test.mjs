// @example protocol_server
// @env PARSER=msgpack
//
// protocol_server.test.mjs again, the server started with PARSER=msgpack and every client with
// `socket.io-msgpack-parser` 3.0.2 (lib.mjs reads PARSER): the same bodies over WebSocket,
// polling upgraded to WebSocket and polling only. Then what only msgpack has, on the raw wire:
// each Socket.IO packet is one binary message holding a msgpack map (a binary WebSocket frame,
// a `b<base64>` record in a polling payload), and a client speaking the default parser's text
// is closed, as the reference closes it (its decoder throws on the text).
//
// The conformance suite (tests/conformance) stays JSON only: it writes the default parser's text
// packets by hand (`40`, `42["x"]`, placeholders, attachment frames), which have no meaning under
// msgpack; the codec tests and the `msgpack_packet` fuzz target cover the msgpack decoder's
// rejections instead.

import "./protocol_server.test.mjs";

import { describe, test, after } from "node:test";
import assert from "node:assert/strict";
import WebSocket from "ws";
import notepack from "notepack.io";
import { PORT, URL, once, sleep } from "./lib.mjs";

const T = { timeout: 10000 };
const WS_URL = `ws://127.0.0.1:${PORT}/socket.io/?EIO=4&transport=websocket`;
const opened = [];
after(() => opened.forEach((ws) => ws.terminate()));

/** A raw WebSocket with a queue of its messages (text as strings, binary as Buffers). */
async function raw() {
  const ws = new WebSocket(WS_URL);
  opened.push(ws);
  const queue = [];
  const waiting = [];
  ws.on("message", (data, isBinary) => {
    const m = isBinary ? Buffer.from(data) : data.toString();
    const w = waiting.shift();
    if (w) w(m);
    else queue.push(m);
  });
  const closed = once(ws, "close", 5000, "server closes");
  closed.catch(() => {});
  await once(ws, "open", 5000, "websocket open");
  const next = (ms = 3000) =>
    queue.length
      ? Promise.resolve(queue.shift())
      : new Promise((resolve, reject) => {
          const timer = setTimeout(() => reject(new Error("no message")), ms);
          waiting.push((m) => (clearTimeout(timer), resolve(m)));
        });
  /** The next Socket.IO packet: binary `message` frames only (pings are text `2`). */
  const packet = async () => {
    for (;;) {
      const m = await next();
      if (typeof m === "string") {
        if (m === "2") ws.send("3");
        continue;
      }
      return notepack.decode(m);
    }
  };
  const open = await next();
  assert.equal(typeof open, "string");
  assert.match(open, /^0\{/);
  return { ws, next, packet, closed };
}

describe("protocol_server with PARSER=msgpack, the raw wire", () => {
  test("CONNECT, its reply and events are msgpack maps in binary frames", T, async () => {
    const { ws, packet } = await raw();
    ws.send(notepack.encode({ type: 0, data: { token: "t" }, nsp: "/" }));
    const reply = await packet();
    assert.equal(reply.type, 0);
    assert.equal(reply.nsp, "/");
    assert.equal(typeof reply.data.sid, "string");
    const auth = await packet();
    assert.deepEqual(auth, { type: 2, nsp: "/", data: ["auth", { token: "t" }] });
    // An event with an ack id and the client's `options`, binary inside.
    const bytes = Buffer.from([1, 2, 255]);
    ws.send(notepack.encode({ type: 2, data: ["message-with-ack", bytes, { n: 1.5 }], options: { compress: true }, id: 7, nsp: "/" }));
    const ack = await packet();
    assert.equal(ack.type, 3);
    assert.equal(ack.id, 7);
    assert.equal(ack.nsp, "/");
    assert.ok(Buffer.isBuffer(ack.data[0]), "binary comes back as msgpack bin");
    assert.deepEqual(ack.data[0], bytes);
    assert.deepEqual(ack.data[1], { n: 1.5 });
    // notepack's `undefined` and Date: relayed as they came.
    const date = new Date(Date.UTC(2024, 0, 2, 3, 4, 5, 6));
    ws.send(notepack.encode({ type: 2, data: ["message", undefined, date, [undefined]], nsp: "/" }));
    const back = await packet();
    assert.equal(back.data[0], "message-back");
    assert.equal(back.data[1], undefined);
    assert.equal(back.data[2].getTime(), date.getTime());
  });

  test("an unknown namespace: CONNECT_ERROR {message} as a msgpack map", T, async () => {
    const { ws, packet } = await raw();
    ws.send(notepack.encode({ type: 0, nsp: "/random" }));
    assert.deepEqual(await packet(), { type: 4, nsp: "/random", data: { message: "Invalid namespace" } });
  });

  for (const [what, frame] of [
    ["the default parser's text `40`", "40"],
    ["a msgpack map of type 5", notepack.encode({ type: 5, nsp: "/", data: ["x"] })],
    ["bytes that are not msgpack", Buffer.from([0xc1])],
    ["a map followed by trailing bytes", Buffer.concat([notepack.encode({ type: 0, nsp: "/" }), Buffer.from([0])])],
    ["an event named `connect`", notepack.encode({ type: 2, nsp: "/", data: ["connect"] })],
  ]) {
    test(`${what} closes the connection`, T, async () => {
      const { ws, closed } = await raw();
      if (typeof frame !== "string") {
        ws.send(notepack.encode({ type: 0, nsp: "/" }));
      }
      await sleep(50);
      ws.send(frame);
      await closed;
    });
  }

  test("long-polling carries each packet as a `b<base64>` record", T, async () => {
    const base = `${URL}/socket.io/?EIO=4&transport=polling`;
    const open = await (await fetch(base)).text();
    const { sid } = JSON.parse(open.slice(1));
    const post = await fetch(`${base}&sid=${sid}`, {
      method: "POST",
      body: "b" + notepack.encode({ type: 0, data: { a: 1 }, nsp: "/" }).toString("base64"),
    });
    assert.equal(post.status, 200);
    const body = await (await fetch(`${base}&sid=${sid}`)).text();
    const records = body.split("\x1e");
    assert.ok(records.length >= 1);
    for (const r of records) assert.equal(r[0], "b", `record ${r.slice(0, 20)}`);
    const first = notepack.decode(Buffer.from(records[0].slice(1), "base64"));
    assert.equal(first.type, 0);
    assert.equal(typeof first.data.sid, "string");
  });
});
