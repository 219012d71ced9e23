import { useEffect, useRef, useState } from 'preact/hooks';
import { api, ApiError, Collection, enc, Field, FIELD_TYPES, Page, RULES } from './api';
import { Button, Check, Errors, Input, Modal, Select } from './ui';

const RULE_LABELS: Record<string, string> = {
  listRule: 'List/search rule',
  viewRule: 'View rule',
  createRule: 'Create rule',
  updateRule: 'Update rule',
  deleteRule: 'Delete rule',
  manageRule: 'Manage rule (auth)',
};

function blank(type: Collection['type']): Collection {
  return {
    name: '',
    type,
    fields: type === 'view' ? [] : [{ name: 'title', type: 'text' }],
    indexes: [],
    listRule: null,
    viewRule: null,
    createRule: null,
    updateRule: null,
    deleteRule: null,
    viewQuery: type === 'view' ? 'SELECT id FROM ' : undefined,
  };
}

const num = (v: string) => (v.trim() === '' ? undefined : Number(v));
const list = (v: string) => v.split(',').map((s) => s.trim()).filter(Boolean);

// What a collection definition sends: system fields of auth collections
// and autodate defaults come from the server.
function payload(c: Collection, creating: boolean) {
  const out: any = { ...c };
  if (creating) delete out.id;
  if (c.type === 'view') {
    delete out.indexes;
    out.fields = c.fields.filter((f) => f.type === 'relation');
  } else delete out.viewQuery;
  if (c.type !== 'auth') delete out.authOptions;
  delete out.created;
  delete out.updated;
  return out;
}

function FieldOptions({ f, set, all }: { f: Field; set: (p: Partial<Field>) => void; all: Collection[] }) {
  const n = (label: string, k: keyof Field, hint?: string) => (
    <Input label={label} type="number" value={(f[k] as any) ?? ''} onInput={(v) => set({ [k]: num(v) } as any)} hint={hint} />
  );
  const l = (label: string, k: 'values' | 'mimeTypes' | 'thumbs', hint?: string) => (
    <Input label={label} value={(f[k] || []).join(', ')} onInput={(v) => set({ [k]: list(v) })} hint={hint} />
  );
  switch (f.type) {
    case 'text':
    case 'password':
      return (
        <div class="row">
          {n('Min length', 'min')}
          {n('Max length', 'max')}
          {f.type === 'text' && <Input label="Pattern (regexp)" value={f.pattern} onInput={(v) => set({ pattern: v })} />}
        </div>
      );
    case 'number':
      return (
        <div class="row">
          {n('Min', 'min')}
          {n('Max', 'max')}
          <Check label="Integers only" checked={f.onlyInt} onChange={(v) => set({ onlyInt: v })} />
        </div>
      );
    case 'select':
      return (
        <div class="row">
          {l('Values', 'values', 'comma-separated')}
          {n('Max select', 'maxSelect', '1: single value')}
        </div>
      );
    case 'json':
      return <div class="row">{n('Max size (bytes)', 'maxSize')}</div>;
    case 'relation':
      return (
        <div class="row">
          <Select label="Target collection" value={f.collectionId || ''} options={[['', '— choose —'], ...all.filter((c) => c.name !== '_superusers').map((c) => [c.id!, c.name] as [string, string])]} onChange={(v) => set({ collectionId: v })} />
          {n('Max select', 'maxSelect', '1: single relation')}
          <Check label="Cascade delete" checked={f.cascadeDelete} onChange={(v) => set({ cascadeDelete: v })} />
        </div>
      );
    case 'file':
      return (
        <div class="row wrap">
          {n('Max files', 'maxSelect')}
          {n('Max size (bytes)', 'maxSize')}
          {l('MIME types', 'mimeTypes', 'e.g. image/png, image/jpeg')}
          {l('Thumb sizes', 'thumbs', 'e.g. 100x100, 0x300')}
          <Check label="Protected" checked={f.protected} onChange={(v) => set({ protected: v })} />
        </div>
      );
    case 'autodate':
      return (
        <div class="row">
          <Check label="Set on create" checked={f.onCreate} onChange={(v) => set({ onCreate: v })} />
          <Check label="Set on update" checked={f.onUpdate} onChange={(v) => set({ onUpdate: v })} />
        </div>
      );
  }
  return null;
}

// errorPos finds the character a compiler error points at ("… at
// position N"), to show it under the rule.
function errorPos(error: string | undefined): number {
  const m = error?.match(/at position (\d+)/);
  return m ? Number(m[1]) : -1;
}

// RuleInput edits one rule: null (superusers only) or an expression, with
// the server compiler's error shown in place (and the position it points
// at), suggestions to insert, and completion of the word being typed
// (fields, @request.*, @collection.*: arrows choose, Enter or Tab insert).
function RuleInput({ name, value, onChange, error, suggestions }: { name: string; value: string | null; onChange: (v: string | null) => void; error?: string; suggestions: string[] }) {
  const ref = useRef<HTMLTextAreaElement>(null);
  const [word, setWord] = useState<{ start: number; text: string } | null>(null);
  const [pick, setPick] = useState(0);
  const locked = value === null;
  const put = (from: number, to: number, s: string) => {
    const el = ref.current;
    const cur = value || '';
    onChange(cur.slice(0, from) + s + cur.slice(to));
    setWord(null);
    setTimeout(() => {
      if (el) {
        el.focus();
        el.selectionStart = el.selectionEnd = from + s.length;
      }
    });
  };
  const insert = (s: string) => {
    const at = ref.current ? ref.current.selectionStart : (value || '').length;
    put(at, at, s);
  };
  // The word before the caret, if it is the start of something we know.
  const track = (el: HTMLTextAreaElement) => {
    const before = el.value.slice(0, el.selectionStart);
    const m = before.match(/[@A-Za-z_][\w.@]*$/);
    setWord(m ? { start: before.length - m[0].length, text: m[0] } : null);
    setPick(0);
  };
  const matches = word ? suggestions.filter((s) => s.toLowerCase().startsWith(word.text.toLowerCase()) && s !== word.text).slice(0, 8) : [];
  const complete = (s: string) => word && put(word.start, word.start + word.text.length, s);
  const onKey = (e: KeyboardEvent) => {
    if (matches.length === 0) return;
    if (e.key === 'ArrowDown' || e.key === 'ArrowUp') {
      e.preventDefault();
      setPick((pick + (e.key === 'ArrowDown' ? 1 : matches.length - 1)) % matches.length);
    } else if (e.key === 'Enter' || e.key === 'Tab') {
      e.preventDefault();
      complete(matches[pick]);
    } else if (e.key === 'Escape') {
      e.stopPropagation();
      setWord(null);
    }
  };
  const pos = errorPos(error);
  return (
    <div class={'field rule' + (error ? ' invalid' : '')}>
      <div class="rulehead">
        <label for={'rule-' + name}>{RULE_LABELS[name]}</label>
        <Check label="Superusers only" name={name + '-locked'} checked={locked} onChange={(v) => onChange(v ? null : '')} />
      </div>
      {!locked && (
        <>
          <div class="complete">
            <textarea id={'rule-' + name} name={name} ref={ref} rows={2} value={value || ''} placeholder="empty: everyone; e.g. @request.auth.id != &quot;&quot;"
              onInput={(e) => { onChange((e.target as HTMLTextAreaElement).value); track(e.target as HTMLTextAreaElement); }}
              onKeyDown={onKey} onBlur={() => setTimeout(() => setWord(null), 150)}
              aria-expanded={matches.length > 0} aria-controls={'complete-' + name} aria-autocomplete="list"
              aria-invalid={error ? 'true' : undefined} spellcheck={false} />
            {matches.length > 0 && (
              <ul class="completions" id={'complete-' + name} role="listbox" aria-label="Completions">
                {matches.map((m, i) => (
                  <li key={m} role="option" aria-selected={i === pick} class={i === pick ? 'on' : ''} onMouseDown={(e) => { e.preventDefault(); complete(m); }}>{m}</li>
                ))}
              </ul>
            )}
          </div>
          <div class="chips" aria-label="Insert">
            {suggestions.map((s) => (
              <button type="button" key={s} class="chip" onClick={() => insert(s)}>{s}</button>
            ))}
          </div>
        </>
      )}
      {error && <small class="error" role="alert">{error}</small>}
      {error && pos >= 0 && value && (
        <pre class="errpos" aria-label="Where the error is">{value.replace(/\n/g, ' ') + '\n' + ' '.repeat(Math.min(pos, value.length)) + '^'}</pre>
      )}
    </div>
  );
}

export function CollectionEditor({ initial, all, onSaved, onDeleted }: { initial?: Collection; all: Collection[]; onSaved: (c: Collection) => void; onDeleted?: () => void }) {
  const creating = !initial;
  const [c, setC] = useState<Collection>(() => (initial ? JSON.parse(JSON.stringify(initial)) : blank('base')));
  const [err, setErr] = useState<ApiError | null>(null);
  const [live, setLive] = useState<ApiError | null>(null);
  const [preview, setPreview] = useState<Collection | null>(null);
  const [confirmDelete, setConfirmDelete] = useState<{ records: number } | null>(null);
  const [busy, setBusy] = useState(false);
  const set = (p: Partial<Collection>) => setC((x) => ({ ...x, ...p }));
  const setField = (i: number, p: Partial<Field>) => setC((x) => ({ ...x, fields: x.fields.map((f, j) => (j === i ? { ...f, ...p } : f)) }));

  // Live validation: the server's own checks, rules compiled by its
  // compiler, nothing stored.
  useEffect(() => {
    const t = setTimeout(async () => {
      if (!c.name) return;
      try {
        const out = await api<Collection>('POST', '/api/collections/validate', payload(c, creating));
        setLive(null);
        setPreview(out);
      } catch (x) {
        setLive(x as ApiError);
      }
    }, 350);
    return () => clearTimeout(t);
  }, [JSON.stringify(c)]);

  const [diff, setDiff] = useState<string[][] | null>(null);
  // A change to an existing collection is shown before it runs: what is
  // added, renamed, removed (with its data) and which rules change.
  const review = (e: Event) => {
    e.preventDefault();
    if (creating) return save(e);
    const lines: string[][] = [];
    const old = initial!;
    const byId = new Map(old.fields.filter((f) => f.id).map((f) => [f.id!, f]));
    for (const f of c.fields) {
      const o = f.id ? byId.get(f.id) : undefined;
      if (!o) lines.push(['add', `Add field ${f.name || '(unnamed)'} (${f.type})`]);
      else {
        if (o.name !== f.name) lines.push(['change', `Rename field ${o.name} → ${f.name} (data kept)`]);
        if (JSON.stringify({ ...o, name: '' }) !== JSON.stringify({ ...f, name: '' })) lines.push(['change', `Change options of ${f.name}`]);
        byId.delete(f.id!);
      }
    }
    for (const o of byId.values()) lines.push(['remove', `Remove field ${o.name} and all its values`]);
    if (old.name !== c.name) lines.push(['change', `Rename collection ${old.name} → ${c.name} (API paths change)`]);
    for (const r of [...RULES]) if (old[r] !== c[r]) lines.push(['change', `${RULE_LABELS[r]}: ${old[r] === null ? 'superusers only' : JSON.stringify(old[r])} → ${c[r] === null ? 'superusers only' : JSON.stringify(c[r])}`]);
    if (JSON.stringify(old.indexes) !== JSON.stringify(c.indexes)) lines.push(['change', 'Indexes change']);
    if (JSON.stringify(old.authOptions || {}) !== JSON.stringify(c.authOptions || {})) lines.push(['change', 'Auth options change']);
    if ((old.viewQuery || '') !== (c.viewQuery || '')) lines.push(['change', 'View query changes']);
    if (!lines.length) lines.push(['same', 'No changes.']);
    setDiff(lines);
  };
  const save = async (e: Event) => {
    e.preventDefault();
    setDiff(null);
    setBusy(true);
    try {
      const out = creating ? await api<Collection>('POST', '/api/collections', payload(c, true)) : await api<Collection>('PATCH', '/api/collections/' + enc(initial!.id!), payload(c, false));
      setErr(null);
      onSaved(out);
    } catch (x) {
      setErr(x as ApiError);
    }
    setBusy(false);
  };
  const askDelete = async () => {
    let records = 0;
    try {
      records = (await api<Page<any>>('GET', `/api/collections/${enc(initial!.name)}/records?perPage=1`)).totalItems;
    } catch {
      records = -1;
    }
    setConfirmDelete({ records });
  };
  const doDelete = async () => {
    try {
      await api('DELETE', '/api/collections/' + enc(initial!.id!));
      setConfirmDelete(null);
      onDeleted?.();
    } catch (x) {
      setErr(x as ApiError);
      setConfirmDelete(null);
    }
  };

  const errs = { ...(live?.data || {}), ...(err?.data || {}) };
  const fieldNames = [...new Set([...c.fields, ...(preview?.fields || [])].map((f) => f.name).filter(Boolean))];
  const suggestions = [...fieldNames, '@request.auth.id', '@request.auth.', '@request.body.', '@request.query.', '@request.method', ...all.filter((x) => !x.system).map((x) => '@collection.' + x.name + '.'), '@now', ' && ', ' || ', ' = ', ' != ', ' ~ ', '""'];
  const shown = c.fields.map((f, i) => ({ f, i })).filter(({ f }) => !f.system);
  const auth = c.authOptions || {};
  const setAuth = (p: any) => set({ authOptions: { ...auth, ...p } });

  return (
    <form class="editor" onSubmit={review}>
      <header class="pagehead">
        <h2>{creating ? 'New collection' : 'Edit ' + initial!.name}</h2>
        <div class="actions">
          {!creating && !initial!.system && <Button danger onClick={askDelete}>Delete collection</Button>}
          <Button type="submit" primary disabled={busy}>{creating ? 'Create' : 'Save changes'}</Button>
        </div>
      </header>
      <div class="row">
        <Input label="Name" name="name" value={c.name} onInput={(v) => set({ name: v })} error={errs.name?.message} autoFocus={creating} />
        <Select label="Type" name="type" value={c.type} disabled={!creating} options={['base', 'auth', 'view']} onChange={(v) => setC({ ...blank(v as any), name: c.name })} />
      </div>
      <div class="status" aria-live="polite">
        {c.name && (live ? <span class="error">✗ {live.message}</span> : preview ? <span class="ok">✓ Valid</span> : null)}
      </div>

      {c.type === 'view' ? (
        <section>
          <h3>View query</h3>
          <div class={'field' + (errs.viewQuery ? ' invalid' : '')}>
            <label for="viewQuery">SELECT statement (must return an id column)</label>
            <textarea id="viewQuery" name="viewQuery" class="code" rows={6} value={c.viewQuery} onInput={(e) => set({ viewQuery: (e.target as HTMLTextAreaElement).value })} spellcheck={false} />
            {errs.viewQuery && <small class="error">{errs.viewQuery.message}</small>}
          </div>
          {preview && (
            <p class="muted">
              Inferred fields: {preview.fields.map((f) => f.name + ' (' + f.type + ')').join(', ')}
            </p>
          )}
        </section>
      ) : (
        <section>
          <h3>Fields</h3>
          {c.type === 'auth' && <p class="muted">Auth collections also have email, emailVisibility, verified and password.</p>}
          {shown.map(({ f, i }) => (
            <fieldset key={f.id || 'n' + i} class={'fieldrow' + (errs['fields.' + i] ? ' invalid' : '')} data-field={f.name}>
              <div class="row">
                <Input label="Field name" name={'field-name-' + i} value={f.name} onInput={(v) => setField(i, { name: v })} />
                <Select label="Type" name={'field-type-' + i} value={f.type} disabled={!!f.id && !creating} options={FIELD_TYPES} onChange={(v) => setField(i, { type: v, min: undefined, max: undefined, pattern: undefined, onlyInt: undefined, values: undefined, maxSelect: undefined, maxSize: undefined, mimeTypes: undefined, thumbs: undefined, protected: undefined, collectionId: undefined, cascadeDelete: undefined, onCreate: v === 'autodate' ? true : undefined, onUpdate: undefined })} />
                <Check label="Required" name={'field-required-' + i} checked={f.required} onChange={(v) => setField(i, { required: v })} />
                <Check label="Hidden" name={'field-hidden-' + i} checked={f.hidden} onChange={(v) => setField(i, { hidden: v })} />
                <Button small danger title="Remove field" onClick={() => setC((x) => ({ ...x, fields: x.fields.filter((_, j) => j !== i) }))}>Remove</Button>
              </div>
              <FieldOptions f={f} set={(p) => setField(i, p)} all={all} />
              {errs['fields.' + i] && <small class="error">{errs['fields.' + i].message}</small>}
            </fieldset>
          ))}
          <Button onClick={() => setC((x) => ({ ...x, fields: [...x.fields, { name: '', type: 'text' }] }))}>+ Add field</Button>

          <h3>Indexes</h3>
          {c.indexes.map((ix, i) => (
            <div class="row" key={i}>
              <Input label="Index name" value={ix.name} onInput={(v) => set({ indexes: c.indexes.map((x, j) => (j === i ? { ...x, name: v } : x)) })} />
              <Input label="Columns" value={ix.columns.join(', ')} hint="comma-separated" onInput={(v) => set({ indexes: c.indexes.map((x, j) => (j === i ? { ...x, columns: list(v) } : x)) })} />
              <Check label="Unique" checked={ix.unique} onChange={(v) => set({ indexes: c.indexes.map((x, j) => (j === i ? { ...x, unique: v } : x)) })} />
              <Button small danger onClick={() => set({ indexes: c.indexes.filter((_, j) => j !== i) })}>Remove</Button>
            </div>
          ))}
          {errs.indexes && <small class="error">{errs.indexes.message}</small>}
          <Button onClick={() => set({ indexes: [...c.indexes, { name: 'idx_' + (c.name || 'x') + '_' + (c.indexes.length + 1), columns: [], unique: false }] })}>+ Add index</Button>
        </section>
      )}

      <section>
        <h3>API rules</h3>
        <p class="muted">“Superusers only” is a null rule; an empty rule lets everyone; an expression must match.</p>
        {RULES.map((r) => (
          <RuleInput key={r} name={r} value={c[r]} onChange={(v) => set({ [r]: v } as any)} error={errs[r]?.message} suggestions={suggestions} />
        ))}
        {c.type === 'auth' && (
          <RuleInput name="manageRule" value={auth.manageRule ?? null} onChange={(v) => setAuth({ manageRule: v })} error={errs.manageRule?.message} suggestions={suggestions} />
        )}
      </section>

      {c.type === 'auth' && (
        <section>
          <h3>Auth options</h3>
          <div class="row wrap">
            <Input label="Min password length" type="number" value={auth.minPasswordLength} onInput={(v) => setAuth({ minPasswordLength: num(v) })} />
            <Input label="Token duration (s)" type="number" value={auth.tokenDuration} onInput={(v) => setAuth({ tokenDuration: num(v) })} />
            <Input label="Identity fields" value={(auth.identityFields || []).join(', ')} onInput={(v) => setAuth({ identityFields: list(v) })} hint="besides email; unique text fields" />
            <Check label="Require verified email" checked={auth.requireVerified} onChange={(v) => setAuth({ requireVerified: v })} />
          </div>
          <div class="row wrap">
            <Input label="Verification token (s)" type="number" value={auth.verificationTokenDuration} onInput={(v) => setAuth({ verificationTokenDuration: num(v) })} />
            <Input label="Password reset token (s)" type="number" value={auth.passwordResetTokenDuration} onInput={(v) => setAuth({ passwordResetTokenDuration: num(v) })} />
            <Input label="Email change token (s)" type="number" value={auth.emailChangeTokenDuration} onInput={(v) => setAuth({ emailChangeTokenDuration: num(v) })} />
          </div>
          <div class="row wrap">
            <Check label="One-time codes (OTP)" checked={auth.otp?.enabled} onChange={(v) => setAuth({ otp: { ...(auth.otp || {}), enabled: v } })} />
            <Input label="OTP duration (s)" type="number" value={auth.otp?.duration} onInput={(v) => setAuth({ otp: { ...(auth.otp || {}), duration: num(v) } })} />
            <Input label="OTP length" type="number" value={auth.otp?.length} onInput={(v) => setAuth({ otp: { ...(auth.otp || {}), length: num(v) } })} />
            <Check label="MFA" checked={auth.mfa?.enabled} onChange={(v) => setAuth({ mfa: { ...(auth.mfa || {}), enabled: v } })} />
            <Input label="MFA duration (s)" type="number" value={auth.mfa?.duration} onInput={(v) => setAuth({ mfa: { ...(auth.mfa || {}), duration: num(v) } })} />
          </div>
          <Check label="OAuth2 sign-in" checked={auth.oauth2?.enabled} onChange={(v) => setAuth({ oauth2: { ...(auth.oauth2 || {}), enabled: v } })} />
          {(auth.oauth2?.providers || []).map((p: any, i: number) => {
            const setP = (q: any) => setAuth({ oauth2: { ...auth.oauth2, providers: auth.oauth2.providers.map((x: any, j: number) => (j === i ? { ...x, ...q } : x)) } });
            return (
              <div class="row wrap" key={i}>
                <Select label="Provider" value={p.name} options={['google', 'github', 'gitlab', 'microsoft', 'discord', 'oidc']} onChange={(v) => setP({ name: v })} />
                <Input label="Client id" value={p.clientId} onInput={(v) => setP({ clientId: v })} />
                <Input label="Client secret" type="password" value={p.clientSecret} placeholder="unchanged" onInput={(v) => setP({ clientSecret: v })} />
                {p.name === 'oidc' && <Input label="Issuer" value={p.issuer} onInput={(v) => setP({ issuer: v })} />}
                <Button small danger onClick={() => setAuth({ oauth2: { ...auth.oauth2, providers: auth.oauth2.providers.filter((_: any, j: number) => j !== i) } })}>Remove</Button>
              </div>
            );
          })}
          <Button small onClick={() => setAuth({ oauth2: { ...(auth.oauth2 || {}), providers: [...(auth.oauth2?.providers || []), { name: 'google', clientId: '' }] } })}>+ OAuth2 provider</Button>
        </section>
      )}

      <Errors err={err} skip={(k) => k in RULE_LABELS || k.startsWith('fields.') || k === 'name' || k === 'viewQuery'} />
      <div class="actions end">
        <Button type="submit" primary disabled={busy}>{creating ? 'Create' : 'Save changes'}</Button>
      </div>

      {diff && (
        <Modal title={'Apply changes to ' + initial!.name + '?'} onClose={() => setDiff(null)}>
          <ul class="diff">
            {diff.map(([k, t], i) => (
              <li key={i} class={k}>{t}</li>
            ))}
          </ul>
          <div class="actions end">
            <Button onClick={() => setDiff(null)}>Cancel</Button>
            <Button primary onClick={() => save(new Event('submit'))}>Apply changes</Button>
          </div>
        </Modal>
      )}
      {confirmDelete && (
        <Modal title={'Delete collection ' + initial!.name + '?'} onClose={() => setConfirmDelete(null)}>
          <p>
            This permanently deletes the collection <strong>{initial!.name}</strong>
            {confirmDelete.records >= 0 ? <>, its <strong>{confirmDelete.records}</strong> record{confirmDelete.records === 1 ? '' : 's'}</> : ', all its records'} and their stored files, and its fields: {initial!.fields.filter((f) => !f.system).map((f) => f.name).join(', ') || 'none'}.
          </p>
          <p>This cannot be undone.</p>
          <div class="actions end">
            <Button onClick={() => setConfirmDelete(null)}>Cancel</Button>
            <Button danger onClick={doDelete}>Delete {initial!.name}</Button>
          </div>
        </Modal>
      )}
    </form>
  );
}
