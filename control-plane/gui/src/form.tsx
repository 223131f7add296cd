// Forms generated from the admin API's schemas (`/schemas/{entity}`, `/schemas/plugins/{name}`):
// Kong's field-list shape, so a new plugin or entity field needs no UI code. The admin API's field
// errors (`fields`, shaped like the input) are shown beside the field they name.
import { useEffect, useState } from 'preact/hooks';
import { get } from './api.ts';

export interface FieldSpec {
  type: string; required?: boolean; default?: unknown; description?: string; one_of?: unknown[];
  fields?: FieldList; elements?: FieldSpec; reference?: string; auto?: boolean; encrypted?: boolean;
  write_only?: boolean; between?: [number, number]; gt?: number;
}
export type FieldList = Array<Record<string, FieldSpec>>;
export type Values = Record<string, unknown>;

export const entries = (list: FieldList) => list.map((f) => Object.entries(f)[0]);

const isEmpty = (v: unknown) => v === undefined || v === null || v === '' || (Array.isArray(v) && v.length === 0);

/** What the form sends: on create, empty fields are left out so the server's defaults apply. */
export function prune(values: Values, creating: boolean): Values {
  const out: Values = {};
  for (const [k, v] of Object.entries(values)) {
    if (v && typeof v === 'object' && !Array.isArray(v) && !('id' in (v as object))) {
      const inner = prune(v as Values, creating);
      if (!creating || Object.keys(inner).length) out[k] = inner;
    } else if (!isEmpty(v)) out[k] = v;
    else if (!creating) out[k] = Array.isArray(v) ? [] : null;
  }
  return out;
}

/** The error message for a field path, from Kong's `fields` object. */
function errorAt(errors: unknown, path: string[]): string | null {
  let e: any = errors;
  for (const p of path) { if (e == null || typeof e !== 'object') return null; e = e[p]; }
  if (e == null) return null;
  return typeof e === 'string' ? e : Array.isArray(e) ? e.filter(Boolean).join('; ') : null;
}

const fieldId = (path: string[]) => `f-${path.join('-')}`;

function ForeignSelect({ id, spec, value, onChange, invalid, describedBy }: { id: string; spec: FieldSpec; value: any; onChange: (v: unknown) => void; invalid: boolean; describedBy?: string }) {
  const [options, setOptions] = useState<Array<{ id: string; label: string }>>([]);
  useEffect(() => {
    get(`/${spec.reference}?size=1000`).then((p) => setOptions(p.data.map((e: any) => ({ id: e.id, label: e.name ?? e.username ?? e.id })))).catch(() => setOptions([]));
  }, [spec.reference]);
  return (
    <select id={id} aria-invalid={invalid || undefined} aria-describedby={describedBy} value={value?.id ?? ''} onChange={(e) => onChange((e.target as HTMLSelectElement).value ? { id: (e.target as HTMLSelectElement).value } : null)}>
      <option value="">(none)</option>
      {options.map((o) => <option key={o.id} value={o.id}>{o.label}</option>)}
    </select>
  );
}

function Field({ name, spec, path, value, onChange, errors, readOnly }: { name: string; spec: FieldSpec; path: string[]; value: any; onChange: (v: unknown) => void; errors: unknown; readOnly: boolean }) {
  const id = fieldId(path);
  const error = errorAt(errors, path);
  const help = error ? `${id}-error` : spec.description ? `${id}-help` : undefined;
  const common = { id, name: path.join('.'), disabled: readOnly, 'aria-required': spec.required || undefined, 'aria-invalid': error ? true : undefined, 'aria-describedby': help } as const;
  if (spec.type === 'record' && spec.fields) {
    return (
      <fieldset class="record">
        <legend>{name}</legend>
        <Fields list={spec.fields} path={path} values={(value as Values) ?? {}} onChange={(v) => onChange(v)} errors={errors} readOnly={readOnly} />
        {error && <small class="field-error" id={`${id}-error`}>{error}</small>}
      </fieldset>
    );
  }
  let input;
  const text = (e: Event) => (e.target as HTMLInputElement).value;
  if (spec.type === 'boolean') {
    return (
      <label class="check">
        <input type="checkbox" role="switch" {...common} checked={Boolean(value ?? spec.default)} onChange={(e) => onChange((e.target as HTMLInputElement).checked)} />
        {name}
        {spec.description && <small id={`${id}-help`}>{spec.description}</small>}
        {error && <small class="field-error" id={`${id}-error`}>{error}</small>}
      </label>
    );
  } else if (spec.type === 'foreign') {
    input = <ForeignSelect id={id} spec={spec} value={value} onChange={onChange} invalid={Boolean(error)} describedBy={help} />;
  } else if (spec.one_of && spec.type !== 'array' && spec.type !== 'set') {
    input = (
      <select {...common} value={value == null ? '' : String(value)} onChange={(e) => { const v = text(e); onChange(v === '' ? null : spec.type === 'integer' ? Number(v) : v); }}>
        <option value="">{spec.default != null ? `(default: ${spec.default})` : '(none)'}</option>
        {spec.one_of.map((o) => <option key={String(o)} value={String(o)}>{String(o)}</option>)}
      </select>
    );
  } else if (spec.type === 'array' || spec.type === 'set') {
    // One element per line: readable for paths, hosts, methods, tags.
    input = (
      <textarea {...common} rows={2} placeholder={spec.default ? JSON.stringify(spec.default) : 'one per line'} value={Array.isArray(value) ? value.map((x) => typeof x === 'string' ? x : JSON.stringify(x)).join('\n') : ''}
        onInput={(e) => {
          const lines = text(e).split('\n').map((s) => s.trim()).filter(Boolean);
          onChange(lines.map((l) => (spec.elements?.type === 'integer' || spec.elements?.type === 'number') && /^-?\d+(\.\d+)?$/.test(l) ? Number(l) : l));
        }} />
    );
  } else if (spec.type === 'integer' || spec.type === 'number') {
    // Sent as typed when it is a number, as text otherwise, so the server's own error is shown.
    input = <input type="text" inputMode="decimal" {...common} placeholder={spec.default != null ? String(spec.default) : ''} value={value == null ? '' : String(value)}
      onInput={(e) => { const v = text(e).trim(); onChange(v === '' ? null : /^-?\d+(\.\d+)?$/.test(v) ? Number(v) : v); }} />;
  } else if (spec.type === 'string') {
    const shown = { ...common, autoComplete: 'off', placeholder: spec.default != null ? String(spec.default) : '', value: value == null ? '' : String(value), onInput: (e: Event) => onChange(text(e)) };
    input = spec.encrypted ? <input type="password" {...shown} /> : <input type="text" {...shown} />;
  } else {
    // Maps and anything else: JSON.
    input = <textarea {...common} rows={3} placeholder="JSON" value={value == null ? '' : typeof value === 'string' ? value : JSON.stringify(value, null, 1)}
      onInput={(e) => { const v = text(e); try { onChange(v.trim() ? JSON.parse(v) : null); } catch { onChange(v); } }} />;
  }
  return (
    <div class="field">
      <label for={id} class={spec.required ? 'required' : undefined}>{name}</label>
      {input}
      {error ? <small class="field-error" id={`${id}-error`}>{error}</small> : spec.description && <small id={`${id}-help`}>{spec.description}</small>}
    </div>
  );
}

export function Fields({ list, path, values, onChange, errors, readOnly, skip = [] }: { list: FieldList; path: string[]; values: Values; onChange: (v: Values) => void; errors: unknown; readOnly: boolean; skip?: string[] }) {
  return (
    <>
      {entries(list).filter(([name, spec]) => !spec.auto && !skip.includes(name)).map(([name, spec]) => (
        <Field key={name} name={name} spec={spec} path={[...path, name]} value={values[name]} errors={errors} readOnly={readOnly}
          onChange={(v) => onChange({ ...values, [name]: v })} />
      ))}
    </>
  );
}

/** Field errors the form does not show beside a field (an entity check, an unknown field). */
export function unplacedErrors(list: FieldList, errors: Record<string, unknown> | undefined): string[] {
  if (!errors) return [];
  const names = new Set(entries(list).map(([n]) => n));
  return Object.entries(errors).filter(([k]) => !names.has(k)).map(([k, v]) => `${k}: ${typeof v === 'string' ? v : JSON.stringify(v)}`);
}
