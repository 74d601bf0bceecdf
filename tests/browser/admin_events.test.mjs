// @example classroom
// @env ADMIN=1 ADMIN_ALL_EVENTS=1
//
// The Admin UI's per-event stream and counters, read the way the UI reads them (a
// socket.io-client on /admin; no page needed): with `all_events` on, an event a client sends
// is reported as `event_received`, and each copy the server sends as `event_sent`; the
// statistics count packets and bytes both ways.

import { test, after } from "node:test";
import assert from "node:assert/strict";
import { io } from "socket.io-client";
import { URL, waitFor } from "./lib.mjs";

const T = { timeout: 20000 };
const sockets = [];
after(() => sockets.forEach((s) => s.close()));

function connect(nsp) {
  const s = io(URL + nsp, { forceNew: true, reconnection: false, transports: ["websocket"] });
  sockets.push(s);
  return new Promise((resolve, reject) => {
    s.once("connect", () => resolve(s));
    s.once("connect_error", reject);
  });
}

test("event_received, event_sent and the packet counters", T, async () => {
  const admin = await connect("/admin");
  const got = { received: [], sent: [], stats: [] };
  admin.on("event_received", (nsp, id, args) => got.received.push({ nsp, id, args }));
  admin.on("event_sent", (nsp, id, args) => got.sent.push({ nsp, id, args }));
  admin.on("server_stats", (s) => got.stats.push(s));
  const a = await connect("/home");
  const b = await connect("/home");
  await new Promise((r) => setTimeout(r, 300));
  // classroom: `speak` in /home is emitted as `message` to every socket of /home.
  a.emit("speak", "hello", 7);
  await waitFor(() => got.sent.length >= 2, 5000, "two event_sent");
  assert.deepEqual(got.received, [{ nsp: "/home", id: a.id, args: ["speak", "hello", 7] }]);
  const sent = got.sent.map((s) => s.id).sort();
  assert.deepEqual(sent, [a.id, b.id].sort());
  for (const s of got.sent) assert.deepEqual(s.args, ["message", "hello", 7]);
  // The next statistics count what went out.
  const before = got.stats.length;
  await waitFor(() => got.stats.length > before, 5000, "server_stats");
  const kinds = new Set(got.stats.flatMap((s) => s.aggregatedEvents.map((e) => e.type)));
  for (const k of ["packetsIn", "bytesIn", "packetsOut", "bytesOut"]) assert.ok(kinds.has(k), `${k} in ${[...kinds]}`);
});
