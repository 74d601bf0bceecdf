// @example options_server
// @env TOKEN=s3cret COOKIE=io-session=abc123 CORS_ORIGINS=http://app.test,http://other.test CORS_CREDENTIALS=1 CORS_EXPOSED_HEADERS=x-served-by CORS_MAX_AGE=600
//
// The HTTP-level server options (issue 10) seen by the official socket.io-client and by raw
// fetch preflights: allowRequest refusing with 403 {"code":4,...} and accepting, the
// initial_headers cookie kept by the client's cookie jar and sent back, the headers hook on
// every response, CORS preflights for allowed and refused origins, connection_error for each
// refusal, and `transports: ["websocket"]` refusing polling (a server of its own).

import { test, after } from "node:test";
import assert from "node:assert/strict";
import { URL, client, clientTo, closeAll, connected, connectError, freePort, startExample } from "./lib.mjs";

const T = { timeout: 20000 };
const children = [];

after(() => {
  closeAll();
  for (const c of children) c.kill("SIGKILL");
});

async function report(socket) {
  return socket.timeout(3000).emitWithAck("report");
}

test("allowRequest refuses a client without the token: 403, code 4, its message", T, async () => {
  for (const transports of [["polling"], ["websocket"]]) {
    const socket = client("/", { transports });
    // The client aborts its request right after the event: read the body at once.
    let body;
    socket.once("connect_error", (e) => (body = e.context?.responseText));
    const err = await connectError(socket);
    if (transports[0] === "polling") {
      assert.equal(err.message, "xhr poll error");
      assert.equal(err.description, 403);
      assert.deepEqual(JSON.parse(body), { code: 4, message: "invalid token" });
    } else {
      assert.equal(err.message, "websocket error");
      assert.match(err.description.message, /403/);
    }
    socket.close();
  }
});

test("allowRequest accepts the token; the initial_headers cookie is kept and sent back", T, async () => {
  const socket = client("/", {
    transports: ["polling"],
    withCredentials: true, // the Node client's cookie jar
    extraHeaders: { "x-token": "s3cret" },
  });
  await connected(socket);
  const jar = socket.io.engine._cookieJar;
  assert.ok(jar, "the client keeps cookies with withCredentials");
  const cookies = Object.fromEntries([...jar.cookies].map(([name, c]) => [name, c.value]));
  assert.deepEqual(cookies, { "io-session": "abc123" });
  const echo = await socket.timeout(3000).emitWithAck("echo", "hi");
  assert.equal(echo, "hi");
  const r = await report(socket);
  assert.equal(r.cookie, "io-session=abc123");
  // The refusals of the previous test reached connection_error.
  const forbidden = r.errors.filter((e) => e.code === 4);
  assert.ok(forbidden.length >= 2, JSON.stringify(r.errors));
  assert.equal(forbidden[0].message, "Forbidden");
  assert.deepEqual(forbidden[0].context, { message: "invalid token" });
  socket.close();
});

test("the token in the query opens a WebSocket session too; upgrades work", T, async () => {
  const ws = client("/", { transports: ["websocket"], query: { token: "s3cret" } });
  await connected(ws);
  assert.equal(ws.io.engine.transport.name, "websocket");
  ws.close();
  // Polling first, then the upgrade (the upgrade request carries a sid: not asked again).
  const up = client("/", { extraHeaders: { "x-token": "s3cret" } });
  await connected(up);
  await new Promise((resolve) =>
    up.io.engine.transport.name === "websocket" ? resolve() : up.io.engine.once("upgrade", resolve),
  );
  assert.equal(up.io.engine.transport.name, "websocket");
  up.close();
});

test("the headers hook is on every response, initial_headers only on the handshake", T, async () => {
  const hs = await fetch(`${URL}/socket.io/?EIO=4&transport=polling&token=s3cret`);
  assert.equal(hs.status, 200);
  assert.equal(hs.headers.get("x-served-by"), "roomcast");
  assert.deepEqual(hs.headers.getSetCookie(), ["io-session=abc123; Path=/; HttpOnly; SameSite=Lax"]);
  const sid = JSON.parse((await hs.text()).slice(1)).sid;
  const post = await fetch(`${URL}/socket.io/?EIO=4&transport=polling&sid=${sid}`, { method: "POST", body: "40" });
  assert.equal(await post.text(), "ok");
  assert.equal(post.headers.get("x-served-by"), "roomcast");
  assert.deepEqual(post.headers.getSetCookie(), []);
});

test("CORS: preflights of allowed and refused origins, headers on the actual requests", T, async () => {
  const path = `${URL}/socket.io/?EIO=4&transport=polling`;
  const preflight = (origin) =>
    fetch(path, {
      method: "OPTIONS",
      headers: { origin, "access-control-request-method": "GET", "access-control-request-headers": "x-token" },
    });
  for (const origin of ["http://app.test", "http://other.test"]) {
    const r = await preflight(origin);
    assert.equal(r.status, 204);
    assert.equal(r.headers.get("access-control-allow-origin"), origin);
    assert.equal(r.headers.get("access-control-allow-credentials"), "true");
    assert.equal(r.headers.get("access-control-allow-methods"), "GET,HEAD,PUT,PATCH,POST,DELETE");
    assert.equal(r.headers.get("access-control-allow-headers"), "x-token");
    assert.equal(r.headers.get("access-control-max-age"), "600");
    assert.equal(r.headers.get("access-control-expose-headers"), "x-served-by");
    assert.equal(r.headers.get("vary"), "Origin, Access-Control-Request-Headers");
  }
  const refused = await preflight("http://evil.test");
  assert.equal(refused.status, 204);
  assert.equal(refused.headers.get("access-control-allow-origin"), null);
  // An actual request: the origin headers, and a refusal is readable by the page.
  const denied = await fetch(path, { headers: { origin: "http://app.test" } });
  assert.equal(denied.status, 403);
  assert.equal(denied.headers.get("access-control-allow-origin"), "http://app.test");
  assert.deepEqual(await denied.json(), { code: 4, message: "invalid token" });
});

test("connection_error reports each refusal with the reference's code and message", T, async () => {
  const refusals = [
    ["GET", "/socket.io/?EIO=4&transport=smoke-signals", 0, "Transport unknown"],
    ["GET", "/socket.io/?EIO=4&transport=polling&sid=nope", 1, "Session ID unknown"],
    ["POST", "/socket.io/?EIO=4&transport=polling", 2, "Bad handshake method"],
    ["GET", "/socket.io/?EIO=3&transport=polling&token=s3cret", 5, "Unsupported protocol version"],
  ];
  for (const [method, path, code, message] of refusals) {
    const r = await fetch(URL + path, { method, body: method === "POST" ? "x" : undefined });
    assert.equal(r.status, 400);
    assert.deepEqual(await r.json(), { code, message });
  }
  const socket = client("/", { transports: ["websocket"], query: { token: "s3cret" } });
  await connected(socket);
  const errors = (await report(socket)).errors;
  for (const [, path, code, message] of refusals) {
    assert.ok(
      errors.some((e) => e.code === code && e.message === message && e.url === path),
      `${code} ${path} not in ${JSON.stringify(errors)}`,
    );
  }
  socket.close();
});

test("transports: [websocket] refuses polling with code 0; the official client connects over WebSocket", T, async () => {
  const port = await freePort();
  children.push(await startExample(undefined, port, { TRANSPORTS: "websocket", TOKEN: undefined, COOKIE: undefined }));
  const base = `http://127.0.0.1:${port}`;
  const r = await fetch(`${base}/socket.io/?EIO=4&transport=polling`);
  assert.equal(r.status, 400);
  assert.deepEqual(await r.json(), { code: 0, message: "Transport unknown" });
  const refused = clientTo(base, "/", { transports: ["polling"] });
  const err = await connectError(refused);
  assert.equal(err.description, 400);
  refused.close();
  const ws = clientTo(base, "/", { transports: ["websocket"] });
  await connected(ws);
  ws.close();
});
