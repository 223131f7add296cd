// Reading a declarative config file (Kong's kong.yml, reference/kong-compat.md §5.1): YAML or
// JSON text → a document, decK's `${{ env "X" }}` templates substituted, then flattened into one
// list per entity type, each item remembering where it sat in the file (for error paths and
// lines) and which parent it was nested under (its implicit foreign key).
import { LineCounter, parseDocument, type Document } from 'yaml';
import { RESERVED_KEYS, reservedKeyMessage } from '@portico/shared';

/** A problem found in the file: the path of the bad field, what is wrong, and its line (YAML). */
export interface Problem { path: (string | number)[]; message: string; line?: number }

export const FORMAT_VERSION = '3.0';
/** Kong reads these; Portico writes 3.0 and reads the older ones' (identical) entity shapes too. */
const FORMAT_VERSIONS = ['1.1', '2.1', '3.0'];
/** An anchor expanded more often than this is refused (the "billion laughs" file). */
const MAX_ALIAS_COUNT = 1_000;
const MAX_SYNTAX_ERRORS = 3;
/** Deepest nesting read (the deepest entity field, a plugin's config, needs well under this). */
const MAX_DEPTH = 32;

/**
 * Entity types in the order a write must create them: every parent before its children, and
 * certificates before the services, upstreams and plugins that name them by id.
 */
export const ENTITY_ORDER = [
  'certificates', 'snis', 'ca_certificates', 'services', 'routes', 'consumers', 'upstreams', 'targets', 'plugins',
  'keyauth_credentials', 'jwt_secrets', 'basicauth_credentials', 'acls',
] as const;
export type EntityType = (typeof ENTITY_ORDER)[number];

/** Children that may be nested under a parent, and the foreign key the nesting implies. */
export const NESTED: Partial<Record<EntityType, Partial<Record<EntityType, string>>>> = {
  services: { routes: 'service', plugins: 'service' },
  routes: { plugins: 'route' },
  consumers: { plugins: 'consumer', keyauth_credentials: 'consumer', jwt_secrets: 'consumer', basicauth_credentials: 'consumer', acls: 'consumer' },
  upstreams: { targets: 'upstream' },
  certificates: { snis: 'certificate' },
};

/**
 * Nested children that may be written as a bare string, meaning this field: a certificate's
 * `snis: [a.example, b.example]`, the shorthand Kong's admin API accepts, beside decK's `[{name: …}]`.
 */
const BARE_CHILD_FIELD: Partial<Record<EntityType, string>> = { snis: 'name' };

/** Kong entities Portico does not have yet: accepted only when empty, so decK's files load. */
const NOT_YET = ['vaults'];
const FILE_KEYS = ['_format_version', '_transform', '_comment', '_info', '_workspace', '_plugin_configs', '_konnect'];

export interface Item {
  type: EntityType;
  /** The entity's own fields (nested children removed). */
  input: Record<string, unknown>;
  path: (string | number)[];
  /** Set when nested: the parent's item and the foreign key field it fills. */
  parent?: { item: Item; field: string };
  /** Filled while resolving: the id the entity gets. */
  id?: string;
}

export interface DeclarativeFile {
  items: Record<EntityType, Item[]>;
  /** `_info.select_tags`: the file manages only entities carrying all of these (and adds them). */
  selectTags: string[];
  /** `_transform: false`: secrets are already in their stored form (hashed passwords). */
  transform: boolean;
}

export class DeclarativeError extends Error {
  constructor(public readonly problems: Problem[]) {
    super(problems.map(formatProblem).join('\n'));
    this.name = 'DeclarativeError';
  }
}

export function formatPath(path: (string | number)[]): string {
  let out = '';
  for (const p of path) out += typeof p === 'number' ? `[${p}]` : (out ? `.${p}` : p);
  return out;
}

export function formatProblem(p: Problem): string {
  return `${p.path.length ? formatPath(p.path) + ': ' : ''}${p.message}${p.line ? ` (line ${p.line})` : ''}`;
}

/** The parsed text and a way back from a path to its line. */
export interface ParsedText { doc: unknown; lineOf(path: (string | number)[]): number | undefined }

/** Parse YAML or JSON (JSON is YAML 1.2) into plain values; syntax errors carry their line. */
export function parseText(text: string): ParsedText {
  const lineCounter = new LineCounter();
  const document: Document = parseDocument(text, { lineCounter, uniqueKeys: true });
  if (document.errors.length) {
    // The first errors say where it went wrong; the rest are usually their echo.
    throw new DeclarativeError(document.errors.slice(0, MAX_SYNTAX_ERRORS).map((e) => ({
      path: [], message: `invalid YAML: ${e.message.split('\n')[0].replace(/ at line \d+, column \d+:?$/, '')}`, line: e.linePos?.[0].line,
    })));
  }
  let doc: unknown;
  try {
    doc = document.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
  } catch (err) {
    throw new DeclarativeError([{ path: [], message: `invalid YAML: ${(err as Error).message}` }]);
  }
  return {
    doc,
    lineOf(path) {
      // The deepest node that exists on the path: a missing field points at its entity.
      for (let n = path.length; n >= 0; n--) {
        const node = document.getIn(path.slice(0, n), true) as { range?: [number, number, number] } | undefined;
        if (node?.range) return lineCounter.linePos(node.range[0]).line;
      }
      return undefined;
    },
  };
}

const TEMPLATE = /\$\{\{\s*env\s+"([^"]*)"\s*\}\}/g;

/**
 * decK's `${{ env "DECK_X" }}` for secrets kept out of the file: substituted when the file is read
 * (the CLI, or the file named by PORTICO_DECLARATIVE_CONFIG), never stored as the template. Only
 * PORTICO_ and DECK_ variables may be named, so a file cannot read the rest of the environment.
 * With `env` null (a file sent to the admin API) a template is an error: the server's environment
 * is not the sender's to read.
 */
export function substituteEnv(value: unknown, env: NodeJS.ProcessEnv | null, problems: Problem[], path: (string | number)[] = []): unknown {
  if (typeof value === 'string') {
    if (!value.includes('${{')) return value;
    return value.replace(TEMPLATE, (_m, name: string) => {
      if (env === null) {
        problems.push({ path, message: `environment template '${name}' must be substituted before the file is sent (portico config sync does it)` });
      } else if (!/^(PORTICO|DECK)_[A-Z0-9_]+$/.test(name)) {
        problems.push({ path, message: `environment template '${name}': only PORTICO_* and DECK_* variables may be named` });
      } else if (env[name] === undefined) {
        problems.push({ path, message: `environment variable ${name} is not set` });
      } else {
        return env[name]!;
      }
      return '';
    });
  }
  if (value && typeof value === 'object' && path.length >= MAX_DEPTH) {
    problems.push({ path, message: `nested deeper than ${MAX_DEPTH} levels` });
    return null;
  }
  if (Array.isArray(value)) return value.map((v, i) => substituteEnv(v, env, problems, [...path, i]));
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      if (RESERVED_KEYS.has(k)) { problems.push({ path: [...path.map(String), '(key)'], message: reservedKeyMessage(k) }); continue; }
      out[k] = substituteEnv(v, env, problems, [...path, k]);
    }
    return out;
  }
  return value;
}

const isRecord = (v: unknown): v is Record<string, unknown> => !!v && typeof v === 'object' && !Array.isArray(v);

function emptyItems(): Record<EntityType, Item[]> {
  return Object.fromEntries(ENTITY_ORDER.map((t) => [t, []])) as unknown as Record<EntityType, Item[]>;
}

/** Flatten a document into items per entity type. Problems are collected, never thrown one by one. */
export function flattenDocument(doc: unknown, problems: Problem[]): DeclarativeFile {
  const items = emptyItems();
  const file: DeclarativeFile = { items, selectTags: [], transform: true };
  if (!isRecord(doc)) {
    problems.push({ path: [], message: 'expected a declarative configuration (an object with _format_version)' });
    return file;
  }
  const version = doc._format_version;
  if (version === undefined) problems.push({ path: ['_format_version'], message: 'required field missing' });
  else if (typeof version !== 'string' || !FORMAT_VERSIONS.includes(version)) {
    problems.push({ path: ['_format_version'], message: `expected one of: ${FORMAT_VERSIONS.join(', ')}` });
  }
  if (doc._transform !== undefined && typeof doc._transform !== 'boolean') problems.push({ path: ['_transform'], message: 'expected a boolean' });
  file.transform = doc._transform !== false;
  if (doc._workspace !== undefined && doc._workspace !== 'default') {
    problems.push({ path: ['_workspace'], message: "Portico has one workspace: omit _workspace or write 'default'" });
  }
  if (doc._info !== undefined) {
    const info = doc._info;
    const tags = isRecord(info) ? info.select_tags : undefined;
    if (!isRecord(info) || (tags !== undefined && (!Array.isArray(tags) || tags.some((t) => typeof t !== 'string' || t === '')))) {
      problems.push({ path: ['_info', 'select_tags'], message: 'expected an array of tags' });
    } else if (Array.isArray(tags)) file.selectTags = tags as string[];
  }
  for (const [key, value] of Object.entries(doc)) {
    if (FILE_KEYS.includes(key)) continue;
    if (NOT_YET.includes(key)) {
      if (Array.isArray(value) && value.length === 0) continue;
      problems.push({ path: [key], message: `Portico has no ${key} entity yet` });
      continue;
    }
    if (!(ENTITY_ORDER as readonly string[]).includes(key)) {
      problems.push({ path: [key], message: 'unknown field' });
      continue;
    }
    collect(key as EntityType, value, [key], undefined);
  }

  function collect(type: EntityType, list: unknown, path: (string | number)[], parent: Item['parent']): void {
    if (list === null) return;
    if (!Array.isArray(list)) { problems.push({ path, message: 'expected an array' }); return; }
    list.forEach((given, i) => {
      const at = [...path, i];
      const bare = parent && BARE_CHILD_FIELD[type];
      const raw: unknown = bare && typeof given === 'string' ? { [bare]: given } : given;
      if (!isRecord(raw)) { problems.push({ path: at, message: 'expected an object' }); return; }
      const input: Record<string, unknown> = {};
      const children: [EntityType, unknown][] = [];
      for (const [k, v] of Object.entries(raw)) {
        if (k === '_comment' || k === '_ignore') continue;
        if (NESTED[type]?.[k as EntityType]) children.push([k as EntityType, v]);
        else input[k] = v;
      }
      if (parent) {
        if (input[parent.field] !== undefined) problems.push({ path: [...at, parent.field], message: `nested under a ${parent.item.type.slice(0, -1)}: omit ${parent.field}` });
        input[parent.field] = undefined;
      }
      if (file.selectTags.length) {
        const own = Array.isArray(input.tags) ? input.tags : [];
        input.tags = [...own, ...file.selectTags.filter((t) => !own.includes(t))];
      }
      const item: Item = { type, input, path: at, parent };
      items[type].push(item);
      for (const [childType, childList] of children) {
        collect(childType, childList, [...at, childType], { item, field: NESTED[type]![childType]! });
      }
    });
  }
  return file;
}

/**
 * What a client reads before sending a file: the document with templates substituted (what goes
 * over the wire), select tags added, its flattened form, and lines for the server's error paths.
 */
export function readForSending(text: string, env: NodeJS.ProcessEnv, selectTags: readonly string[] = []): { doc: Record<string, unknown>; file: DeclarativeFile; lineOf: ParsedText['lineOf'] } {
  const parsed = parseText(text);
  const problems: Problem[] = [];
  const doc = substituteEnv(parsed.doc, env, problems) as Record<string, unknown>;
  if (selectTags.length && isRecord(doc)) {
    const info = isRecord(doc._info) ? doc._info : {};
    const own = Array.isArray(info.select_tags) ? info.select_tags as string[] : [];
    doc._info = { ...info, select_tags: [...own, ...selectTags.filter((t) => !own.includes(t))] };
  }
  const file = flattenDocument(doc, problems);
  throwIfProblems(problems, parsed.lineOf);
  return { doc, file, lineOf: parsed.lineOf };
}

/** A parsed document → file; `lineOf` adds lines to problems when the document came from text. */
export function readDocument(doc: unknown, env: NodeJS.ProcessEnv | null, lineOf?: ParsedText['lineOf']): DeclarativeFile {
  const problems: Problem[] = [];
  const substituted = substituteEnv(doc, env, problems);
  const file = flattenDocument(substituted, problems);
  throwIfProblems(problems, lineOf);
  return file;
}

export function throwIfProblems(problems: Problem[], lineOf?: ParsedText['lineOf']): void {
  if (!problems.length) return;
  if (lineOf) for (const p of problems) p.line ??= lineOf(p.path);
  throw new DeclarativeError(problems);
}
