import { useEffect, useState } from 'preact/hooks';
import { api, ApiError } from './api';
import { Button, Errors, Input, Select } from './ui';

interface Template { subject: string; html: string; text: string }
interface SettingsData {
  appName: string;
  appURL: string;
  authLinkURL: string;
  smtp: { host: string; port: number; tls: string; username: string; password?: string };
  sender: { name: string; address: string };
  templates: Record<string, Template>;
}

const TEMPLATES = ['verification', 'passwordReset', 'emailChange', 'otp'];

// Settings: application, mail (SMTP, sender, templates). Further sections
// (rate limits, storage, backups, logs) slot in as tabs.
export function Settings() {
  const [tab, setTab] = useState<'app' | 'mail' | 'templates' | 'server'>('app');
  const [s, setS] = useState<SettingsData | null>(null);
  const [err, setErr] = useState<ApiError | null>(null);
  const [saved, setSaved] = useState('');
  const [to, setTo] = useState('');
  const [tmpl, setTmpl] = useState('verification');
  const [testMsg, setTestMsg] = useState<{ ok: boolean; text: string } | null>(null);
  const [sending, setSending] = useState(false);
  const [editTmpl, setEditTmpl] = useState('verification');
  const [preview, setPreview] = useState<Template | null>(null);
  const [previewErr, setPreviewErr] = useState<ApiError | null>(null);

  useEffect(() => {
    api<SettingsData>('GET', '/api/settings').then(setS, (x) => setErr(x));
  }, []);
  if (!s) return err ? <Errors err={err} /> : <p class="muted">Loading…</p>;
  const set = (p: Partial<SettingsData>) => setS({ ...s, ...p });
  const save = async (e: Event) => {
    e.preventDefault();
    try {
      const body: any = { ...s, smtp: { ...s.smtp } };
      if (!body.smtp.password) delete body.smtp.password; // unchanged
      setS(await api<SettingsData>('PATCH', '/api/settings', body));
      setErr(null);
      setSaved('Saved.');
      setTimeout(() => setSaved(''), 3000);
    } catch (x) {
      setErr(x as ApiError);
    }
  };
  const sendTest = async () => {
    setSending(true);
    setTestMsg(null);
    try {
      await api('POST', '/api/settings/test/email', { to, template: tmpl });
      setTestMsg({ ok: true, text: 'Test email sent to ' + to + '.' });
    } catch (x) {
      const e = x as ApiError;
      setTestMsg({ ok: false, text: e.data.to?.message || e.message });
    }
    setSending(false);
  };
  const t = s.templates[editTmpl] || { subject: '', html: '', text: '' };
  const setT = (p: Partial<Template>) => set({ templates: { ...s.templates, [editTmpl]: { ...t, ...p } } });

  return (
    <form class="settings" onSubmit={save}>
      <header class="pagehead">
        <h2>Settings</h2>
        <div class="actions">
          {saved && <span class="ok" role="status">{saved}</span>}
          <Button type="submit" primary>Save settings</Button>
        </div>
      </header>
      <div class="tabs" role="tablist">
        {(
          [
            ['app', 'Application'],
            ['mail', 'Mail (SMTP)'],
            ['templates', 'Email templates'],
            ['server', 'Server'],
          ] as const
        ).map(([k, l]) => (
          <button type="button" role="tab" aria-selected={tab === k} class={tab === k ? 'tab active' : 'tab'} key={k} onClick={() => setTab(k)}>{l}</button>
        ))}
      </div>
      {tab === 'app' && (
        <section>
          <Input label="Application name" name="appName" value={s.appName} onInput={(v) => set({ appName: v })} />
          <Input label="Application URL" name="appURL" value={s.appURL} placeholder={location.origin} hint="Where links in emails point; empty: the address Plinth serves." onInput={(v) => set({ appURL: v })} />
          <Input label="Email link URL (optional)" name="authLinkURL" value={s.authLinkURL} placeholder={(s.appURL || location.origin) + '/_/#/auth/{action}/{token}'} hint="For apps with their own confirmation pages: {action}, {collection} and {token} are replaced." onInput={(v) => set({ authLinkURL: v })} />
        </section>
      )}
      {tab === 'mail' && (
        <section>
          <div class="row wrap">
            <Input label="Sender name" name="senderName" value={s.sender.name} onInput={(v) => set({ sender: { ...s.sender, name: v } })} />
            <Input label="Sender address" name="senderAddress" type="email" value={s.sender.address} onInput={(v) => set({ sender: { ...s.sender, address: v } })} />
          </div>
          <div class="row wrap">
            <Input label="SMTP host" name="smtpHost" value={s.smtp.host} onInput={(v) => set({ smtp: { ...s.smtp, host: v } })} />
            <Input label="SMTP port" name="smtpPort" type="number" value={s.smtp.port || ''} onInput={(v) => set({ smtp: { ...s.smtp, port: Number(v) || 0 } })} />
            <Select label="Encryption" name="smtpTLS" value={s.smtp.tls || 'starttls'} options={[['starttls', 'STARTTLS'], ['tls', 'TLS'], ['none', 'None (loopback only)']]} onChange={(v) => set({ smtp: { ...s.smtp, tls: v } })} />
          </div>
          <div class="row wrap">
            <Input label="SMTP username" name="smtpUser" value={s.smtp.username} onInput={(v) => set({ smtp: { ...s.smtp, username: v } })} />
            <Input label="SMTP password" name="smtpPassword" type="password" value={s.smtp.password || ''} placeholder="unchanged" onInput={(v) => set({ smtp: { ...s.smtp, password: v } })} />
          </div>
          <fieldset class="testmail">
            <legend>Send a test email</legend>
            <p class="muted">Uses the saved settings: save first.</p>
            <div class="row wrap">
              <Input label="To" name="testTo" type="email" value={to} onInput={setTo} />
              <Select label="Template" name="testTemplate" value={tmpl} options={TEMPLATES} onChange={setTmpl} />
              <Button onClick={sendTest} disabled={sending || !to}>{sending ? 'Sending…' : 'Send test email'}</Button>
            </div>
            {testMsg && <p class={testMsg.ok ? 'ok' : 'error'} role="status">{testMsg.text}</p>}
          </fieldset>
        </section>
      )}
      {tab === 'templates' && (
        <section>
          <Select label="Template" name="editTemplate" value={editTmpl} options={TEMPLATES} onChange={(v) => { setEditTmpl(v); setPreview(null); }} />
          <p class="muted">Go template syntax: {'{{.AppName}} {{.AppURL}} {{.Email}} {{.Link}} {{.Token}} {{.Code}}'}. Empty subject: the built-in template.</p>
          <Input label="Subject" name="tmplSubject" value={t.subject} onInput={(v) => setT({ subject: v })} />
          <div class="field">
            <label for="tmpl-text">Text body</label>
            <textarea id="tmpl-text" class="code" rows={6} value={t.text} onInput={(e) => setT({ text: (e.target as HTMLTextAreaElement).value })} />
          </div>
          <div class="field">
            <label for="tmpl-html">HTML body</label>
            <textarea id="tmpl-html" class="code" rows={6} value={t.html} onInput={(e) => setT({ html: (e.target as HTMLTextAreaElement).value })} />
          </div>
          <Button
            onClick={async () => {
              try {
                setPreview(await api<Template>('POST', '/api/settings/email/preview', { template: editTmpl, ...(t.subject ? t : {}) }));
                setPreviewErr(null);
              } catch (x) {
                setPreview(null);
                setPreviewErr(x as ApiError);
              }
            }}
          >
            Preview
          </Button>
          <Errors err={previewErr} />
          {preview && (
            <div class="preview">
              <p>
                <strong>Subject:</strong> {preview.subject}
              </p>
              <pre class="code">{preview.text}</pre>
              {/* The HTML body in a sandbox: no scripts, no same-origin access. */}
              <iframe title="HTML preview" sandbox="" srcdoc={preview.html} />
            </div>
          )}
        </section>
      )}
      {tab === 'server' && <ServerInfo />}
      <Errors err={err} />
    </form>
  );
}

interface Runtime {
  rateLimits: { authPerIP: number; authPerAccount: number; maxRequestsPerIP: number };
  corsOrigins: string[];
  maxBodyBytes: number;
  maxUploadBytes: number;
  storage: { kind: string; endpoint?: string; region?: string; bucket?: string; prefix?: string };
}

const limit = (n: number, unit: string) => (n < 0 ? 'no limit' : n + ' ' + unit);

// ServerInfo shows what Plinth was started with (flags and PLINTH_*
// variables: read-only here) and tests the file storage.
function ServerInfo() {
  const [rt, setRt] = useState<Runtime | null>(null);
  const [err, setErr] = useState<ApiError | null>(null);
  const [probe, setProbe] = useState<{ ok: boolean; text: string } | null>(null);
  useEffect(() => {
    api<Runtime>('GET', '/api/settings/runtime').then(setRt, (x) => setErr(x));
  }, []);
  if (!rt) return err ? <Errors err={err} /> : <p class="muted">Loading…</p>;
  const test = async () => {
    setProbe(null);
    try {
      const r = await api<{ message: string }>('POST', '/api/settings/test/storage');
      setProbe({ ok: true, text: r.message });
    } catch (x) {
      const e = x as ApiError;
      setProbe({ ok: false, text: e.message + (e.data.storage ? ' ' + e.data.storage.message : '') });
    }
  };
  const st = rt.storage;
  return (
    <section class="server">
      <p class="muted">Set when the server starts (flags or PLINTH_* environment variables); change them there and restart.</p>
      <dl class="facts">
        <dt>Sign-in attempts</dt><dd>{limit(rt.rateLimits.authPerIP, 'a minute per IP')}, {limit(rt.rateLimits.authPerAccount, 'a minute per account')}</dd>
        <dt>Requests in flight</dt><dd>{limit(rt.rateLimits.maxRequestsPerIP, 'per IP')}</dd>
        <dt>CORS origins</dt><dd>{rt.corsOrigins.length ? rt.corsOrigins.join(', ') : 'none'}</dd>
        <dt>Body limits</dt><dd>JSON {rt.maxBodyBytes} bytes, uploads {rt.maxUploadBytes} bytes</dd>
        <dt>File storage</dt><dd>{st.kind === 's3' ? `S3 bucket ${st.bucket} at ${st.endpoint || 'AWS'}${st.region ? ' (' + st.region + ')' : ''}${st.prefix ? ', prefix ' + st.prefix : ''}` : 'local disk in the data directory'}</dd>
      </dl>
      <Button onClick={test}>Test storage connection</Button>
      {probe && <p class={probe.ok ? 'ok' : 'error'} role="status">{probe.text}</p>}
    </section>
  );
}
