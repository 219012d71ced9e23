import { Fragment } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { api, ApiError, Collection, enc, Page } from './api';
import { Button, Check, Errors, Input, Modal } from './ui';

interface Webhook {
  id: string;
  url: string;
  collections: string[];
  actions: string[];
  filter: string;
  secret?: string;
  enabled: boolean;
  created: string;
}

interface Delivery {
  id: string;
  eventId: string;
  status: 'pending' | 'delivered' | 'failed';
  attempts: number;
  nextAttempt: string;
  lastStatus: number;
  lastError: string;
  updated: string;
}

const ACTIONS = ['create', 'update', 'delete'];

// Webhooks: register URLs that receive record changes, and read each
// one's delivery log (retrying a delivery from it). Everything here is
// the public /api/webhooks API.
export function Webhooks({ all }: { all: Collection[] }) {
  const [hooks, setHooks] = useState<Webhook[] | null>(null);
  const [err, setErr] = useState<ApiError | null>(null);
  const [creating, setCreating] = useState(false);
  const [secret, setSecret] = useState<Webhook | null>(null);
  const [open, setOpen] = useState<string>('');
  const [confirm, setConfirm] = useState<Webhook | null>(null);
  const load = async () => {
    try {
      setHooks((await api<Page<Webhook>>('GET', '/api/webhooks?perPage=500')).items);
    } catch (x) {
      setErr(x as ApiError);
    }
  };
  useEffect(() => {
    load();
  }, []);
  const toggle = async (w: Webhook) => {
    try {
      await api('PATCH', '/api/webhooks/' + enc(w.id), { enabled: !w.enabled });
      await load();
    } catch (x) {
      setErr(x as ApiError);
    }
  };
  const remove = async (w: Webhook) => {
    try {
      await api('DELETE', '/api/webhooks/' + enc(w.id));
      setConfirm(null);
      await load();
    } catch (x) {
      setErr(x as ApiError);
    }
  };
  return (
    <section>
      <h2>Webhooks</h2>
      <p class="muted">Record changes are POSTed to these URLs, signed with the webhook's secret, retried until delivered.</p>
      <Errors err={err} />
      <Button primary onClick={() => setCreating(true)}>+ New webhook</Button>
      {hooks && hooks.length === 0 && <p class="muted">No webhooks yet.</p>}
      {hooks && hooks.length > 0 && (
        <table class="grid webhooks">
          <thead>
            <tr><th>URL</th><th>Collections</th><th>Actions</th><th>Filter</th><th>Enabled</th><th /></tr>
          </thead>
          <tbody>
            {hooks.map((w) => (
              <Fragment key={w.id}>
                <tr data-id={w.id}>
                  <td><code>{w.url}</code></td>
                  <td>{w.collections.join(', ')}</td>
                  <td>{w.actions.join(', ')}</td>
                  <td><code>{w.filter}</code></td>
                  <td>{w.enabled ? 'yes' : 'no'}</td>
                  <td class="actions">
                    <Button small onClick={() => setOpen(open === w.id ? '' : w.id)}>{open === w.id ? 'Hide deliveries' : 'Deliveries'}</Button>
                    <Button small onClick={() => toggle(w)}>{w.enabled ? 'Disable' : 'Enable'}</Button>
                    <Button small danger onClick={() => setConfirm(w)}>Delete</Button>
                  </td>
                </tr>
                {open === w.id && (
                  <tr>
                    <td colSpan={6}><Deliveries hook={w} /></td>
                  </tr>
                )}
              </Fragment>
            ))}
          </tbody>
        </table>
      )}
      {creating && (
        <NewWebhook all={all} onClose={() => setCreating(false)} onCreated={async (w) => { setCreating(false); setSecret(w); await load(); }} />
      )}
      {secret && (
        <Modal title="Webhook created" onClose={() => setSecret(null)}>
          <p>Its signing secret is shown this once; keep it where the receiver checks signatures:</p>
          <p><code class="secret">{secret.secret}</code></p>
          <Button primary onClick={() => setSecret(null)}>Done</Button>
        </Modal>
      )}
      {confirm && (
        <Modal title="Delete webhook" onClose={() => setConfirm(null)}>
          <p>Delete the webhook to <code>{confirm.url}</code> and its delivery log? Pending deliveries will not be sent.</p>
          <Button danger onClick={() => remove(confirm)}>Delete webhook</Button> <Button onClick={() => setConfirm(null)}>Cancel</Button>
        </Modal>
      )}
    </section>
  );
}

function NewWebhook({ all, onClose, onCreated }: { all: Collection[]; onClose: () => void; onCreated: (w: Webhook) => void }) {
  const [url, setURL] = useState('');
  const [cols, setCols] = useState<string[]>([]);
  const [actions, setActions] = useState<string[]>(ACTIONS);
  const [filter, setFilter] = useState('');
  const [err, setErr] = useState<ApiError | null>(null);
  const flip = (list: string[], v: string, on: boolean) => (on ? [...list.filter((x) => x !== v), v] : list.filter((x) => x !== v));
  const submit = async (e: Event) => {
    e.preventDefault();
    try {
      onCreated(await api<Webhook>('POST', '/api/webhooks', { url, collections: cols, actions, filter }));
    } catch (x) {
      setErr(x as ApiError);
    }
  };
  const choices = all.filter((c) => c.type !== 'view');
  return (
    <Modal title="New webhook" onClose={onClose}>
      <form onSubmit={submit}>
        <Input label="URL" name="webhook-url" value={url} onInput={setURL} placeholder="https://example.com/hooks/plinth" error={err?.data.url?.message} />
        <fieldset>
          <legend>Collections</legend>
          <Check label="every collection (*)" name="webhook-all" checked={cols.includes('*')} onChange={(on) => setCols(flip(cols, '*', on))} />
          {choices.map((c) => (
            <Check key={c.id} label={c.name} name={'webhook-col-' + c.name} checked={cols.includes(c.name)} onChange={(on) => setCols(flip(cols, c.name, on))} />
          ))}
          {err?.data.collections && <p class="error">{err.data.collections.message}</p>}
        </fieldset>
        <fieldset>
          <legend>Actions</legend>
          {ACTIONS.map((a) => (
            <Check key={a} label={a} name={'webhook-action-' + a} checked={actions.includes(a)} onChange={(on) => setActions(flip(actions, a, on))} />
          ))}
        </fieldset>
        <Input label="Filter (rule language, optional)" name="webhook-filter" value={filter} onInput={setFilter} placeholder='published = true' error={err?.data.filter?.message} />
        <Errors err={err} skip={(k) => ['url', 'collections', 'filter'].includes(k)} />
        <Button primary type="submit">Create webhook</Button> <Button onClick={onClose}>Cancel</Button>
      </form>
    </Modal>
  );
}

function Deliveries({ hook }: { hook: Webhook }) {
  const [page, setPage] = useState<Page<Delivery> | null>(null);
  const [err, setErr] = useState<ApiError | null>(null);
  const load = async () => {
    try {
      setPage(await api<Page<Delivery>>('GET', `/api/webhooks/${enc(hook.id)}/deliveries?perPage=50`));
    } catch (x) {
      setErr(x as ApiError);
    }
  };
  useEffect(() => {
    load();
    const t = setInterval(load, 2000); // deliveries move on by themselves
    return () => clearInterval(t);
  }, [hook.id]);
  const retry = async (d: Delivery) => {
    try {
      await api('POST', `/api/webhooks/${enc(hook.id)}/deliveries/${enc(d.id)}/retry`);
      await load();
    } catch (x) {
      setErr(x as ApiError);
    }
  };
  if (!page) return err ? <Errors err={err} /> : <p class="muted">Loading…</p>;
  if (page.items.length === 0) return <p class="muted">No deliveries yet: changes made from now on are sent.</p>;
  return (
    <div class="deliveries">
      <Errors err={err} />
      <p class="muted">{page.totalItems} deliveries, newest first.</p>
      <table class="grid">
        <thead>
          <tr><th>Change</th><th>Status</th><th>Attempts</th><th>Last answer</th><th>Last error</th><th>Updated</th><th /></tr>
        </thead>
        <tbody>
          {page.items.map((d) => (
            <tr key={d.id} data-delivery={d.eventId} class={'delivery ' + d.status}>
              <td>{d.eventId}</td>
              <td>{d.status}</td>
              <td>{d.attempts}</td>
              <td>{d.lastStatus || ''}</td>
              <td class="err">{d.lastError}</td>
              <td>{d.updated}</td>
              <td>{d.status !== 'delivered' && <Button small onClick={() => retry(d)}>Retry now</Button>}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
