// @example node_chat
//
// docs/EXAMPLES.md `node_chat`: the reference's chat demo server (socket.io
// examples/chat/index.js), ported line by line. Each check is what that JS server does:
// `add user` → `login {numUsers}` to the sender and `user joined {username, numUsers}` to the
// others, once per connection; `new message`, `typing` and `stop typing` relayed to the others
// with the sender's name (left out while it has none, as JSON.stringify leaves out undefined);
// a disconnect after `add user` → `user left {username, numUsers}`; and its static files.

import { describe, test, after, afterEach } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import { PORT, URL, client, closeAll, connected, once, record, sleep } from "./lib.mjs";

const T = { timeout: 10000 };
let counter = 0;
const unique = (base) => `${base}-${process.pid}-${++counter}`;

/** A connected client that is not a user yet (default transports: polling, then upgrade). */
async function guest(opts = {}) {
  const socket = client("/", opts);
  await connected(socket);
  return socket;
}

/** A connected client that has sent `add user` and got `login`; `login` is its payload. */
async function user(name, opts = {}) {
  const socket = await guest(opts);
  const login = once(socket, "login", 3000, `login of ${name}`);
  socket.emit("add user", name);
  [socket.login] = await login;
  socket.username = name;
  return socket;
}

/**
 * Ordering barrier between `a` and `b`: `a` says something, `b` waits for it, answers, and `a`
 * waits for the answer. Everything the server sent to either of them before has arrived then.
 */
async function barrier(a, b) {
  const token = unique("barrier");
  const heard = once(b, "new message", 3000, "barrier at b");
  a.emit("new message", token);
  assert.equal((await heard)[0].message, token);
  const back = once(a, "new message", 3000, "barrier at a");
  b.emit("new message", token);
  assert.equal((await back)[0].message, token);
}

afterEach(async () => {
  closeAll();
  await sleep(100); // the server counts those users out before the next test counts
});
after(() => closeAll());

describe("node_chat: add user", () => {
  test("login {numUsers} to the user, `user joined` {username, numUsers} to the others", T, async () => {
    const alice = await user(unique("alice"));
    assert.deepEqual(Object.keys(alice.login), ["numUsers"]);
    const base = alice.login.numUsers;
    assert.ok(base >= 1, `numUsers counts alice: ${base}`);
    const joined = once(alice, "user joined");
    const name = unique("bob");
    const bob = await user(name);
    assert.deepEqual(bob.login, { numUsers: base + 1 });
    assert.deepEqual((await joined)[0], { username: name, numUsers: base + 1 });
  });

  test("the user itself gets no `user joined`", T, async () => {
    const alice = await user(unique("alice"));
    const own = record(alice, "user joined");
    const bob = await user(unique("bob"));
    await barrier(alice, bob);
    assert.equal(own.list.length, 1, "alice hears bob only");
    assert.equal(own.list[0][0].username, bob.username);
  });

  test("a second `add user` on the same connection is ignored", T, async () => {
    const name = unique("alice");
    const alice = await user(name);
    const base = alice.login.numUsers;
    const bob = await user(unique("bob"));
    const logins = record(alice, "login");
    const joined = record(bob, "user joined");
    alice.emit("add user", unique("mallory"));
    await barrier(alice, bob);
    assert.equal(logins.list.length, 0, "no second login");
    assert.equal(joined.list.length, 0, "nobody hears a second join");
    // Still alice, still counted once.
    const said = once(bob, "new message");
    alice.emit("new message", "still me");
    assert.deepEqual((await said)[0], { username: name, message: "still me" });
    const carol = await user(unique("carol"));
    assert.equal(carol.login.numUsers, base + 2);
  });

  test("any value is a name, as in JS (a number here)", T, async () => {
    const alice = await user(unique("alice"));
    const joined = once(alice, "user joined");
    const bob = await user(42);
    assert.equal((await joined)[0].username, 42);
    const said = once(alice, "new message");
    bob.emit("new message", { any: ["json"] });
    assert.deepEqual((await said)[0], { username: 42, message: { any: ["json"] } });
  });
});

describe("node_chat: messages", () => {
  test("`new message` reaches the others with the sender's name, not the sender", T, async () => {
    const name = unique("alice");
    const alice = await user(name);
    const bob = await user(unique("bob"));
    const carol = await user(unique("carol"));
    const own = record(alice, "new message");
    const atBob = once(bob, "new message");
    const atCarol = once(carol, "new message");
    alice.emit("new message", "hello");
    assert.deepEqual((await atBob)[0], { username: name, message: "hello" });
    assert.deepEqual((await atCarol)[0], { username: name, message: "hello" });
    await barrier(bob, alice);
    assert.deepEqual(
      own.list.map(([m]) => m.username),
      [bob.username],
      "alice hears bob's barrier only, not herself",
    );
  });

  test("`typing` and `stop typing` reach the others as {username}", T, async () => {
    const name = unique("alice");
    const alice = await user(name);
    const bob = await user(unique("bob"));
    const typing = once(bob, "typing");
    alice.emit("typing");
    assert.deepEqual((await typing)[0], { username: name });
    const stop = once(bob, "stop typing");
    alice.emit("stop typing");
    assert.deepEqual((await stop)[0], { username: name });
    const own = record(alice, "typing");
    await barrier(alice, bob);
    assert.equal(own.list.length, 0, "the typist is not told");
  });

  test("before `add user` the name is undefined: left out of the relayed object", T, async () => {
    const bob = await user(unique("bob"));
    const anon = await guest();
    const said = once(bob, "new message");
    anon.emit("new message", "who am I");
    assert.deepEqual((await said)[0], { message: "who am I" });
    const typing = once(bob, "typing");
    anon.emit("typing");
    assert.deepEqual((await typing)[0], {});
  });

  test("`new message` without an argument relays an undefined message: {username}", T, async () => {
    const name = unique("alice");
    const alice = await user(name);
    const bob = await user(unique("bob"));
    const said = once(bob, "new message");
    alice.emit("new message");
    assert.deepEqual((await said)[0], { username: name });
  });
});

describe("node_chat: disconnect", () => {
  test("a user leaving: `user left` {username, numUsers} with the new count", T, async () => {
    const alice = await user(unique("alice"));
    const name = unique("bob");
    const bob = await user(name);
    const left = once(alice, "user left");
    bob.disconnect();
    assert.deepEqual((await left)[0], { username: name, numUsers: bob.login.numUsers - 1 });
    // The count went down: the next user is counted from there.
    const carol = await user(unique("carol"));
    assert.equal(carol.login.numUsers, bob.login.numUsers);
  });

  test("a connection that never added a user leaves silently and is not counted", T, async () => {
    const alice = await user(unique("alice"));
    const bob = await user(unique("bob"));
    const left = record(alice, "user left");
    const anon = await guest();
    anon.disconnect();
    await sleep(100);
    await barrier(alice, bob);
    assert.equal(left.list.length, 0);
    const carol = await user(unique("carol"));
    assert.equal(carol.login.numUsers, bob.login.numUsers + 1);
  });

  test("a dropped transport counts as a disconnect too", T, async () => {
    const alice = await user(unique("alice"));
    const name = unique("bob");
    const bob = await user(name, { transports: ["websocket"] });
    const left = once(alice, "user left");
    bob.io.engine.close();
    assert.deepEqual((await left)[0], { username: name, numUsers: bob.login.numUsers - 1 });
  });
});

describe("node_chat: static files (express.static) and the client bundle", () => {
  const get = (path) => fetch(`${URL}${path}`, { signal: AbortSignal.timeout(3000) });

  test("GET / is public/index.html, which loads the client and main.js", T, async () => {
    const res = await get("/");
    assert.equal(res.status, 200);
    assert.match(res.headers.get("content-type"), /^text\/html/);
    const html = await res.text();
    assert.match(html, /<script src="\/socket\.io\.min\.js"><\/script>/);
    assert.match(html, /<script src="main\.js"><\/script>/);
  });

  test("public files by name, with their types", T, async () => {
    for (const [path, type] of [
      ["/index.html", /^text\/html/],
      ["/main.js", /^application\/javascript/],
      ["/style.css", /^text\/css/],
      ["/socket.io.min.js", /^application\/javascript/],
    ]) {
      const res = await get(path);
      assert.equal(res.status, 200, path);
      assert.match(res.headers.get("content-type"), type, path);
      assert.ok((await res.text()).length > 0, path);
    }
  });

  test("nothing outside public/: missing files and `..` (raw or escaped) are 404", T, async () => {
    // node:http sends the path as written (fetch would normalise `..` away first).
    const raw = (path) =>
      new Promise((resolve, reject) => {
        const req = http.get({ host: "127.0.0.1", port: PORT, path }, (res) => {
          res.resume();
          res.on("end", () => resolve(res.statusCode));
        });
        req.setTimeout(3000, () => req.destroy(new Error(`GET ${path} timed out`)));
        req.on("error", reject);
      });
    for (const path of ["/missing.js", "/../Cargo.toml", "/%2e%2e/node_chat.rs", "/..%2F..%2FCargo.toml"]) {
      assert.equal(await raw(path), 404, path);
    }
    assert.equal(await raw("/./index.html"), 200, "`.` is harmless");
  });
});
