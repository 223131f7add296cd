// A consumer's API keys: a new key is shown once, right after it is made; lists show its prefix.
import { useEffect, useState } from 'preact/hooks';
import { call, enc, get } from '../api.ts';
import { canWrite, useSession } from '../session.ts';

export function ConsumerCredentials({ consumer }: { consumer: any }) {
  const writable = canWrite(useSession());
  const [keys, setKeys] = useState<any[]>([]);
  const [shown, setShown] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const base = `/consumers/${enc(consumer.id)}/key-auth`;
  const load = () => get(base).then((p) => setKeys(p.data)).catch((e) => setError(e.message));
  useEffect(() => { void load(); setShown(null); }, [consumer.id]);
  const create = async () => {
    try { const made = await call('POST', base, {}); setShown(made.key); await load(); } catch (e) { setError((e as Error).message); }
  };
  const remove = async (id: string) => { await call('DELETE', `${base}/${enc(id)}`).catch((e) => setError(e.message)); await load(); };
  return (
    <section aria-labelledby="cred-title" class="detail">
      <h4 id="cred-title">API keys (key-auth)</h4>
      {shown && (
        <div class="once" role="status">
          <p>New key — copy it now, it is not shown again:</p>
          <code data-testid="new-key">{shown}</code>
        </div>
      )}
      {error && <p role="alert" class="form-error">{error}</p>}
      <ul>
        {keys.map((k) => (
          <li key={k.id}><code>{k.key_prefix ? `${k.key_prefix}…` : k.key ?? '[REDACTED]'}</code> {k.expires_at ? `expires ${new Date(k.expires_at * 1000).toLocaleString()}` : ''}
            {writable && <button class="outline secondary small" onClick={() => remove(k.id)} aria-label={`Delete key ${k.key_prefix ?? k.id}`}>Delete</button>}</li>
        ))}
        {keys.length === 0 && <li>No keys.</li>}
      </ul>
      {writable && <button onClick={create}>New key</button>}
    </section>
  );
}
