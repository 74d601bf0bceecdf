// Shared helpers of the browser tests (run through run.sh, which sets):
//   ROOMCAST_URL, ROOMCAST_PORT   where the example listens
//   ROOMCAST_SERVER_PID           the example's process (so a test can stop it)
//   ROOMCAST_EXAMPLE              the example's binary (so a test can start it again)
//   CHROMIUM                      the browser binary
//   SCREENSHOTS                   if set, the directory the screenshots go to

import net from "node:net";
import path from "node:path";
import { spawn } from "node:child_process";
import { readFile } from "node:fs/promises";
import puppeteer from "puppeteer-core";

export const PORT = Number(process.env.ROOMCAST_PORT ?? 3000);
export const URL = process.env.ROOMCAST_URL ?? `http://127.0.0.1:${PORT}`;
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** A headless Chromium, its own profile, no sandbox (the tests run as root). */
export function launch() {
  return puppeteer.launch({
    executablePath: process.env.CHROMIUM ?? "chromium",
    headless: true,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-dev-shm-usage",
      "--no-first-run",
      // Several pages talk at once: none may be put to sleep for being in the background.
      "--disable-background-timer-throttling",
      "--disable-renderer-backgrounding",
      "--disable-backgrounding-occluded-windows",
    ],
    protocolTimeout: 20000,
  });
}

/** A screenshot of `page` into $SCREENSHOTS/<name>, when that is set. */
export async function screenshot(page, name, opts = {}) {
  const dir = process.env.SCREENSHOTS;
  if (!dir) return null;
  const file = path.resolve(dir, name);
  await page.screenshot({ path: file, ...opts });
  return file;
}

export async function waitFor(pred, ms, what) {
  const deadline = Date.now() + ms;
  let last;
  while (Date.now() < deadline) {
    try {
      if (await pred()) return;
    } catch (e) {
      last = e;
    }
    await sleep(50);
  }
  throw new Error(`timed out after ${ms} ms waiting for ${what}${last ? ` (last error: ${last.message})` : ""}`);
}

/** True if something accepts TCP connections on 127.0.0.1:port. */
export function accepts(port) {
  return new Promise((resolve) => {
    const s = net.connect({ host: "127.0.0.1", port });
    s.once("connect", () => {
      s.destroy();
      resolve(true);
    });
    s.once("error", () => resolve(false));
  });
}

/** Is process `pid` gone (or a zombie)? */
export async function processGone(pid) {
  try {
    process.kill(pid, 0);
  } catch {
    return true;
  }
  try {
    const stat = await readFile(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2).startsWith("Z");
  } catch {
    return true;
  }
}

/** Sends SIGTERM to `pid` and waits until it is gone and its port refuses connections. */
export async function stopProcess(pid, port = PORT, ms = 5000) {
  process.kill(pid, "SIGTERM");
  await waitFor(async () => (await processGone(pid)) && !(await accepts(port)), ms, `pid ${pid} to exit`);
}

/** Starts the example binary again on `port`; resolves with the child once it accepts connections. */
export async function startExample(bin = process.env.ROOMCAST_EXAMPLE, port = PORT, env = {}) {
  if (!bin) throw new Error("ROOMCAST_EXAMPLE is not set (run through tests/browser/run.sh)");
  const child = spawn(bin, [], {
    env: { ...process.env, PORT: String(port), RUST_LOG: process.env.RUST_LOG ?? "warn", ...env },
    stdio: ["ignore", "inherit", "inherit"],
  });
  process.once("exit", () => child.kill("SIGKILL"));
  let exited = null;
  child.once("exit", (code, signal) => (exited = { code, signal }));
  await waitFor(
    async () => {
      if (exited) throw new Error(`${bin} exited early: ${JSON.stringify(exited)}`);
      return accepts(port);
    },
    10000,
    `${bin} to accept connections on port ${port}`,
  );
  return child;
}

/** The text of every element matching `selector` in `page`. */
export function texts(page, selector) {
  return page.$$eval(selector, (els) => els.map((e) => e.textContent.trim()));
}

/** Waits until some element matching `selector` has text containing `needle`. */
export async function waitForText(page, selector, needle, ms = 5000) {
  await waitFor(async () => (await texts(page, selector)).some((t) => t.includes(needle)), ms, `"${needle}" in ${selector}`);
}
