// Auth calls an application makes with the official SDK.
import { test } from "node:test";
import assert from "node:assert/strict";
import { ClientResponseError } from "pocketbase";
import { client, signUp, mailedToken } from "./common.mjs";

test("sign up, authWithPassword, authRefresh, clear", async () => {
  const pb = await signUp("ana");
  assert.ok(pb.authStore.isValid);
  assert.equal(pb.authStore.record.collectionName, "users");
  assert.match(pb.authStore.record.email, /^ana.*@example\.com$/);
  const before = pb.authStore.token;
  const refreshed = await pb.collection("users").authRefresh();
  assert.ok(refreshed.token);
  assert.equal(refreshed.record.id, pb.authStore.record.id);
  assert.ok(pb.authStore.token);
  assert.notEqual(typeof before, "undefined");
  pb.authStore.clear();
  assert.equal(pb.authStore.isValid, false);
});

test("wrong password is a ClientResponseError 400", async () => {
  const pb = await signUp("bad");
  const email = pb.authStore.record.email;
  const anon = client();
  await assert.rejects(anon.collection("users").authWithPassword(email, "wrong-password"), (err) => {
    assert.ok(err instanceof ClientResponseError);
    assert.equal(err.status, 400);
    assert.equal(typeof err.response.message, "string");
    assert.equal(typeof err.response.data, "object");
    return true;
  });
});

test("sign-up validation errors carry per-field data", async () => {
  const pb = client();
  await assert.rejects(pb.collection("users").create({ email: "not-an-email", password: "x", passwordConfirm: "y" }), (err) => {
    assert.equal(err.status, 400);
    assert.ok(err.response.data.email?.code, JSON.stringify(err.response));
    assert.equal(typeof err.response.data.email.message, "string");
    return true;
  });
});

test("requestVerification and confirmVerification", async () => {
  const pb = await signUp("verify");
  const { id, email } = pb.authStore.record;
  assert.equal(await pb.collection("users").requestVerification(email), true);
  const token = await mailedToken(email);
  assert.equal(await client().collection("users").confirmVerification(token), true);
  const rec = await pb.collection("users").getOne(id);
  assert.equal(rec.verified, true);
  // Unknown addresses answer the same (no enumeration).
  assert.equal(await client().collection("users").requestVerification("nobody@example.com"), true);
});

test("requestPasswordReset and confirmPasswordReset", async () => {
  const pb = await signUp("reset");
  const { email } = pb.authStore.record;
  assert.equal(await client().collection("users").requestPasswordReset(email), true);
  const token = await mailedToken(email);
  assert.equal(await client().collection("users").confirmPasswordReset(token, "brand-new-pass", "brand-new-pass"), true);
  const again = client();
  const auth = await again.collection("users").authWithPassword(email, "brand-new-pass");
  assert.equal(auth.record.email, email);
  await assert.rejects(client().collection("users").authWithPassword(email, "password123"), { status: 400 });
});

test("requestEmailChange and confirmEmailChange", async () => {
  const pb = await signUp("move");
  const newEmail = `moved${Date.now()}@example.com`;
  assert.equal(await pb.collection("users").requestEmailChange(newEmail), true);
  const token = await mailedToken(newEmail);
  assert.equal(await client().collection("users").confirmEmailChange(token, "password123"), true);
  const auth = await client().collection("users").authWithPassword(newEmail, "password123");
  assert.equal(auth.record.email, newEmail);
});

test("listAuthMethods", async () => {
  const m = await client().collection("users").listAuthMethods();
  assert.equal(m.password.enabled, true);
  assert.ok(Array.isArray(m.password.identityFields) && m.password.identityFields.includes("email"));
  assert.ok(Array.isArray(m.oauth2.providers));
  assert.equal(typeof m.otp.enabled, "boolean");
  assert.equal(typeof m.mfa.enabled, "boolean");
});

test("health", async () => {
  const h = await client().health.check();
  assert.equal(h.code, 200);
  assert.equal(typeof h.message, "string");
});

test("superuser sign-in through _superusers", async () => {
  const pb = client();
  const auth = await pb.collection("_superusers").authWithPassword(process.env.PLINTH_SU_EMAIL, process.env.PLINTH_SU_PASSWORD);
  assert.ok(auth.token);
  assert.ok(pb.authStore.isSuperuser);
  const cols = await pb.collections.getFullList();
  assert.ok(cols.some((c) => c.name === "posts"));
});
