// @example classroom
//
// docs/EXAMPLES.md / DESIGN §6 `classroom`: namespaces `/`, `/school`, `/home`; `speak` goes to
// the whole namespace (sender included); in `/school`, `join` (ack "Joined <room>") and
// `room-speak` to that room only; namespaces never leak into each other.

import { describe, test, after, afterEach } from "node:test";
import assert from "node:assert/strict";
import { client, manager, closeAll, connected, connectError, record, sleep, asBuffer, isBinary } from "./lib.mjs";

const T = { timeout: 10000 };
const WS = { transports: ["websocket"] };
// Time given to a message that must NOT arrive, after every expected one has arrived.
const QUIET_MS = 300;

afterEach(() => closeAll());
after(() => closeAll());

async function classroom(opts = WS) {
  const core = client("/", opts);
  const school = client("/school", opts); // joins codefellows
  const school2 = client("/school", opts); // never joins a room
  const home = client("/home", opts);
  await Promise.all([core, school, school2, home].map((s) => connected(s)));
  const r = {
    core: record(core, "message"),
    school: record(school, "message"),
    school2: record(school2, "message"),
    home: record(home, "message"),
  };
  return { core, school, school2, home, r };
}

describe("classroom", () => {
  test("the three namespaces accept connections; others do not", T, async () => {
    for (const nsp of ["/", "/school", "/home"]) {
      const s = client(nsp, WS);
      await connected(s);
      assert.equal(s.nsp, nsp);
    }
    const err = await connectError(client("/office", WS));
    assert.equal(err.message, "Invalid namespace");
  });

  test("/school `join` is acknowledged `Joined <room>`", T, async () => {
    const s = client("/school", WS);
    await connected(s);
    assert.equal(await s.timeout(3000).emitWithAck("join", "codefellows"), "Joined codefellows");
    const viaCallback = await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("no ack for join")), 3000);
      s.emit("join", "other room", (...args) => {
        clearTimeout(timer);
        resolve(args);
      });
    });
    assert.deepEqual(viaCallback, ["Joined other room"]);
  });

  test("`speak` on / reaches every socket of / (sender included) and nobody else", T, async () => {
    const { core, r } = await classroom();
    const core2 = client("/", WS);
    await connected(core2);
    const r2 = record(core2, "message");
    core.emit("speak", "hello core", { n: 1 });
    await Promise.all([r.core.until(1), r2.until(1)]);
    assert.deepEqual(r.core.list, [["hello core", { n: 1 }]]);
    assert.deepEqual(r2.list, [["hello core", { n: 1 }]]);
    await sleep(QUIET_MS);
    assert.deepEqual(r.school.list, []);
    assert.deepEqual(r.school2.list, []);
    assert.deepEqual(r.home.list, []);
    assert.equal(r.core.list.length, 1);
  });

  test("`speak` on /home reaches /home only", T, async () => {
    const { home, r } = await classroom();
    home.emit("speak", "hello home");
    await r.home.until(1);
    assert.deepEqual(r.home.list, [["hello home"]]);
    await sleep(QUIET_MS);
    assert.deepEqual(r.core.list, []);
    assert.deepEqual(r.school.list, []);
    assert.deepEqual(r.school2.list, []);
  });

  test("`speak` on /school reaches every /school socket, in a room or not", T, async () => {
    const { school, school2, r } = await classroom();
    await school.timeout(3000).emitWithAck("join", "codefellows");
    school2.emit("speak", "hello school", 2, ["a"]);
    await Promise.all([r.school.until(1), r.school2.until(1)]);
    assert.deepEqual(r.school.list, [["hello school", 2, ["a"]]]);
    assert.deepEqual(r.school2.list, [["hello school", 2, ["a"]]]);
    await sleep(QUIET_MS);
    assert.deepEqual(r.core.list, []);
    assert.deepEqual(r.home.list, []);
  });

  test("`room-speak` reaches the room only", T, async () => {
    const { school, school2, r } = await classroom();
    const school3 = client("/school", WS); // joins a different room
    await connected(school3);
    const r3 = record(school3, "message");
    assert.equal(await school.timeout(3000).emitWithAck("join", "codefellows"), "Joined codefellows");
    assert.equal(await school3.timeout(3000).emitWithAck("join", "other"), "Joined other");
    // Sent by a socket that is not in the room, so the spec's two readings (the room from the
    // namespace, or the room except the sender) agree.
    school2.emit("room-speak", "codefellows", "for the fellows");
    await r.school.until(1);
    assert.deepEqual(r.school.list, [["for the fellows"]]);
    // Barriers: acks on the non-members' own connections come after anything sent before.
    await school2.timeout(3000).emitWithAck("join", "barrier");
    await school3.timeout(3000).emitWithAck("join", "barrier");
    await sleep(QUIET_MS);
    assert.deepEqual(r.school2.list, [], "the sender is not in the room");
    assert.deepEqual(r3.list, [], "a member of another room");
    assert.deepEqual(r.core.list, []);
    assert.deepEqual(r.home.list, []);
  });

  test("a /school client in codefellows hears both /school and codefellows messages", T, async () => {
    const { school, school2, core, home, r } = await classroom();
    await school.timeout(3000).emitWithAck("join", "codefellows");
    school2.emit("speak", "to school");
    await r.school.until(1);
    school2.emit("room-speak", "codefellows", { lesson: 1 });
    await r.school.until(2);
    core.emit("speak", "to core");
    home.emit("speak", "to home");
    await Promise.all([r.core.until(1), r.home.until(1)]);
    await sleep(QUIET_MS);
    assert.deepEqual(r.school.list, [["to school"], [{ lesson: 1 }]]);
    assert.deepEqual(r.school2.list, [["to school"]]);
    assert.deepEqual(r.core.list, [["to core"]]);
    assert.deepEqual(r.home.list, [["to home"]]);
  });

  test("namespaces multiplexed on one connection stay isolated", T, async () => {
    const m = manager(WS);
    const core = m.socket("/");
    const school = m.socket("/school");
    const home = m.socket("/home");
    await Promise.all([core, school, home].map((s) => connected(s)));
    const rc = record(core, "message");
    const rs = record(school, "message");
    const rh = record(home, "message");
    home.emit("speak", "home only");
    await rh.until(1);
    school.emit("speak", "school only");
    await rs.until(1);
    // The ack travels on the same Engine.IO connection, after anything sent to core before.
    await school.timeout(3000).emitWithAck("join", "barrier");
    await sleep(100);
    assert.deepEqual(rc.list, []);
    assert.deepEqual(rs.list, [["school only"]]);
    assert.deepEqual(rh.list, [["home only"]]);
  });

  test("`speak` with binary arguments passes them through as binary", T, async () => {
    const { home, r } = await classroom();
    const bytes = Buffer.from([1, 2, 3, 255]);
    home.emit("speak", "with bytes", bytes, { inner: Buffer.from("in") });
    await r.home.until(1);
    const [args] = r.home.list;
    assert.equal(args.length, 3);
    assert.equal(args[0], "with bytes");
    assert.ok(isBinary(args[1]), `argument 1 should be binary, got ${JSON.stringify(args[1])}`);
    assert.deepEqual(asBuffer(args[1]), bytes);
    assert.ok(isBinary(args[2].inner), `nested binary should be binary, got ${JSON.stringify(args[2])}`);
    assert.deepEqual(asBuffer(args[2].inner), Buffer.from("in"));
  });

  test("`room-speak` with binary data delivers the binary", T, async () => {
    const { school, school2, r } = await classroom();
    await school.timeout(3000).emitWithAck("join", "codefellows");
    const bytes = Buffer.from("binary lesson");
    school2.emit("room-speak", "codefellows", bytes);
    await r.school.until(1);
    const [args] = r.school.list;
    assert.equal(args.length, 1);
    assert.ok(isBinary(args[0]), `data should be binary, got ${JSON.stringify(args[0])}`);
    assert.deepEqual(asBuffer(args[0]), bytes);
  });

  test("works over long-polling as well", T, async () => {
    const opts = { transports: ["polling"], upgrade: false };
    const { school, school2, home, r } = await classroom(opts);
    assert.equal(await school.timeout(3000).emitWithAck("join", "codefellows"), "Joined codefellows");
    school2.emit("room-speak", "codefellows", "polled");
    home.emit("speak", "polled home");
    await Promise.all([r.school.until(1), r.home.until(1)]);
    await sleep(QUIET_MS);
    assert.deepEqual(r.school.list, [["polled"]]);
    assert.deepEqual(r.home.list, [["polled home"]]);
    assert.deepEqual(r.school2.list, []);
    assert.deepEqual(r.core.list, []);
    assert.equal(school.io.engine.transport.name, "polling");
  });
});
