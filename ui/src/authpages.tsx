import { useEffect, useState } from 'preact/hooks';
import { api, ApiError, enc, tokenClaims } from './api';
import { Button, Errors, Input } from './ui';

// The pages emailed links open: /_/#/auth/<action>/<token>. Each completes
// its flow with the public API of the token's collection; nobody needs to
// be signed in.
const TITLES: Record<string, string> = {
  'confirm-verification': 'Verify your email',
  'confirm-password-reset': 'Choose a new password',
  'confirm-email-change': 'Confirm your new email',
};

export function AuthAction({ action, token }: { action: string; token: string }) {
  const [password, setPassword] = useState('');
  const [confirm, setConfirm] = useState('');
  const [err, setErr] = useState<ApiError | null>(null);
  const [done, setDone] = useState(false);
  const [app, setApp] = useState('');
  useEffect(() => {
    api<{ appName: string }>('GET', '/api/settings/public', undefined, false).then((s) => setApp(s.appName), () => setApp(''));
  }, []);
  const claims = tokenClaims(token);
  const title = TITLES[action];
  if (!title || !claims?.collectionId) {
    return (
      <main class="center">
        <div class="card narrow">
          <h1>Invalid link</h1>
          <p class="muted">This link is incomplete or damaged. Ask for a new email.</p>
        </div>
      </main>
    );
  }
  const submit = async (e: Event) => {
    e.preventDefault();
    const body: Record<string, string> = { token };
    if (action === 'confirm-password-reset') Object.assign(body, { password, passwordConfirm: confirm });
    if (action === 'confirm-email-change') body.password = password;
    try {
      await api('POST', `/api/collections/${enc(claims.collectionId)}/${action}`, body, false);
      setDone(true);
    } catch (x) {
      setErr(x as ApiError);
    }
  };
  return (
    <main class="center">
      <form class="card narrow" onSubmit={submit}>
        {app && <p class="brand-name">{app}</p>}
        <h1>{title}</h1>
        {claims.email && action !== 'confirm-password-reset' && <p class="muted">{claims.email}</p>}
        {done ? (
          <p class="ok" role="status">{action === 'confirm-verification' ? 'Your email is verified.' : action === 'confirm-password-reset' ? 'Your password was changed. You can sign in with it now.' : 'Your email was changed.'} You can close this page.</p>
        ) : (
          <>
            {action === 'confirm-password-reset' && (
              <>
                <Input label="New password" type="password" value={password} onInput={setPassword} error={err?.data.password?.message} />
                <Input label="Confirm new password" type="password" value={confirm} onInput={setConfirm} error={err?.data.passwordConfirm?.message} />
              </>
            )}
            {action === 'confirm-email-change' && <Input label="Your password" type="password" value={password} onInput={setPassword} error={err?.data.password?.message} />}
            <Errors err={err} skip={(k) => k === 'password' || k === 'passwordConfirm'} />
            <Button type="submit" primary>{action === 'confirm-verification' ? 'Verify' : 'Confirm'}</Button>
          </>
        )}
      </form>
    </main>
  );
}
