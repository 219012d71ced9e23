// Realtime through the official SDK: subscribe("*") and subscribe(id)
// receive create/update/delete as the subscriber's rules allow, options
// (expand, filter, fields) apply, unsubscribe stops delivery.
import { test } from "node:test";
import assert from "node:assert/strict";
import { client, signUp } from "./common.mjs";

/** Collects events into a queue that can be awaited one at a time. */
function inbox() {
  const items = [];
  const waiters = [];
  return {
    push(e) {
      const w = waiters.shift();
      if (w) w(e);
      else items.push(e);
    },
    next(timeoutMs = 10000) {
      if (items.length) return Promise.resolve(items.shift());
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error("no realtime event within 10s")), timeoutMs);
        waiters.push((e) => {
          clearTimeout(timer);
          resolve(e);
        });
      });
    },
    get pending() {
      return items.length;
    },
  };
}

test("subscribe('*'): create, update, delete; others' drafts stay private", async () => {
  const author = await signUp("rtauthor");
  const reader = client();
  const me = author.authStore.record.id;
  const box = inbox();
  const unsubscribe = await reader.collection("posts").subscribe("*", (e) => box.push(e));
  assert.ok(reader.realtime.isConnected);
  assert.ok(reader.realtime.clientId);

  await author.collection("posts").create({ author: me, title: "draft", published: false });
  const p = await author.collection("posts").create({ author: me, title: "hello", published: true });
  let e = await box.next();
  assert.equal(e.action, "create");
  assert.equal(e.record.id, p.id);
  assert.equal(e.record.title, "hello");
  assert.equal(e.record.collectionName, "posts");

  await author.collection("posts").update(p.id, { title: "hello again" });
  e = await box.next();
  assert.equal(e.action, "update");
  assert.equal(e.record.title, "hello again");

  await author.collection("posts").delete(p.id);
  e = await box.next();
  assert.equal(e.action, "delete");
  assert.equal(e.record.id, p.id);

  await unsubscribe();
  assert.equal(reader.realtime.isConnected, false);
  assert.equal(box.pending, 0, "the draft was delivered to someone who may not read it");
});

test("subscribe(id) and unsubscribe(id)", async () => {
  const author = await signUp("rtone");
  const me = author.authStore.record.id;
  const a = await author.collection("posts").create({ author: me, title: "a", published: true });
  const b = await author.collection("posts").create({ author: me, title: "b", published: true });
  const reader = client();
  const onA = inbox();
  const onAll = inbox();
  await reader.collection("posts").subscribe(a.id, (e) => onA.push(e));
  await reader.collection("posts").subscribe("*", (e) => onAll.push(e));

  await author.collection("posts").update(b.id, { title: "b2" });
  await author.collection("posts").update(a.id, { title: "a2" });
  let e = await onA.next();
  assert.equal(e.action, "update");
  assert.equal(e.record.id, a.id);
  assert.equal(e.record.title, "a2");
  assert.equal((await onAll.next()).record.title, "b2");
  assert.equal((await onAll.next()).record.title, "a2");

  // Unsubscribing from the record keeps the collection subscription.
  await reader.collection("posts").unsubscribe(a.id);
  await author.collection("posts").update(a.id, { title: "a3" });
  assert.equal((await onAll.next()).record.title, "a3");
  assert.equal(onA.pending, 0);
  await reader.collection("posts").unsubscribe();
  assert.equal(reader.realtime.isConnected, false);
});

test("subscription options: expand, filter, fields", async () => {
  const author = await signUp("rtopts");
  const me = author.authStore.record.id;
  const reader = client();
  const box = inbox();
  const tag = `opt${Date.now()}`;
  await reader.collection("posts").subscribe("*", (e) => box.push(e), {
    expand: "author",
    filter: `title ~ "${tag}"`,
    fields: "id,title,expand.author.name",
  });
  await author.collection("posts").create({ author: me, title: "unrelated", published: true });
  const p = await author.collection("posts").create({ author: me, title: `${tag} yes`, published: true });
  const e = await box.next();
  assert.equal(e.record.id, p.id);
  assert.deepEqual(Object.keys(e.record).sort(), ["expand", "id", "title"]);
  assert.equal(e.record.expand.author.name, "rtopts");
  await reader.realtime.unsubscribe();
});

test("a signed-in subscriber sees its own drafts", async () => {
  const author = await signUp("rtself");
  const me = author.authStore.record.id;
  const box = inbox();
  await author.collection("posts").subscribe("*", (e) => box.push(e));
  const d = await author.collection("posts").create({ author: me, title: "my draft", published: false });
  const e = await box.next();
  assert.equal(e.record.id, d.id);
  await author.realtime.unsubscribe();
});
