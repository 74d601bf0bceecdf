// @example namespaces
//
// Dynamic namespaces (examples/namespaces.rs) with the official client: a parent decided by a
// regex, one decided later from the client's auth, a parent's emit reaching every child (and
// its `to(room)`), `new_namespace`, and `cleanupEmptyChildNamespaces` removing a child when
// its last socket leaves.

import { describe, test, afterEach, after } from "node:test";
import assert from "node:assert/strict";
import { client, closeAll, connected, connectError, record, sleep, waitFor } from "./lib.mjs";

const T = { timeout: 15000 };
afterEach(() => closeAll());
after(() => closeAll());

const TRANSPORTS = [["websocket"], ["polling"]];

for (const transports of TRANSPORTS) {
  const tag = transports.join("-");
  describe(`over ${tag}`, () => {
    test("a parent deciding later from the auth: yes creates the child, no is 'Invalid namespace' and leaves nothing", T, async () => {
      const root = client("/", { transports });
      await connected(root);
      const team = `t${tag.replace(/\W/g, "")}`;
      const yes = client(`/team-${team}`, { transports, auth: { team } });
      const welcome = record(yes, "welcome");
      await connected(yes);
      assert.deepEqual((await welcome.until(1))[0], [`/team-${team}`]);

      const no = client(`/team-${team}x`, { transports, auth: { team } });
      const err = await connectError(no);
      assert.equal(err.message, "Invalid namespace");
      assert.equal(err.data, undefined, "the reference's packet: a message alone");
      const nobody = client("/nobody", { transports });
      assert.equal((await connectError(nobody)).message, "Invalid namespace");

      const names = await root.emitWithAck("namespaces");
      assert.ok(names.includes(`/team-${team}`), JSON.stringify(names));
      assert.ok(!names.includes(`/team-${team}x`), "a refused name leaves no namespace");
      assert.ok(!names.includes("/nobody"));
      const created = await root.emitWithAck("created");
      assert.ok(created.includes(`/team-${team}`));
      assert.ok(!created.includes(`/team-${team}x`), "new_namespace only for accepted children");
    });

    test("a parent's emit reaches every child, and its to(room) the room's members in each", T, async () => {
      const root = client("/", { transports });
      const a = client("/dyn-1", { transports });
      const b = client("/dyn-2", { transports });
      const hellos = [record(a, "hello"), record(b, "hello")];
      await Promise.all([connected(root), connected(a), connected(b)]);
      assert.deepEqual((await hellos[0].until(1))[0], ["/dyn-1"]);
      assert.deepEqual((await hellos[1].until(1))[0], ["/dyn-2"]);
      await b.emitWithAck("join", "red");
      const got = [a, b, root].map((s) => record(s, "all"));
      const red = [a, b, root].map((s) => record(s, "red-only"));
      const t = `p-${tag}`;
      await root.emitWithAck("parent-emit", t);
      assert.deepEqual(await got[0].until(1), [[t]]);
      assert.deepEqual(await got[1].until(1), [[t]]);
      assert.deepEqual(await red[1].until(1), [[t]]);
      await sleep(200);
      assert.equal(got[0].list.length, 1, "once");
      assert.equal(got[2].list.length, 0, "the main namespace is no child");
      assert.equal(red[0].list.length, 0, "not in red");
      assert.equal(red[2].list.length, 0);
    });

    test("an empty child goes (cleanupEmptyChildNamespaces) and comes back new", T, async () => {
      const root = client("/", { transports });
      await connected(root);
      const name = `/dyn-9${transports.length}${tag.length}`;
      const first = client(name, { transports });
      await connected(first);
      assert.ok((await root.emitWithAck("namespaces")).includes(name));
      first.disconnect();
      await waitFor(async () => !(await root.emitWithAck("namespaces")).includes(name), 5000, `${name} removed`);
      const again = client(name, { transports });
      const hello = record(again, "hello");
      await connected(again);
      assert.deepEqual((await hello.until(1))[0], [name]);
      const created = await root.emitWithAck("created");
      assert.equal(created.filter((n) => n === name).length, 2, "announced at each creation");
    });
  });
}
