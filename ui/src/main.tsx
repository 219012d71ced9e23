import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { api, ApiError, Collection, collections, login, loginWithCode, onSession, requestCode, session, setSession } from './api';
import { AuthAction } from './authpages';
import { CollectionEditor } from './editor';
import { Records } from './records';
import { Settings } from './settings';
import { Button, Errors, go, Input } from './ui';
import { Webhooks } from './webhooks';
import './style.css';

// Hash routes keep every page one static file: /_/#/collections/posts.
function useRoute(): string[] {
  const parse = () => (location.hash.replace(/^#\/?/, '') || 'collections').split('/').map(decodeURIComponent);
  const [r, setR] = useState(parse());
  useEffect(() => {
    const on = () => setR(parse());
    addEventListener('hashchange', on);
    return () => removeEventListener('hashchange', on);
  }, []);
  return r;
}


function Login() {
  const [email, setEmail] = useState('');
  const [password, setPassword] = useState('');
  const [err, setErr] = useState<ApiError | null>(null);
  const [busy, setBusy] = useState(false);
  // Second step when MFA is on: a one-time code mailed to the superuser.
  const [mfa, setMfa] = useState<{ mfaId: string; otpId: string } | null>(null);
  const [code, setCode] = useState('');
  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    try {
      if (mfa) await loginWithCode(email, mfa.otpId, code.trim(), mfa.mfaId);
      else await login(email, password);
    } catch (x) {
      const ae = x as ApiError;
      if (!mfa && ae.status === 401 && ae.body?.mfaId) {
        try {
          setMfa({ mfaId: ae.body.mfaId, otpId: await requestCode(email) });
          setErr(null);
        } catch (y) {
          setErr(y as ApiError);
        }
      } else setErr(ae);
    }
    setBusy(false);
  };
  return (
    <main class="center">
      <form class="card narrow" onSubmit={submit}>
        <h1>Plinth</h1>
        {mfa ? (
          <>
            <p class="muted">A second step is required: enter the code we emailed to {email}.</p>
            <Input label="One-time code" name="code" value={code} onInput={setCode} autoFocus />
          </>
        ) : (
          <>
            <p class="muted">Sign in as a superuser.</p>
            <Input label="Email" type="email" value={email} onInput={setEmail} autoFocus />
            <Input label="Password" type="password" value={password} onInput={setPassword} />
          </>
        )}
        <Errors err={err} />
        <Button type="submit" primary disabled={busy}>{mfa ? 'Verify code' : 'Sign in'}</Button>
      </form>
    </main>
  );
}

function Install({ token }: { token: string }) {
  const [email, setEmail] = useState('');
  const [password, setPassword] = useState('');
  const [confirm, setConfirm] = useState('');
  const [err, setErr] = useState<ApiError | null>(null);
  return (
    <main class="center">
      <form
        class="card narrow"
        onSubmit={async (e) => {
          e.preventDefault();
          if (password !== confirm) {
            setErr(new ApiError(400, 'The passwords do not match.'));
            return;
          }
          try {
            await api('POST', '/api/superusers/install', { token, email, password }, false);
            await login(email, password);
            go('collections');
          } catch (x) {
            setErr(x as ApiError);
          }
        }}
      >
        <h1>Welcome to Plinth</h1>
        <p class="muted">Create the first superuser. This link works once.</p>
        <Input label="Email" type="email" value={email} onInput={setEmail} autoFocus />
        <Input label="Password" type="password" value={password} onInput={setPassword} />
        <Input label="Confirm password" type="password" value={confirm} onInput={setConfirm} />
        <Errors err={err} />
        <Button type="submit" primary>Create superuser</Button>
      </form>
    </main>
  );
}

function Shell({ route }: { route: string[] }) {
  const [cols, setCols] = useState<Collection[] | null>(null);
  const [err, setErr] = useState<ApiError | null>(null);
  const reload = async () => {
    try {
      setCols(await collections());
    } catch (x) {
      setErr(x as ApiError);
    }
  };
  useEffect(() => {
    reload();
  }, []);
  const [page, name, sub] = route;
  const current = cols && name ? cols.find((c) => c.name === name || c.id === name) : undefined;
  let body;
  if (!cols) body = err ? <Errors err={err} /> : <p class="muted">Loading…</p>;
  else if (page === 'settings') body = <Settings />;
  else if (page === 'webhooks') body = <Webhooks all={cols} />;
  else if (page === 'new-collection') body = <CollectionEditor key="new" all={cols} onSaved={async (c) => { await reload(); go('collections/' + c.name); }} />;
  else if (current && sub === 'edit')
    body = <CollectionEditor key={'edit-' + current.id} initial={current} all={cols} onSaved={async (c) => { await reload(); go('collections/' + c.name); }} onDeleted={async () => { await reload(); go('collections'); }} />;
  else if (current) body = <Records key={current.id} collection={current} all={cols} />;
  else if (name) body = <p class="muted">No collection named {name}.</p>;
  else
    body = (
      <section>
        <h2>Collections</h2>
        <p class="muted">Pick a collection on the left, or create one.</p>
        <Button primary onClick={() => go('new-collection')}>New collection</Button>
      </section>
    );
  const user = cols?.filter((c) => !c.system) || [];
  const system = cols?.filter((c) => c.system) || [];
  return (
    <div class="shell">
      <nav class="side" aria-label="Main">
        <div class="brand">Plinth</div>
        <a class="btn primary block" href="#/new-collection">+ New collection</a>
        <ul class="nav">
          {user.map((c) => (
            <li key={c.id}>
              <a href={'#/collections/' + encodeURIComponent(c.name)} class={current?.id === c.id ? 'active' : ''}>
                <span class="kind">{c.type}</span> {c.name}
              </a>
            </li>
          ))}
        </ul>
        {system.length > 0 && (
          <details class="system">
            <summary>System</summary>
            <ul class="nav">
              {system.map((c) => (
                <li key={c.id}>
                  <a href={'#/collections/' + encodeURIComponent(c.name)} class={current?.id === c.id ? 'active' : ''}>{c.name}</a>
                </li>
              ))}
            </ul>
          </details>
        )}
        <div class="grow" />
        <a href="#/webhooks" class={page === 'webhooks' ? 'active navlink' : 'navlink'}>Webhooks</a>
        <a href="#/settings" class={page === 'settings' ? 'active navlink' : 'navlink'}>Settings</a>
        <div class="who muted">{session()?.email}</div>
        <Button onClick={() => setSession(null)}>Log out</Button>
      </nav>
      <main class="content">{body}</main>
    </div>
  );
}

function App() {
  const route = useRoute();
  const [, force] = useState(0);
  useEffect(() => onSession(() => force((n) => n + 1)), []);
  if (route[0] === 'install' && route[1]) return <Install token={route[1]} />;
  if (route[0] === 'auth' && route[1] && route[2]) return <AuthAction action={route[1]} token={route.slice(2).join('/')} />;
  if (!session()) return <Login />;
  return <Shell route={route} />;
}

render(<App />, document.getElementById('app')!);
