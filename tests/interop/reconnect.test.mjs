// @example protocol_server
//
// The official client reconnects by itself when the server goes away (SIGTERM, graceful
// shutdown: docs/EXAMPLES.md) and comes back on the same port. The first server is the one
// run.sh started (ROOMCAST_SERVER_PID); each test restarts the binary (ROOMCAST_EXAMPLE) and
// leaves a server running for the next one.

import { test, after } from "node:test";
import assert from "node:assert/strict";
import { client, closeAll, connected, once, sleep, startExample, stopProcess } from "./lib.mjs";

const T = { timeout: 20000 };
let serverPid = Number(process.env.ROOMCAST_SERVER_PID);
const children = [];

after(() => {
  closeAll();
  for (const c of children) c.kill("SIGKILL");
});

async function restartAndCheck(opts, label) {
  assert.ok(serverPid > 0, "ROOMCAST_SERVER_PID must name the running example (run through run.sh)");
  const socket = client("/", {
    ...opts,
    auth: { who: label },
    reconnection: true,
    reconnectionDelay: 100,
    reconnectionDelayMax: 300,
    randomizationFactor: 0,
  });
  let connects = 0;
  const auths = [];
  socket.on("connect", () => connects++);
  socket.on("auth", (a) => auths.push(a));
  await connected(socket);
  if (opts.transports === undefined && socket.io.engine.transport.name !== "websocket") {
    await once(socket.io.engine, "upgrade", 5000, "upgrade before the restart");
  }
  const firstId = socket.id;
  const back = once(socket, "message-back");
  socket.emit("message", "before");
  assert.deepEqual(await back, ["before"]);

  const disconnect = once(socket, "disconnect", 5000, "disconnect after SIGTERM");
  await stopProcess(serverPid);
  const [reason] = await disconnect;
  // Told with a close packet or by the connection closing: either way not "io server disconnect",
  // which would stop the client from reconnecting.
  assert.ok(
    ["transport close", "transport error", "ping timeout"].includes(reason),
    `unexpected disconnect reason ${reason}`,
  );
  assert.equal(socket.connected, false);
  // Let the client fail a few attempts while nothing listens.
  await sleep(400);
  assert.equal(connects, 1);

  const reconnected = once(socket, "connect", 10000, "connect after the restart");
  const child = await startExample();
  children.push(child);
  serverPid = child.pid;
  await reconnected;
  assert.equal(connects, 2);
  assert.ok(socket.connected);
  assert.notEqual(socket.id, firstId, "a new server hands out a new socket id");
  // The auth payload is sent again on reconnection.
  await sleep(50);
  assert.deepEqual(auths, [{ who: label }, { who: label }]);
  const again = once(socket, "message-back");
  socket.emit("message", "after", Buffer.from([9, 8, 7]));
  const args = await again;
  assert.equal(args[0], "after");
  assert.deepEqual(Buffer.from(args[1]), Buffer.from([9, 8, 7]));
  socket.disconnect();
}

test("websocket client reconnects by itself after the server restarts", T, async () => {
  await restartAndCheck({ transports: ["websocket"] }, "ws");
});

test("polling+upgrade client reconnects by itself after the server restarts", T, async () => {
  await restartAndCheck({}, "default");
});

test("polling-only client reconnects by itself after the server restarts", T, async () => {
  await restartAndCheck({ transports: ["polling"], upgrade: false }, "polling");
});
