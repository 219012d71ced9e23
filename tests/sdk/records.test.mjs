// Record calls an application makes with the official SDK: CRUD, list
// options, expand, projection, files and error shapes.
import { test } from "node:test";
import assert from "node:assert/strict";
import { ClientResponseError } from "pocketbase";
import { client, signUp, url } from "./common.mjs";

test("create, getOne, update, delete", async () => {
  const pb = await signUp("crud");
  const me = pb.authStore.record.id;
  const posts = pb.collection("posts");
  const p = await posts.create({ author: me, title: "first", views: 3, published: false, meta: { tags: ["a", "b"] } });
  assert.equal(p.collectionName, "posts");
  assert.equal(p.title, "first");
  assert.equal(p.views, 3);
  assert.equal(p.published, false);
  assert.deepEqual(p.meta, { tags: ["a", "b"] });
  assert.ok(p.created && p.updated);

  const got = await posts.getOne(p.id, { expand: "author" });
  assert.equal(got.expand.author.id, me);

  const upd = await posts.update(p.id, { title: "first!", "views+": 2 });
  assert.equal(upd.title, "first!");
  assert.equal(upd.views, 5);

  // Anonymous clients cannot see an unpublished post: 404, like PocketBase.
  await assert.rejects(client().collection("posts").getOne(p.id), (err) => {
    assert.ok(err instanceof ClientResponseError);
    assert.equal(err.status, 404);
    assert.deepEqual(err.response.data, {});
    return true;
  });

  assert.equal(await posts.delete(p.id), true);
  await assert.rejects(posts.getOne(p.id), { status: 404 });
});

test("getList, getFullList, getFirstListItem with filter, sort, expand, fields", async () => {
  const pb = await signUp("list");
  const me = pb.authStore.record.id;
  const posts = pb.collection("posts");
  const tag = `t${Date.now()}`;
  for (let i = 1; i <= 5; i++) {
    await posts.create({ author: me, title: `${tag} ${i}`, views: i * 10, published: i % 2 === 1 });
  }
  const page = await posts.getList(1, 2, { filter: pb.filter("title ~ {:tag}", { tag }), sort: "-views" });
  assert.equal(page.page, 1);
  assert.equal(page.perPage, 2);
  assert.equal(page.totalItems, 5);
  assert.equal(page.totalPages, 3);
  assert.deepEqual(page.items.map((r) => r.views), [50, 40]);

  const all = await posts.getFullList({ filter: `title ~ "${tag}"`, sort: "views", batch: 2 });
  assert.deepEqual(all.map((r) => r.views), [10, 20, 30, 40, 50]);

  const first = await posts.getFirstListItem(`title = "${tag} 3"`, { expand: "author" });
  assert.equal(first.views, 30);
  assert.equal(first.expand.author.id, me);

  const slim = await posts.getList(1, 10, { filter: `title ~ "${tag}"`, fields: "id,title,expand.author.name", expand: "author" });
  for (const r of slim.items) {
    assert.deepEqual(Object.keys(r).sort(), ["expand", "id", "title"]);
    assert.deepEqual(Object.keys(r.expand.author), ["name"]);
  }

  // Others see only the published ones.
  const anon = await client().collection("posts").getFullList({ filter: `title ~ "${tag}"` });
  assert.equal(anon.length, 3);

  await assert.rejects(posts.getFirstListItem(`title = "${tag} nope"`), { status: 404 });
  await assert.rejects(posts.getList(1, 10, { filter: "title = " }), (err) => {
    assert.equal(err.status, 400);
    assert.equal(typeof err.response.message, "string");
    return true;
  });
});

test("validation and rule errors", async () => {
  const pb = await signUp("errs");
  const me = pb.authStore.record.id;
  await assert.rejects(pb.collection("posts").create({ author: me, title: "" }), (err) => {
    assert.equal(err.status, 400);
    assert.equal(err.response.status, 400);
    assert.ok(err.response.data.title?.code, JSON.stringify(err.response));
    return true;
  });
  // Anonymous create is refused by the create rule.
  await assert.rejects(client().collection("posts").create({ title: "x" }), (err) => {
    assert.ok([400, 403].includes(err.status), String(err.status));
    return true;
  });
  await assert.rejects(pb.collection("nosuch").getList(), { status: 404 });
});

test("files: create with File and Blob, getURL, thumbs, replace", async () => {
  const pb = await signUp("files");
  const me = pb.authStore.record.id;
  const png = Buffer.from(
    "iVBORw0KGgoAAAANSUhEUgAAAEAAAABACAIAAAAlC+aJAAAAP0lEQVR4nO3OMQ0AAAgDsPk3DRo4SBbSO3kPAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA4FMDALS/AQGTBXX0AAAAAElFTkSuQmCC",
    "base64",
  );
  const posts = pb.collection("posts");
  // Numbers and booleans travel as multipart text next to the file.
  const rec = await posts.create({ author: me, title: "with image", views: 7, published: true, image: new File([png], "pic.png", { type: "image/png" }) });
  assert.equal(rec.views, 7);
  assert.equal(rec.published, true);
  assert.match(rec.image, /^pic.*\.png$/);

  const fileURL = pb.files.getURL(rec, rec.image);
  assert.ok(fileURL.startsWith(url + "/api/files/"), fileURL);
  const res = await fetch(fileURL);
  assert.equal(res.status, 200);
  assert.deepEqual(Buffer.from(await res.arrayBuffer()), png);

  const thumb = await fetch(pb.files.getURL(rec, rec.image, { thumb: "20x20" }));
  assert.equal(thumb.status, 200);
  assert.match(thumb.headers.get("content-type"), /^image\//);

  const replaced = await posts.update(rec.id, { image: new Blob([png], { type: "image/png" }) });
  assert.ok(replaced.image && replaced.image !== rec.image);

  const fd = new FormData();
  fd.append("author", me);
  fd.append("title", "from FormData");
  fd.append("views", "12");
  fd.append("published", "true");
  fd.append("image", new File([png], "form.png", { type: "image/png" }));
  const viaForm = await posts.create(fd);
  assert.equal(viaForm.views, 12);
  assert.equal(viaForm.published, true);

  const cleared = await posts.update(rec.id, { image: null });
  assert.equal(cleared.image, "");
});

test("back-relation expand and an empty expand object", async () => {
  const pb = await signUp("back");
  const me = pb.authStore.record.id;
  const posts = pb.collection("posts");
  await posts.create({ author: me, title: "mine 1", published: true });
  await posts.create({ author: me, title: "mine 2", published: false });
  const self = await pb.collection("users").getOne(me, { expand: "posts_via_author" });
  assert.deepEqual(self.expand.posts_via_author.map((p) => p.title).sort(), ["mine 1", "mine 2"]);
  const other = await client().collection("users").getOne(me, { expand: "posts_via_author" });
  assert.deepEqual(other.expand.posts_via_author.map((p) => p.title), ["mine 1"]);
  // Nothing to expand: still an object, so `record.expand.x?.…` works.
  const lonely = await signUp("lonely");
  const none = await lonely.collection("users").getOne(lonely.authStore.record.id, { expand: "posts_via_author" });
  assert.deepEqual(none.expand, {});
});

test("createBatch: all or nothing", async () => {
  const pb = await signUp("batch");
  const me = pb.authStore.record.id;
  const batch = pb.createBatch();
  batch.collection("posts").create({ author: me, title: "batched 1", published: true });
  const png = Buffer.from(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==",
    "base64",
  );
  batch.collection("posts").create({ author: me, title: "batched 2", views: 4, image: new File([png], "b.png", { type: "image/png" }) });
  const res = await batch.send();
  assert.equal(res.length, 2);
  assert.equal(res[0].status, 200);
  assert.equal(res[1].body.views, 4);
  assert.match(res[1].body.image, /^b.*\.png$/);
  const img = await fetch(pb.files.getURL(res[1].body, res[1].body.image));
  assert.equal(img.status, 200);
  assert.deepEqual(Buffer.from(await img.arrayBuffer()), png);
  const p = res[0].body;

  const bad = pb.createBatch();
  bad.collection("posts").update(p.id, { title: "changed" });
  bad.collection("posts").create({ author: me, title: "" });
  await assert.rejects(bad.send(), (err) => {
    assert.equal(err.status, 400);
    assert.equal(err.response.data.requests["1"].code, "batch_request_failed");
    return true;
  });
  assert.equal((await pb.collection("posts").getOne(p.id)).title, "batched 1");

  const up = pb.createBatch();
  up.collection("posts").upsert({ id: p.id, title: "upserted" });
  up.collection("posts").delete(res[1].body.id);
  const r2 = await up.send();
  assert.equal(r2[0].body.title, "upserted");
  assert.equal(r2[1].status, 204);
});
