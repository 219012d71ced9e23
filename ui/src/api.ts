// The dashboard is a plain client of Plinth's public HTTP API.
//
// The superuser token lives in sessionStorage: it survives a reload of the
// tab, is not shared with other tabs, and is gone when the tab closes —
// shorter-lived than localStorage, and never sent automatically like a
// cookie (so no CSRF). The strict CSP (no inline or foreign scripts) is
// what keeps other code from reading it.

const KEY = 'plinth.superuser';

export interface FieldError { code: string; message: string }
export class ApiError extends Error {
  status: number;
  data: Record<string, FieldError>;
  body: any;
  constructor(status: number, message: string, data?: Record<string, FieldError>, body?: any) {
    super(message);
    this.status = status;
    this.data = data || {};
    this.body = body || {};
  }
}

export interface Session { token: string; email: string }

export function session(): Session | null {
  try {
    const raw = sessionStorage.getItem(KEY);
    return raw ? (JSON.parse(raw) as Session) : null;
  } catch {
    return null;
  }
}

export function setSession(s: Session | null) {
  if (s) sessionStorage.setItem(KEY, JSON.stringify(s));
  else sessionStorage.removeItem(KEY);
  listeners.forEach((l) => l());
}

const listeners = new Set<() => void>();
export function onSession(l: () => void) {
  listeners.add(l);
  return () => listeners.delete(l);
}

export async function api<T = any>(method: string, path: string, body?: unknown, auth = true): Promise<T> {
  const headers: Record<string, string> = {};
  const s = session();
  if (auth && s) headers['Authorization'] = 'Bearer ' + s.token;
  let payload: BodyInit | undefined;
  if (body instanceof FormData) payload = body;
  else if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    payload = JSON.stringify(body);
  }
  let res: Response;
  try {
    res = await fetch(path, { method, headers, body: payload });
  } catch {
    throw new ApiError(0, 'The server cannot be reached.');
  }
  const text = await res.text();
  let json: any = null;
  if (text) {
    try {
      json = JSON.parse(text);
    } catch {
      json = null;
    }
  }
  if (!res.ok) {
    if (res.status === 401 && auth && s) setSession(null);
    throw new ApiError(res.status, (json && json.message) || res.statusText, json && json.data, json);
  }
  return json as T;
}

// login signs a superuser in with a password. With MFA on for superusers
// the server answers 401 with an mfaId: the caller completes the login
// with a one-time code (requestCode, then loginWithCode).
export async function login(email: string, password: string) {
  const r = await api<{ token: string; record: { email: string } }>('POST', '/api/superusers/auth-with-password', { identity: email, password }, false);
  setSession({ token: r.token, email: r.record?.email || email });
}

export async function requestCode(email: string): Promise<string> {
  const r = await api<{ otpId: string }>('POST', '/api/collections/_superusers/request-otp', { email }, false);
  return r.otpId;
}

export async function loginWithCode(email: string, otpId: string, code: string, mfaId: string) {
  const r = await api<{ token: string; record: { email: string } }>('POST', '/api/collections/_superusers/auth-with-otp', { otpId, password: code, mfaId }, false);
  setSession({ token: r.token, email: r.record?.email || email });
}

// Schema types, as GET /api/collections returns them.
export interface Field {
  id?: string;
  name: string;
  type: string;
  required?: boolean;
  hidden?: boolean;
  system?: boolean;
  min?: number | null;
  max?: number | null;
  pattern?: string;
  onlyInt?: boolean;
  values?: string[];
  maxSelect?: number;
  maxSize?: number;
  mimeTypes?: string[];
  thumbs?: string[];
  protected?: boolean;
  collectionId?: string;
  cascadeDelete?: boolean;
  onCreate?: boolean;
  onUpdate?: boolean;
}
export interface Index { name: string; columns: string[]; unique: boolean }
export interface Collection {
  id?: string;
  name: string;
  type: 'base' | 'auth' | 'view';
  system?: boolean;
  fields: Field[];
  indexes: Index[];
  listRule: string | null;
  viewRule: string | null;
  createRule: string | null;
  updateRule: string | null;
  deleteRule: string | null;
  viewQuery?: string;
  authOptions?: any;
}
export interface Page<T> { page: number; perPage: number; totalItems: number; totalPages: number; items: T[] }

export const FIELD_TYPES = ['text', 'number', 'bool', 'email', 'url', 'date', 'select', 'json', 'relation', 'file', 'autodate', 'password'];
export const RULES = ['listRule', 'viewRule', 'createRule', 'updateRule', 'deleteRule'] as const;

export async function collections(): Promise<Collection[]> {
  const all: Collection[] = [];
  for (let page = 1; page < 100; page++) {
    const r = await api<Page<Collection>>('GET', `/api/collections?page=${page}&perPage=200&skipTotal=1`);
    all.push(...r.items);
    if (r.items.length < 200) break;
  }
  return all;
}

// Decodes the (unverified) claims of a token, to learn which collection
// an emailed link belongs to; the server verifies the token itself.
export function tokenClaims(token: string): Record<string, any> | null {
  try {
    const part = token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
    return JSON.parse(atob(part + '='.repeat((4 - (part.length % 4)) % 4)));
  } catch {
    return null;
  }
}

export function enc(s: string) {
  return encodeURIComponent(s);
}
