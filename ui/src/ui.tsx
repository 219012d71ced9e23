import { ComponentChildren } from 'preact';
import { useEffect, useRef } from 'preact/hooks';
import { ApiError } from './api';

export function go(path: string) {
  location.hash = '#/' + path;
}

let seq = 0;
const uid = () => 'f' + ++seq;

export function Button(p: { children: ComponentChildren; onClick?: () => void; primary?: boolean; danger?: boolean; type?: 'button' | 'submit'; disabled?: boolean; small?: boolean; title?: string }) {
  return (
    <button type={p.type || 'button'} class={'btn' + (p.primary ? ' primary' : '') + (p.danger ? ' danger' : '') + (p.small ? ' small' : '')} onClick={p.onClick} disabled={p.disabled} title={p.title}>
      {p.children}
    </button>
  );
}

export function Input(p: { label: string; value: string | number | undefined | null; onInput: (v: string) => void; type?: string; placeholder?: string; autoFocus?: boolean; error?: string; name?: string; list?: string; hint?: string }) {
  const id = uid();
  return (
    <div class={'field' + (p.error ? ' invalid' : '')}>
      <label for={id}>{p.label}</label>
      <input id={id} name={p.name || p.label} type={(p.type || 'text') as any} value={p.value ?? ''} placeholder={p.placeholder} autoFocus={p.autoFocus} list={p.list}
        onInput={(e) => p.onInput((e.target as HTMLInputElement).value)} aria-invalid={p.error ? 'true' : undefined} />
      {p.hint && <small class="muted">{p.hint}</small>}
      {p.error && <small class="error">{p.error}</small>}
    </div>
  );
}

export function Check(p: { label: string; checked: boolean | undefined; onChange: (v: boolean) => void; name?: string }) {
  return (
    <label class="check">
      <input type="checkbox" name={p.name || p.label} checked={!!p.checked} onChange={(e) => p.onChange((e.target as HTMLInputElement).checked)} /> {p.label}
    </label>
  );
}

export function Select(p: { label: string; value: string; options: (string | [string, string])[]; onChange: (v: string) => void; disabled?: boolean; name?: string }) {
  const id = uid();
  return (
    <div class="field">
      <label for={id}>{p.label}</label>
      <select id={id} name={p.name || p.label} value={p.value} disabled={p.disabled} onChange={(e) => p.onChange((e.target as HTMLSelectElement).value)}>
        {p.options.map((o) => {
          const [v, l] = Array.isArray(o) ? o : [o, o];
          return <option key={v} value={v}>{l}</option>;
        })}
      </select>
    </div>
  );
}

// Errors shows an API error: the message and every field error, as text.
export function Errors({ err, skip }: { err: ApiError | null | undefined; skip?: (key: string) => boolean }) {
  if (!err) return null;
  const entries = Object.entries(err.data || {}).filter(([k]) => !skip || !skip(k));
  return (
    <div class="alert" role="alert">
      <strong>{err.message}</strong>
      {entries.length > 0 && (
        <ul>
          {entries.map(([k, v]) => (
            <li key={k}>
              <code>{k}</code>: {v.message}
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}

// useDialog moves focus into a dialog when it opens, closes it on
// Escape, and gives focus back to what had it before.
function useDialog(onClose: () => void) {
  const ref = useRef<HTMLDivElement>(null);
  const close = useRef(onClose);
  close.current = onClose;
  useEffect(() => {
    const before = document.activeElement as HTMLElement | null;
    const first = ref.current?.querySelector<HTMLElement>('input:not([type=hidden]), select, textarea') || ref.current?.querySelector<HTMLElement>('button');
    first?.focus();
    const onKey = (e: KeyboardEvent) => {
      if (e.key === 'Escape') {
        e.stopPropagation();
        close.current();
      }
    };
    const el = ref.current;
    el?.addEventListener('keydown', onKey);
    return () => {
      el?.removeEventListener('keydown', onKey);
      before?.focus?.();
    };
  }, []);
  return ref;
}

export function Modal(p: { title: string; children: ComponentChildren; onClose: () => void }) {
  const ref = useDialog(p.onClose);
  return (
    <div class="overlay" onClick={(e) => e.target === e.currentTarget && p.onClose()}>
      <div class="modal" role="dialog" aria-modal="true" aria-label={p.title} ref={ref}>
        <h3>{p.title}</h3>
        {p.children}
      </div>
    </div>
  );
}

export function Drawer(p: { title: string; children: ComponentChildren; onClose: () => void }) {
  const ref = useDialog(p.onClose);
  return (
    <div class="overlay" onClick={(e) => e.target === e.currentTarget && p.onClose()}>
      <div class="drawer" role="dialog" aria-modal="true" aria-label={p.title} ref={ref}>
        <header>
          <h3>{p.title}</h3>
          <Button small onClick={p.onClose} title="Close">✕</Button>
        </header>
        {p.children}
      </div>
    </div>
  );
}
