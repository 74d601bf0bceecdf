// @example options_server
//
// CORS (issue 10) in real headless Chromium: a page served from one origin connects with the
// official client to options_server on another port. The client sends credentials and an
// extra header, so the browser makes a real preflight; the server allows the page's origin
// with credentials, its allowRequest checks the header, and its initial_headers cookie is
// stored by the browser and sent back. The same page from an origin not listed fails.
//
// The run.sh server is not used: the allowed origin names the page's port, known only here,
// so the test starts its own options_server (ROOMCAST_EXAMPLE) once the page server listens.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import net from "node:net";
import { readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { launch, startExample } from "./lib.mjs";

const T = { timeout: 30000 };
const clientJs = fileURLToPath(new URL("./node_modules/socket.io-client/dist/socket.io.min.js", import.meta.url));
let browser, pages, server, serverPort, pagePort;

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

before(async () => {
  const js = await readFile(clientJs);
  pages = http.createServer((req, res) => {
    if (req.url === "/socket.io.min.js") {
      res.writeHead(200, { "content-type": "text/javascript" });
      return res.end(js);
    }
    res.writeHead(200, { "content-type": "text/html" });
    res.end('<!doctype html><title>cors</title><script src="/socket.io.min.js"></script>');
  });
  await new Promise((r) => pages.listen(0, "127.0.0.1", r));
  pagePort = pages.address().port;
  serverPort = await freePort();
  server = await startExample(undefined, serverPort, {
    CORS_ORIGINS: `http://127.0.0.1:${pagePort}`,
    CORS_CREDENTIALS: "1",
    TOKEN: "s3cret",
    COOKIE: "io-session=browser1",
  });
  browser = await launch();
});

after(async () => {
  await browser?.close();
  server?.kill("SIGKILL");
  pages?.close();
});

/** Opens the page at `origin`, connects the official client to the server, reports. */
async function connectFrom(origin, opts) {
  const context = await browser.createBrowserContext();
  const page = await context.newPage();
  const cdp = await page.createCDPSession();
  const methods = [];
  await cdp.send("Network.enable");
  cdp.on("Network.requestWillBeSent", (e) => methods.push(`${e.type}:${e.request.method}`));
  await page.goto(`${origin}/`, { waitUntil: "load" });
  const result = await page.evaluate(
    (url, opts) =>
      new Promise((resolve) => {
        const s = io(url, { reconnection: false, forceNew: true, timeout: 5000, ...opts });
        s.on("connect", async () => {
          const report = await s.timeout(3000).emitWithAck("report");
          resolve({ ok: true, transport: s.io.engine.transport.name, report, cookie: document.cookie });
          s.close();
        });
        s.on("connect_error", (e) => {
          resolve({ ok: false, message: e.message });
          s.close();
        });
      }),
    `http://127.0.0.1:${serverPort}`,
    opts,
  );
  await context.close();
  return { ...result, methods };
}

const withToken = { transports: ["polling"], withCredentials: true, extraHeaders: { "x-token": "s3cret" } };

test("an allowed origin connects after a real preflight, with credentials and the cookie", T, async () => {
  const r = await connectFrom(`http://127.0.0.1:${pagePort}`, withToken);
  assert.equal(r.ok, true, JSON.stringify(r));
  assert.equal(r.transport, "polling");
  // The browser stored the handshake's cookie (initial_headers) and sent it back.
  assert.equal(r.report.cookie, "io-session=browser1");
  // HttpOnly: the page's script does not see it.
  assert.equal(r.cookie, "");
  // Chromium reports its preflights as requests of type "Other".
  assert.ok(r.methods.includes("Other:OPTIONS"), `no preflight seen: ${r.methods}`);
});

test("the same page from an origin not allowed fails", T, async () => {
  const r = await connectFrom(`http://localhost:${pagePort}`, withToken);
  assert.equal(r.ok, false, JSON.stringify(r));
  assert.equal(r.message, "xhr poll error");
  // Its preflight was answered, without its origin: the browser stopped there.
  assert.ok(r.methods.includes("Other:OPTIONS"), `no preflight seen: ${r.methods}`);
});

test("an allowed origin without the token is refused by allowRequest", T, async () => {
  const r = await connectFrom(`http://127.0.0.1:${pagePort}`, { transports: ["polling"], withCredentials: true });
  assert.equal(r.ok, false, JSON.stringify(r));
  assert.equal(r.message, "xhr poll error");
});

test("WebSocket from the allowed origin, the token in the query", T, async () => {
  const r = await connectFrom(`http://127.0.0.1:${pagePort}`, { transports: ["websocket"], query: { token: "s3cret" } });
  assert.equal(r.ok, true, JSON.stringify(r));
  assert.equal(r.transport, "websocket");
});
