// @example chat
// @env SOCKET_IO_CLIENT_JS=tests/browser/node_modules/socket.io-client/dist/socket.io.min.js
//
// The chat demo (examples/chat.rs + chat.html) in real headless Chromium: people join under
// their names, talk, keep to their rooms, send an image, and the page reconnects by itself when
// the server restarts. Every assertion reads the page's DOM.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { URL, PORT, launch, screenshot, startExample, stopProcess, texts, waitFor, waitForText } from "./lib.mjs";

const T = { timeout: 30000 };
let browser;
const pages = {};
const children = [];

before(async () => {
  browser = await launch();
});

after(async () => {
  await browser?.close();
  for (const c of children) c.kill("SIGKILL");
});

/** A new page that joined the chat as `name`. */
async function join(name) {
  // A browser context each: separate people, nothing shared between their pages.
  const context = await browser.createBrowserContext();
  const page = await context.newPage();
  await page.setViewport({ width: 760, height: 640 });
  page.on("dialog", (d) => d.dismiss());
  await page.goto(URL + "/", { waitUntil: "load" });
  await page.type("#login input[name=username]", name);
  await page.click("#login button");
  await waitForText(page, "#log p", `welcome, ${name}`);
  pages[name] = page;
  return page;
}

/** Types `text` into the page's message box and sends it. */
async function say(page, text) {
  await page.type("#say input[name=text]", text);
  await page.click("#say button");
}

const log = (page) => texts(page, "#log p");
const status = (page) => page.$eval("#status", (e) => e.textContent);

test("two people join under their names and talk", T, async () => {
  const alice = await join("alice");
  const bob = await join("bob");
  await waitForText(alice, "#log p", "bob joined");
  await say(alice, "hi bob!");
  await waitForText(bob, "#log p", "alice: hi bob!");
  await say(bob, "hello alice, how are you?");
  await waitForText(alice, "#log p", "bob: hello alice, how are you?");
  assert.ok((await log(alice)).includes("me: hi bob!"));
  assert.equal(await status(alice), "connected");
});

test("a room message reaches that room only", T, async () => {
  const { alice, bob } = pages;
  const carol = await join("carol");
  await say(alice, "/join blue");
  await waitForText(alice, "#log p.sys", "joined blue");
  await say(bob, "/join blue");
  await waitForText(bob, "#log p.sys", "joined blue");
  await say(carol, "/join red");
  await waitForText(carol, "#log p.sys", "joined red");
  await say(alice, "/to blue a secret for blue");
  await waitForText(bob, "#log p", "alice in blue: a secret for blue");
  // Sent after the room message by the same socket: once carol has it, she would have had the
  // room message before it.
  await say(alice, "now to everyone");
  await waitForText(carol, "#log p", "alice: now to everyone");
  assert.ok(!(await log(carol)).some((t) => t.includes("secret")), "carol (room red) got blue's message");
});

test("an image goes through as binary and shows in the other page", T, async () => {
  const { alice, bob } = pages;
  // A 48×32 PNG drawn in the page, put into the file input as a person would pick it.
  await alice.evaluate(async () => {
    const c = document.createElement("canvas");
    c.width = 48;
    c.height = 32;
    const g = c.getContext("2d");
    g.fillStyle = "#2a7ae2";
    g.fillRect(0, 0, 48, 32);
    g.fillStyle = "#f5b700";
    g.beginPath();
    g.arc(24, 16, 12, 0, 2 * Math.PI);
    g.fill();
    const blob = await new Promise((r) => c.toBlob(r, "image/png"));
    const dt = new DataTransfer();
    dt.items.add(new File([blob], "sun.png", { type: "image/png" }));
    document.querySelector("#image input[name=file]").files = dt.files;
  });
  await alice.click("#image button");
  await waitForText(bob, "#log p", "alice sent an image:");
  // Decoded by the browser from the blob: the bytes arrived whole.
  await waitFor(
    () => bob.$$eval("#log img", (imgs) => imgs.some((i) => i.complete && i.naturalWidth === 48 && i.naturalHeight === 32)),
    5000,
    "a 48×32 image decoded in bob's page",
  );
  const src = await bob.$eval("#log img", (i) => i.src);
  assert.match(src, /^blob:/);
  await say(bob, "nice picture!");
  await waitForText(alice, "#log p", "bob: nice picture!");
  const file = await screenshot(bob, "chat.png");
  if (file) console.log(`screenshot: ${file}`);
});

test("after the server restarts, the page reconnects by itself and works again", T, async () => {
  const { alice, bob } = pages;
  const pid = Number(process.env.ROOMCAST_SERVER_PID);
  assert.ok(pid > 0, "ROOMCAST_SERVER_PID must name the running example (run through run.sh)");
  await stopProcess(pid, PORT);
  await waitFor(async () => (await status(alice)).startsWith("disconnected"), 5000, "alice's page to see the drop");
  children.push(await startExample(process.env.ROOMCAST_EXAMPLE, PORT));
  for (const page of [alice, bob]) {
    await waitFor(async () => (await status(page)).startsWith("connected again"), 15000, "the page to reconnect");
  }
  await say(alice, "still there?");
  await waitForText(bob, "#log p", "alice: still there?");
  await say(bob, "yes!");
  await waitForText(alice, "#log p", "bob: yes!");
});
