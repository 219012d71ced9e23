import { useEffect, useRef, useState } from 'preact/hooks';
import { api, ApiError, Collection, enc, Field, Page, session } from './api';
import { Button, Check, Drawer, Errors, go, Modal } from './ui';

type Rec = Record<string, any>;

const PER_PAGE = 30;

// Columns: every field but secrets, id first.
function columns(c: Collection): Field[] {
  const skip = new Set(['password', 'tokenKey']);
  return c.fields.filter((f) => !skip.has(f.name) && f.type !== 'password');
}

function fileURL(c: Collection, id: string, name: string, thumb?: string) {
  return `/api/files/${enc(c.id!)}/${enc(id)}/${enc(name)}` + (thumb ? '?thumb=' + enc(thumb) : '');
}

const isImage = (n: string) => /\.(png|jpe?g|gif|webp)$/i.test(n);

function Cell({ c, f, r }: { c: Collection; f: Field; r: Rec }) {
  const v = r[f.name];
  if (v === null || v === undefined || v === '' || (Array.isArray(v) && v.length === 0)) return <span class="muted">—</span>;
  if (f.type === 'bool') return <span>{v ? 'true' : 'false'}</span>;
  if (f.type === 'file') {
    const names: string[] = Array.isArray(v) ? v : [v];
    return (
      <span class="files">
        {names.map((n) =>
          isImage(n) && !f.protected ? <img key={n} class="thumb" src={fileURL(c, r.id, n, f.thumbs?.[0])} alt={n} loading="lazy" /> : <span key={n} class="tag">{n}</span>,
        )}
      </span>
    );
  }
  if (f.type === 'json') return <code class="clip">{JSON.stringify(v)}</code>;
  if (Array.isArray(v)) return <span>{v.map((x) => <span class="tag" key={String(x)}>{String(x)}</span>)}</span>;
  return <span class="clip">{String(v)}</span>;
}

export function Records({ collection: c, all }: { collection: Collection; all: Collection[] }) {
  const [page, setPage] = useState(1);
  const [sort, setSort] = useState('');
  const [filterText, setFilterText] = useState('');
  const [filter, setFilter] = useState('');
  const [data, setData] = useState<Page<Rec> | null>(null);
  const [err, setErr] = useState<ApiError | null>(null);
  const [filterErr, setFilterErr] = useState<string>('');
  const [selected, setSelected] = useState<Set<string>>(new Set());
  const [editing, setEditing] = useState<Rec | null>(null);
  const [confirmBulk, setConfirmBulk] = useState(false);
  const [live, setLive] = useState<'off' | 'on'>('off');
  const [flash, setFlash] = useState<Set<string>>(new Set());
  const hiddenKey = 'plinth.hiddenColumns.' + c.id;
  const [hiddenCols, setHiddenCols] = useState<string[]>(() => {
    try {
      return JSON.parse(localStorage.getItem(hiddenKey) || '[]');
    } catch {
      return [];
    }
  });
  const toggleCol = (name: string) => {
    const next = hiddenCols.includes(name) ? hiddenCols.filter((x) => x !== name) : [...hiddenCols, name];
    setHiddenCols(next);
    localStorage.setItem(hiddenKey, JSON.stringify(next)); // column names only, no data
  };
  const allCols = columns(c);
  const cols = allCols.filter((f) => !hiddenCols.includes(f.name));
  const readonly = c.type === 'view';

  const load = async () => {
    const q = new URLSearchParams({ page: String(page), perPage: String(PER_PAGE) });
    if (sort) q.set('sort', sort);
    if (filter) q.set('filter', filter);
    try {
      setData(await api<Page<Rec>>('GET', `/api/collections/${enc(c.name)}/records?` + q));
      setErr(null);
      setFilterErr('');
    } catch (x) {
      const e = x as ApiError;
      if (filter && e.status === 400) setFilterErr(e.data.filter?.message || e.message);
      else setErr(e);
    }
  };
  const loadRef = useRef(load);
  loadRef.current = load;
  useEffect(() => {
    load();
  }, [page, sort, filter, c.id]);

  // Realtime: the records table follows changes made anywhere (the API,
  // another tab, another node) through Plinth's own SSE endpoint.
  useEffect(() => {
    let closed = false;
    const es = new EventSource('/api/realtime');
    let timer: any;
    es.addEventListener('plinth_connect', async (ev) => {
      const { clientId } = JSON.parse((ev as MessageEvent).data);
      try {
        await fetch('/api/realtime', {
          method: 'POST',
          headers: { 'Content-Type': 'application/json', Authorization: 'Bearer ' + (session()?.token || '') },
          body: JSON.stringify({ clientId, subscriptions: [c.name] }),
        });
        if (!closed) setLive('on');
      } catch {
        setLive('off');
      }
    });
    es.addEventListener(c.name, (ev) => {
      try {
        const msg = JSON.parse((ev as MessageEvent).data);
        if (msg.record?.id) setFlash((s) => new Set(s).add(msg.record.id));
      } catch {
        /* ignore */
      }
      clearTimeout(timer);
      timer = setTimeout(() => loadRef.current(), 150);
    });
    es.onerror = () => setLive('off');
    return () => {
      closed = true;
      clearTimeout(timer);
      es.close();
    };
  }, [c.id]);

  const toggleSort = (name: string) => {
    setSort(sort === name ? '-' + name : sort === '-' + name ? '' : name);
    setPage(1);
  };
  const items = data?.items || [];
  const allSelected = items.length > 0 && items.every((r) => selected.has(r.id));
  const bulkDelete = async () => {
    const ids = [...selected];
    const failed: string[] = [];
    for (const id of ids) {
      try {
        await api('DELETE', `/api/collections/${enc(c.name)}/records/${enc(id)}`);
      } catch {
        failed.push(id);
      }
    }
    setSelected(new Set(failed));
    setConfirmBulk(false);
    if (failed.length) setErr(new ApiError(400, `${failed.length} record(s) could not be deleted.`));
    load();
  };

  return (
    <section class="records">
      <header class="pagehead">
        <h2>
          {c.name} <span class="kind">{c.type}</span>
        </h2>
        <div class="actions">
          <span class={'live ' + live} title="Realtime updates">{live === 'on' ? '● live' : '○ offline'}</span>
          {!c.system && <Button onClick={() => go('collections/' + enc(c.name) + '/edit')}>Edit collection</Button>}
          {!readonly && <Button primary onClick={() => setEditing({})}>+ New record</Button>}
        </div>
      </header>
      <form
        class={'filterbar' + (filterErr ? ' invalid' : '')}
        onSubmit={(e) => {
          e.preventDefault();
          setPage(1);
          setFilter(filterText.trim());
        }}
      >
        <input name="filter" aria-label="Filter" placeholder={'Filter, e.g. ' + (cols.find((f) => f.type === 'text')?.name || 'id') + ' ~ "abc"'} value={filterText} onInput={(e) => setFilterText((e.target as HTMLInputElement).value)} spellcheck={false} />
        <Button type="submit">Apply</Button>
        {filter && <Button onClick={() => { setFilterText(''); setFilter(''); }}>Clear</Button>}
        <details class="colchooser">
          <summary class="btn">Columns</summary>
          <div class="menu">
            {allCols.map((f) => (
              <Check key={f.name} label={f.name} name={'col-' + f.name} checked={!hiddenCols.includes(f.name)} onChange={() => toggleCol(f.name)} />
            ))}
          </div>
        </details>
        {filterErr && <small class="error" role="alert">{filterErr}</small>}
      </form>
      <Errors err={err} />
      {selected.size > 0 && !readonly && (
        <div class="bulk">
          {selected.size} selected <Button danger small onClick={() => setConfirmBulk(true)}>Delete selected</Button>
          <Button small onClick={() => setSelected(new Set())}>Clear selection</Button>
        </div>
      )}
      <div class="tablewrap">
        <table>
          <thead>
            <tr>
              {!readonly && (
                <th class="sel">
                  <input type="checkbox" aria-label="Select all" checked={allSelected} onChange={() => setSelected(allSelected ? new Set() : new Set(items.map((r) => r.id)))} />
                </th>
              )}
              {cols.map((f) => (
                <th key={f.name} aria-sort={sort === f.name ? 'ascending' : sort === '-' + f.name ? 'descending' : undefined}>
                  <button type="button" class="sort" onClick={() => toggleSort(f.name)} data-col={f.name}>
                    {f.name} {sort === f.name ? '▲' : sort === '-' + f.name ? '▼' : ''}
                  </button>
                </th>
              ))}
            </tr>
          </thead>
          <tbody>
            {items.map((r) => (
              <tr key={r.id} class={flash.has(r.id) ? 'flash' : ''} data-id={r.id} tabIndex={0} onKeyDown={(e) => e.key === 'Enter' && !readonly && setEditing(r)}>
                {!readonly && (
                  <td class="sel">
                    <input type="checkbox" aria-label={'Select ' + r.id} checked={selected.has(r.id)} onChange={() => { const s = new Set(selected); s.has(r.id) ? s.delete(r.id) : s.add(r.id); setSelected(s); }} />
                  </td>
                )}
                {cols.map((f) => (
                  <td key={f.name} onClick={() => !readonly && setEditing(r)} data-col={f.name}>
                    <Cell c={c} f={f} r={r} />
                  </td>
                ))}
              </tr>
            ))}
            {data && items.length === 0 && (
              <tr>
                <td colSpan={cols.length + 1} class="muted empty">No records{filter ? ' match the filter' : ''}.</td>
              </tr>
            )}
          </tbody>
        </table>
      </div>
      {data && (
        <footer class="pager">
          <span class="muted">
            {data.totalItems} record{data.totalItems === 1 ? '' : 's'} · page {data.page} of {Math.max(data.totalPages, 1)}
          </span>
          <Button small disabled={page <= 1} onClick={() => setPage(page - 1)}>‹ Prev</Button>
          <Button small disabled={page >= data.totalPages} onClick={() => setPage(page + 1)}>Next ›</Button>
        </footer>
      )}
      {editing && <RecordDrawer c={c} all={all} rec={editing} onClose={() => setEditing(null)} onSaved={() => { setEditing(null); load(); }} />}
      {confirmBulk && (
        <Modal title={`Delete ${selected.size} record(s)?`} onClose={() => setConfirmBulk(false)}>
          <p>
            This permanently deletes {selected.size} record{selected.size === 1 ? '' : 's'} of <strong>{c.name}</strong> and their files. Relations with cascade delete remove dependent records too.
          </p>
          <div class="actions end">
            <Button onClick={() => setConfirmBulk(false)}>Cancel</Button>
            <Button danger onClick={bulkDelete}>Delete</Button>
          </div>
        </Modal>
      )}
    </section>
  );
}

// toLocalInput renders a stored date (UTC) for <input type=datetime-local>.
function toLocalInput(v: string) {
  if (!v) return '';
  const d = new Date(v.replace(' ', 'T'));
  if (isNaN(+d)) return '';
  const p = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}`;
}

function RelationPicker({ f, value, onChange, all }: { f: Field; value: string[]; onChange: (v: string[]) => void; all: Collection[] }) {
  const target = all.find((x) => x.id === f.collectionId || x.name === f.collectionId);
  const [q, setQ] = useState('');
  const [found, setFound] = useState<Rec[]>([]);
  const [open, setOpen] = useState(false);
  const multi = (f.maxSelect || 1) > 1;
  const label = (r: Rec) => {
    const t = target?.fields.find((x) => ['text', 'email'].includes(x.type) && !x.hidden && x.name !== 'tokenKey' && x.name !== 'id');
    return t && r[t.name] ? `${r[t.name]} (${r.id})` : r.id;
  };
  useEffect(() => {
    if (!open || !target) return;
    const t = setTimeout(async () => {
      const text = target.fields.filter((x) => ['text', 'email'].includes(x.type) && !x.hidden && x.name !== 'tokenKey' && x.name !== 'id').map((x) => x.name);
      const esc = q.replace(/\\/g, '\\\\').replace(/"/g, '\\"');
      const filter = q ? ['id ~ "' + esc + '"', ...text.map((n) => n + ' ~ "' + esc + '"')].join(' || ') : '';
      try {
        const r = await api<Page<Rec>>('GET', `/api/collections/${enc(target.name)}/records?perPage=10` + (filter ? '&filter=' + enc(filter) : ''));
        setFound(r.items);
      } catch {
        setFound([]);
      }
    }, 200);
    return () => clearTimeout(t);
  }, [q, open]);
  if (!target) return <p class="error">The target collection is gone.</p>;
  return (
    <div class="relation">
      <div class="chips">
        {value.map((id) => (
          <span class="tag" key={id}>
            {id} <button type="button" class="x" aria-label={'Remove ' + id} onClick={() => onChange(value.filter((x) => x !== id))}>✕</button>
          </span>
        ))}
      </div>
      <input name={f.name + '-search'} placeholder={'Search ' + target.name + '…'} value={q} onFocus={() => setOpen(true)} onInput={(e) => { setQ((e.target as HTMLInputElement).value); setOpen(true); }} />
      {open && (
        <ul class="picklist" role="listbox">
          {found.map((r) => (
            <li key={r.id}>
              <button type="button" role="option" onClick={() => { onChange(multi ? [...value.filter((x) => x !== r.id), r.id] : [r.id]); if (!multi) setOpen(false); }}>
                {label(r)}
              </button>
            </li>
          ))}
          {found.length === 0 && <li class="muted">No matches</li>}
        </ul>
      )}
    </div>
  );
}

// AuthActions: what a superuser does for an account through the public
// auth API — send the verification or password-reset email, impersonate.
function AuthActions({ c, rec }: { c: Collection; rec: Rec }) {
  const [msg, setMsg] = useState<{ ok: boolean; text: string } | null>(null);
  const [imp, setImp] = useState('');
  const run = async (what: string, fn: () => Promise<any>) => {
    try {
      await fn();
      setMsg({ ok: true, text: what });
    } catch (x) {
      setMsg({ ok: false, text: (x as ApiError).message });
    }
  };
  const email = rec.email as string;
  // Sessions are listed and revoked as the account itself, with a
  // short-lived impersonation token kept only in this component.
  const [sessions, setSessions] = useState<{ id: string; created: string; userAgent: string; ip: string }[] | null>(null);
  const asUser = async () => (await api<{ token: string }>('POST', `/api/collections/${enc(c.name)}/impersonate/${enc(rec.id)}`, {})).token;
  const userCall = async (method: string, path: string, token: string) => {
    const res = await fetch(`/api/collections/${enc(c.name)}/${path}`, { method, headers: { Authorization: 'Bearer ' + token } });
    const text = await res.text();
    const json = text ? JSON.parse(text) : null;
    if (!res.ok) throw new ApiError(res.status, json?.message || res.statusText, json?.data);
    return json;
  };
  const loadSessions = () => run('', async () => setSessions((await userCall('GET', 'sessions', await asUser())).items));
  const revoke = (sid: string) => run('Session ended.', async () => {
    const tok = await asUser();
    await userCall('DELETE', 'sessions/' + enc(sid), tok);
    setSessions((await userCall('GET', 'sessions', tok)).items);
  });
  return (
    <fieldset class="authactions">
      <legend>Account</legend>
      <div class="row wrap">
        {!rec.verified && <Button small onClick={() => run('Verification email queued for ' + email + '.', () => api('POST', `/api/collections/${enc(c.name)}/request-verification`, { email }))}>Send verification email</Button>}
        <Button small onClick={() => run('Password reset email queued for ' + email + '.', () => api('POST', `/api/collections/${enc(c.name)}/request-password-reset`, { email }))}>Send password reset</Button>
        <Button small onClick={() => run('Impersonation token issued (short-lived, logged).', async () => setImp(await asUser()))}>Impersonate</Button>
        <Button small onClick={loadSessions}>Sessions</Button>
      </div>
      {msg && msg.text && <p class={msg.ok ? 'ok' : 'error'} role="status">{msg.text}</p>}
      {sessions && (
        <table class="sessions">
          <tbody>
            {sessions.map((x) => (
              <tr key={x.id} data-session={x.id}>
                <td>{x.created}</td>
                <td class="clip">{x.userAgent || '—'}</td>
                <td>{x.ip || '—'}</td>
                <td>
                  <Button small danger onClick={() => revoke(x.id)}>Revoke</Button>
                </td>
              </tr>
            ))}
            {sessions.length === 0 && (
              <tr>
                <td class="muted">No active sessions.</td>
              </tr>
            )}
          </tbody>
        </table>
      )}
      {imp && (
        <div class="row">
          <input readOnly aria-label="Impersonation token" value={imp} />
          <Button small onClick={() => navigator.clipboard?.writeText(imp)}>Copy</Button>
        </div>
      )}
    </fieldset>
  );
}

function RecordDrawer({ c, all, rec, onClose, onSaved }: { c: Collection; all: Collection[]; rec: Rec; onClose: () => void; onSaved: () => void }) {
  const creating = !rec.id;
  const [v, setV] = useState<Rec>(() => ({ ...rec }));
  const [files, setFiles] = useState<Record<string, File[]>>({});
  const [removed, setRemoved] = useState<Record<string, string[]>>({});
  const [jsonText, setJsonText] = useState<Record<string, string>>(() => Object.fromEntries(c.fields.filter((f) => f.type === 'json').map((f) => [f.name, rec[f.name] === undefined || rec[f.name] === null ? '' : JSON.stringify(rec[f.name], null, 2)])));
  const [err, setErr] = useState<ApiError | null>(null);
  const [confirmDel, setConfirmDel] = useState(false);
  const [busy, setBusy] = useState(false);
  const set = (k: string, x: any) => setV((o) => ({ ...o, [k]: x }));
  const editable = c.fields.filter((f) => f.type !== 'autodate' && f.name !== 'tokenKey' && f.name !== 'id');

  const save = async (e: Event) => {
    e.preventDefault();
    const body: Rec = {};
    const jsonErrs: Record<string, { code: string; message: string }> = {};
    for (const f of editable) {
      if (f.type === 'file') continue;
      if (f.type === 'password') {
        if (v.password) {
          body.password = v.password;
          body.passwordConfirm = v.passwordConfirm ?? v.password;
        }
        continue;
      }
      if (f.type === 'json') {
        const t = jsonText[f.name]?.trim();
        if (!t) body[f.name] = null;
        else
          try {
            body[f.name] = JSON.parse(t);
          } catch (x) {
            jsonErrs[f.name] = { code: 'invalid_json', message: 'Invalid JSON: ' + (x as Error).message };
          }
        continue;
      }
      if (!creating && JSON.stringify(v[f.name]) === JSON.stringify(rec[f.name])) continue;
      if (v[f.name] !== undefined) body[f.name] = v[f.name];
    }
    if (Object.keys(jsonErrs).length) {
      setErr(new ApiError(400, 'Fix the JSON fields.', jsonErrs));
      return;
    }
    const hasFiles = Object.values(files).some((l) => l.length) || Object.values(removed).some((l) => l.length);
    let payload: any = body;
    if (hasFiles) {
      const fd = new FormData();
      fd.append('@jsonPayload', JSON.stringify(body));
      for (const f of c.fields.filter((x) => x.type === 'file')) {
        const multi = (f.maxSelect || 1) > 1;
        for (const file of files[f.name] || []) fd.append(creating || !multi ? f.name : f.name + '+', file);
        for (const name of removed[f.name] || []) fd.append(f.name + '-', name);
      }
      payload = fd;
    }
    setBusy(true);
    try {
      if (creating) await api('POST', `/api/collections/${enc(c.name)}/records`, payload);
      else await api('PATCH', `/api/collections/${enc(c.name)}/records/${enc(rec.id)}`, payload);
      onSaved();
    } catch (x) {
      setErr(x as ApiError);
    }
    setBusy(false);
  };
  const del = async () => {
    try {
      await api('DELETE', `/api/collections/${enc(c.name)}/records/${enc(rec.id)}`);
      onSaved();
    } catch (x) {
      setErr(x as ApiError);
      setConfirmDel(false);
    }
  };

  const input = (f: Field) => {
    const val = v[f.name];
    const name = 'rec-' + f.name;
    switch (f.type) {
      case 'bool':
        return <Check label={f.name} name={name} checked={!!val} onChange={(x) => set(f.name, x)} />;
      case 'number':
        return <input id={name} name={name} type="number" step={f.onlyInt ? 1 : 'any'} value={val ?? ''} onInput={(e) => { const t = (e.target as HTMLInputElement).value; set(f.name, t === '' ? null : Number(t)); }} />;
      case 'date':
        return <input id={name} name={name} type="datetime-local" value={toLocalInput(val)} onInput={(e) => { const t = (e.target as HTMLInputElement).value; set(f.name, t ? new Date(t).toISOString() : ''); }} />;
      case 'select': {
        const multi = (f.maxSelect || 1) > 1;
        if (multi) {
          const cur: string[] = val || [];
          return (
            <div class="chips">
              {(f.values || []).map((o) => (
                <Check key={o} label={o} name={name + '-' + o} checked={cur.includes(o)} onChange={(on) => set(f.name, on ? [...cur, o] : cur.filter((x) => x !== o))} />
              ))}
            </div>
          );
        }
        return (
          <select id={name} name={name} value={val || ''} onChange={(e) => set(f.name, (e.target as HTMLSelectElement).value)}>
            <option value="">—</option>
            {(f.values || []).map((o) => <option key={o} value={o}>{o}</option>)}
          </select>
        );
      }
      case 'json':
        return <textarea id={name} name={name} class="code" rows={5} value={jsonText[f.name]} onInput={(e) => setJsonText({ ...jsonText, [f.name]: (e.target as HTMLTextAreaElement).value })} spellcheck={false} />;
      case 'relation': {
        const cur: string[] = Array.isArray(val) ? val : val ? [val] : [];
        const multi = (f.maxSelect || 1) > 1;
        return <RelationPicker f={f} all={all} value={cur} onChange={(ids) => set(f.name, multi ? ids : ids[0] || '')} />;
      }
      case 'file': {
        const cur: string[] = (Array.isArray(val) ? val : val ? [val] : []).filter((n: string) => !(removed[f.name] || []).includes(n));
        const multi = (f.maxSelect || 1) > 1;
        return (
          <div class="filefield">
            {cur.map((n) => (
              <div class="file" key={n}>
                {isImage(n) && !f.protected && <img class="thumb" src={fileURL(c, rec.id, n, f.thumbs?.[0])} alt="" />}
                <a href={fileURL(c, rec.id, n)} target="_blank" rel="noopener noreferrer">{n}</a>
                <button type="button" class="x" aria-label={'Remove ' + n} onClick={() => setRemoved({ ...removed, [f.name]: [...(removed[f.name] || []), n] })}>✕</button>
              </div>
            ))}
            {(files[f.name] || []).map((file) => (
              <div class="file new" key={file.name}>+ {file.name} ({Math.ceil(file.size / 1024)} KB)</div>
            ))}
            <input id={name} name={name} type="file" multiple={multi} accept={(f.mimeTypes || []).join(',') || undefined} onChange={(e) => setFiles({ ...files, [f.name]: Array.from((e.target as HTMLInputElement).files || []) })} />
          </div>
        );
      }
      case 'password':
        return <input id={name} name={name} type="password" autoComplete="new-password" placeholder={creating ? '' : 'unchanged'} value={val || ''} onInput={(e) => set(f.name, (e.target as HTMLInputElement).value)} />;
      default:
        return <input id={name} name={name} type={(f.type === 'email' ? 'email' : f.type === 'url' ? 'url' : 'text') as any} value={val ?? ''} onInput={(e) => set(f.name, (e.target as HTMLInputElement).value)} />;
    }
  };

  return (
    <Drawer title={creating ? 'New ' + c.name + ' record' : 'Edit ' + rec.id} onClose={onClose}>
      <form class="recform" onSubmit={save}>
        {!creating && (
          <div class="field">
            <label>id</label>
            <div class="row">
              <code>{rec.id}</code>
              <Button small onClick={() => navigator.clipboard?.writeText(rec.id)}>Copy id</Button>
            </div>
          </div>
        )}
        {editable.map((f) => (
          <div class={'field' + (err?.data[f.name] ? ' invalid' : '')} key={f.name} data-field={f.name}>
            {f.type !== 'bool' && (
              <label for={'rec-' + f.name}>
                {f.name} <span class="muted">{f.type}{f.required ? ' · required' : ''}</span>
              </label>
            )}
            {input(f)}
            {err?.data[f.name] && <small class="error">{err.data[f.name].message}</small>}
          </div>
        ))}
        {!creating &&
          c.fields.filter((f) => f.type === 'autodate').map((f) => (
            <p class="muted" key={f.name}>
              {f.name}: {rec[f.name]}
            </p>
          ))}
        {!creating && c.type === 'auth' && c.name !== '_superusers' && <AuthActions c={c} rec={rec} />}
        <Errors err={err} skip={(k) => c.fields.some((f) => f.name === k)} />
        <div class="actions end">
          {!creating && <Button danger onClick={() => setConfirmDel(true)}>Delete</Button>}
          <Button type="submit" primary disabled={busy}>{creating ? 'Create' : 'Save'}</Button>
        </div>
      </form>
      {confirmDel && (
        <Modal title={'Delete record ' + rec.id + '?'} onClose={() => setConfirmDel(false)}>
          <p>This permanently deletes the record and its files.</p>
          <div class="actions end">
            <Button onClick={() => setConfirmDel(false)}>Cancel</Button>
            <Button danger onClick={del}>Delete record</Button>
          </div>
        </Modal>
      )}
    </Drawer>
  );
}
