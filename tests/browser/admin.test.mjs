// @example classroom
// @env ADMIN=1
//
// The official Admin UI (@socket.io/admin-ui 0.5.1, served by the classroom example at /admin/)
// in real headless Chromium, watching official socket.io-client clients (Node) in rooms. Every
// assertion reads what the UI's page shows; the last one disconnects a socket from the UI and
// checks that the client saw it.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { io } from "socket.io-client";
import { URL, launch, screenshot, waitFor } from "./lib.mjs";

const T = { timeout: 30000 };
let browser;
let page;
const clients = [];

/** An official client of `nsp`, its own connection, once connected. */
async function client(nsp) {
  const socket = io(URL + nsp, { forceNew: true, reconnection: false, transports: ["websocket"] });
  clients.push(socket);
  await new Promise((resolve, reject) => {
    socket.once("connect", resolve);
    socket.once("connect_error", reject);
  });
  return socket;
}

const main = () => page.$eval("main", (m) => m.innerText);
/** The UI's pages are routed by the URL's hash (`#/rooms/`, `#/n/<nsp>/sockets/<id>`...). */
const go = (hash) => page.evaluate((h) => (location.hash = h), hash);

let school1, school2, home, root;

before(async () => {
  school1 = await client("/school");
  school2 = await client("/school");
  home = await client("/home");
  root = await client("/");
  for (const s of [school1, school2]) {
    assert.equal(await s.timeout(3000).emitWithAck("join", "codefellows"), "Joined codefellows");
  }
  browser = await launch();
  page = await browser.newPage();
  await page.setViewport({ width: 1280, height: 800 });
  await page.goto(URL + "/admin/", { waitUntil: "load" });
});

after(async () => {
  for (const s of clients) s.close();
  await browser?.close();
});

test("the UI connects by itself to the server it is served from", T, async () => {
  await waitFor(async () => (await page.$eval("header", (h) => h.innerText)).includes("CONNECTED"), 10000, "status CONNECTED");
  const header = await page.$eval("header", (h) => h.innerText);
  assert.ok(header.includes(URL), `the server URL is pre-filled: ${header}`);
});

test("the dashboard shows the three namespaces with their socket counts", T, async () => {
  const rows = async () =>
    page.$$eval("main table tr", (trs) => trs.map((tr) => [...tr.querySelectorAll("td")].map((td) => td.innerText.trim())));
  const want = [["/", "1"], ["/school", "2"], ["/home", "1"]];
  await waitFor(
    async () => {
      const r = await rows();
      return want.every(([n, c]) => r.some((cells) => cells[0] === n && cells[1] === c));
    },
    8000,
    "the namespaces table",
  );
  // Every client connection is counted (4 here, plus the UI's own, whichever its transport).
  const clientsCount = async () => {
    const t = await main();
    const n = (label) => Number(t.match(new RegExp(`${label}\\s+(\\d+)`))?.[1] ?? NaN);
    return n("WebSocket") + n("HTTP long-polling");
  };
  await waitFor(async () => (await clientsCount()) === 5, 8000, "5 clients on the dashboard");
  const file = await screenshot(page, "admin.png");
  if (file) console.log(`screenshot: ${file}`);
});

test("a room shows with its members", T, async () => {
  await go("#/n/%2Fschool/rooms/codefellows");
  await waitFor(async () => {
    const t = await main();
    return t.includes("codefellows") && t.includes(school1.id) && t.includes(school2.id);
  }, 8000, "room codefellows with both /school sockets");
  const t = await main();
  assert.ok(t.includes("ACTIVE") && t.includes("PUBLIC"), t);
  assert.ok(!t.includes(home.id) && !t.includes(root.id), "only /school's members");
});

test("a socket disconnected from the UI really disconnects", T, async () => {
  const reason = new Promise((resolve) => school2.once("disconnect", resolve));
  await go("#/sockets/");
  await waitFor(async () => (await main()).includes("Sockets"), 8000, "the sockets page");
  await go(`#/n/%2Fschool/sockets/${school2.id}`);
  await waitFor(async () => (await main()).includes("Socket details") && (await main()).includes(school2.id), 8000, "the socket's page");
  // Its page has two "log out" buttons: the client's connection, then this socket.
  const buttons = await page.$$("main button:has(i.mdi-logout)");
  assert.equal(buttons.length, 2);
  await buttons[1].click();
  const why = await Promise.race([reason, new Promise((r) => setTimeout(() => r("timeout"), 5000))]);
  assert.equal(why, "io server disconnect");
  // The UI sees it go: the room has one member left.
  await go("#/n/%2Fschool/rooms/codefellows");
  await waitFor(async () => {
    const t = await main();
    return t.includes(school1.id) && !t.includes(school2.id);
  }, 8000, "codefellows without the disconnected socket");
  assert.ok(school1.connected && home.connected && root.connected, "the others stay");
});
