// Shared setup for the SDK suite: where the Plinth server under test is
// (set by tests/sdk_test.go), fresh SDK clients and users, and the mails
// the server sent (read from the Go test's SMTP sink).
import PocketBase from "pocketbase";
import { EventSource } from "eventsource";

// Node 20 has no EventSource; the SDK's realtime service needs one.
globalThis.EventSource ??= EventSource;

export const url = process.env.PLINTH_URL;
if (!url) {
  throw new Error("PLINTH_URL is not set: run this suite through `go test ./tests -run TestPocketBaseSDK`");
}

/** A fresh client with its own auth store; no request auto-cancellation. */
export function client() {
  const pb = new PocketBase(url);
  pb.autoCancellation(false);
  return pb;
}

/** A client signed in as the superuser. */
export async function superuser() {
  const pb = client();
  await pb.collection("_superusers").authWithPassword(process.env.PLINTH_SU_EMAIL, process.env.PLINTH_SU_PASSWORD);
  return pb;
}

let seq = 0;
/** Signs a new user up through the SDK and signs in; returns the client. */
export async function signUp(prefix = "user") {
  const email = `${prefix}${Date.now()}${seq++}@example.com`;
  const pb = client();
  await pb.collection("users").create({ email, password: "password123", passwordConfirm: "password123", name: prefix });
  await pb.collection("users").authWithPassword(email, "password123");
  return pb;
}

/** The token in the next mail to `to` (waits up to 10 s). */
export async function mailedToken(to) {
  const res = await fetch(`${process.env.PLINTH_MAIL_URL}/?to=${encodeURIComponent(to)}`);
  if (!res.ok) throw new Error(`no mail to ${to}`);
  const text = await res.text();
  // Links are {appURL}/_/#/auth/<action>/<token> (older shape: ?token=).
  const m = text.match(/(?:token=|\/auth\/[a-z-]+\/)([A-Za-z0-9_\-.%]+)/);
  if (!m) throw new Error(`no token in mail: ${text}`);
  return decodeURIComponent(m[1]);
}

/** Resolves with the first value for which `pick` returns non-undefined. */
export function waitFor(register, timeoutMs = 10000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("timed out waiting for an event")), timeoutMs);
    register((v) => {
      clearTimeout(timer);
      resolve(v);
    });
  });
}
