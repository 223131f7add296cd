// Declarative configuration: a kong.yml imported in one transaction, exported back, and the
// history of versions with rollback. The admin API, the all-in-one's start-up file and the
// `portico config` CLI all go through these.
import { desc, lt } from 'drizzle-orm';
import { readFileSync } from 'node:fs';
import { AdminError, decodeSnapshot, ErrorCode, RESERVED_KEYS, setPath } from '@portico/shared';
import type { Db, Executor } from '../db/index.ts';
import { configVersions } from '../db/schema.ts';
import { versionBytes } from '../snapshot/history.ts';
import type { WriteContext } from '../services/audit.ts';
import { loadState, replaceConfig, type ReplaceResult } from './apply.ts';
import { exportDocument, exportYaml } from './export.ts';
import { DeclarativeError, ENTITY_ORDER, formatProblem, parseText, readDocument, readForSending, type ParsedText } from './file.ts';
import { diffStates, emptyState, planBody, planSummary, resolveFile, type State } from './state.ts';

export { DeclarativeError, formatProblem, readForSending, parseText, type Problem } from './file.ts';
export { resolveFile, emptyState, diffStates, planBody, planSummary, planSize, type State, type Plan } from './state.ts';
export { exportDocument, exportYaml } from './export.ts';
export { loadState } from './apply.ts';

/** Kong's code 14 body, with each problem also as one readable line (`path: message (line n)`). */
export function declarativeError(err: DeclarativeError): AdminError {
  const fields: Record<string, unknown> = {};
  for (const p of err.problems) if (p.path.length && !p.path.some((k) => RESERVED_KEYS.has(String(k)))) setPath(fields, p.path, p.message);
  const lines = err.problems.map(formatProblem);
  return AdminError.of(400, ErrorCode.INVALID_DECLARATIVE_CONFIG, `declarative config is invalid: ${lines.join('; ')}`, {
    fields, errors: err.problems.map((p) => ({ path: p.path, message: p.message, ...(p.line ? { line: p.line } : {}) })),
  } as never);
}

/** Offline validation (no store): every entity and every reference within the file. */
export function validateText(text: string, env: NodeJS.ProcessEnv, selectTags: readonly string[] = []): State {
  const { file, lineOf } = readForSending(text, env, selectTags);
  return resolveFile(file, emptyState(), lineOf);
}

export interface ImportOptions { dryRun?: boolean; lineOf?: ParsedText['lineOf']; env?: NodeJS.ProcessEnv | null }

/** Make the store what the document says (only its select tags' share of it). */
export async function importDocument(db: Db, ctx: WriteContext, doc: unknown, opts: ImportOptions = {}): Promise<ReplaceResult> {
  const file = readDocument(doc, opts.env ?? null, opts.lineOf);
  return replaceConfig(db, ctx, (current) => resolveFile(file, current, opts.lineOf), { selectTags: file.selectTags, dryRun: opts.dryRun, reason: 'config' });
}

/** PORTICO_DECLARATIVE_CONFIG: the operator's file, read with their environment, loaded at start. */
export async function importFile(db: Db, ctx: WriteContext, filePath: string, env: NodeJS.ProcessEnv): Promise<ReplaceResult> {
  const parsed = parseText(readFileSync(filePath, 'utf8'));
  return importDocument(db, ctx, parsed.doc, { lineOf: parsed.lineOf, env });
}

export async function exportConfig(ex: Executor, selectTags: readonly string[] = []): Promise<string> {
  return exportYaml(await loadState(ex), selectTags);
}

// ---------------------------------------------------------------------------------------------
// History: one row per published version in config_versions (the snapshot builder writes them),
// so a version is exactly what data planes ran.

export interface VersionInfo { version: number; hash: string; built_at: number; size_bytes: number; changed_by: string[] | null; summary: string | null }

export async function listVersions(ex: Executor, size: number, before?: number): Promise<VersionInfo[]> {
  return ex.select({
    version: configVersions.version, hash: configVersions.hash, built_at: configVersions.built_at,
    size_bytes: configVersions.size_bytes, changed_by: configVersions.changed_by, summary: configVersions.summary,
  }).from(configVersions).where(before ? lt(configVersions.version, before) : undefined).orderBy(desc(configVersions.version)).limit(size);
}

/** The entities of version `v`, as stored then; 404 when it is not (or no longer) kept. */
export async function versionState(ex: Executor, v: number): Promise<{ state: State; hash: string }> {
  const bytes = await versionBytes(ex, v);
  if (!bytes) throw AdminError.message(404, `version ${v} is not in the history (kept: the latest PORTICO_CONFIG_HISTORY versions)`);
  const snapshot = decodeSnapshot(bytes);
  const state = emptyState();
  for (const t of ENTITY_ORDER) state[t] = (snapshot.config[t] ?? []) as State[typeof t];
  return { state, hash: snapshot.hash };
}

export async function versionDocument(ex: Executor, v: number): Promise<{ hash: string; doc: Record<string, unknown> }> {
  const { state, hash } = await versionState(ex, v);
  return { hash, doc: exportDocument(state) };
}

export async function diffVersions(ex: Executor, a: number, b: number) {
  const plan = diffStates((await versionState(ex, a)).state, (await versionState(ex, b)).state);
  return { from: a, to: b, summary: planSummary(plan), changes: planBody(plan) };
}

/** A new version whose content is version `v`'s (history stays linear), reaching DPs like any write. */
export async function rollbackTo(db: Db, ctx: WriteContext, v: number): Promise<ReplaceResult> {
  const { state } = await versionState(db, v);
  return replaceConfig(db, ctx, () => state, { exact: true, reason: `rollback to ${v}` });
}
