// `portico config …`: a kong.yml kept in Git, checked offline, compared with and synced to a
// running gateway through its admin API. The file is read here (templates substituted with this
// shell's environment), sent as JSON; the gateway computes the minimal change and applies it in
// one transaction. Exit codes for CI: 0 done / no changes, 1 changes found (diff --exit-code),
// 2 an error (bad file, unreachable or refusing gateway).
import { readFileSync, writeFileSync } from 'node:fs';
import { styleText } from 'node:util';
import { Command, Option } from 'commander';
import { DeclarativeError, formatProblem, readForSending, validateText, type Problem } from '../declarative/index.ts';

export const EXIT = { OK: 0, CHANGES: 1, ERROR: 2 } as const;
const DEFAULT_ADMIN_URL = 'http://127.0.0.1:8001';

/** A failure the CLI reports in one message and exits 2 on. */
class CliError extends Error {}

interface Globals { adminUrl: string; token?: string; selectTag: string[]; color: boolean }

type Style = Parameters<typeof styleText>[0];

export interface CliIo { out(s: string): void; err(s: string): void; env: NodeJS.ProcessEnv; isTTY: boolean }

const defaultIo: CliIo = {
  out: (s) => process.stdout.write(s + '\n'),
  err: (s) => process.stderr.write(s + '\n'),
  env: process.env,
  isTTY: !!process.stdout.isTTY,
};

function readFileText(file: string): string {
  try { return readFileSync(file === '-' ? 0 : file, 'utf8'); } catch (err) {
    throw new CliError(`cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

async function request(g: Globals, method: string, path: string, body?: unknown): Promise<{ status: number; body: any }> {
  const headers: Record<string, string> = { accept: 'application/json' };
  if (g.token) headers['Kong-Admin-Token'] = g.token;
  if (body !== undefined) headers['content-type'] = 'application/json';
  let r: Response;
  try {
    r = await fetch(new URL(path, g.adminUrl.endsWith('/') ? g.adminUrl : g.adminUrl + '/'), { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch (err) {
    throw new CliError(`cannot reach the admin API at ${g.adminUrl}: ${(err as Error & { cause?: Error }).cause?.message ?? (err as Error).message}`);
  }
  const text = await r.text();
  let parsed: unknown = text;
  try { parsed = text ? JSON.parse(text) : null; } catch { /* not JSON */ }
  return { status: r.status, body: parsed };
}

/** The gateway's refusal, with lines from the local file (the gateway saw JSON) for every path it names. */
function refusal(res: { status: number; body: any }, lineOf?: (p: (string | number)[]) => number | undefined): CliError {
  const errors = res.body?.errors as Problem[] | undefined;
  if (Array.isArray(errors) && errors.length) {
    return new CliError(`the gateway refused the file (${res.status}):\n` + errors.map((p) => '  ' + formatProblem({ ...p, line: lineOf?.(p.path) ?? p.line })).join('\n'));
  }
  return new CliError(`the gateway answered ${res.status}: ${res.body?.message ?? JSON.stringify(res.body)}`);
}

function show(v: unknown): string {
  return v === undefined ? '∅' : JSON.stringify(v);
}

/** A readable diff: one line per entity, and the fields that change under an update. */
export function renderChanges(changes: Record<string, { created: any[]; updated: any[]; deleted: any[] }>, paint: (style: Style, s: string) => string): string[] {
  const lines: string[] = [];
  for (const [type, c] of Object.entries(changes)) {
    const kind = type.replace(/s$/, '');
    for (const e of c.created) lines.push(paint('green', `+ ${kind} ${e.name}`));
    for (const u of c.updated) {
      lines.push(paint('yellow', `~ ${kind} ${u.name}`));
      for (const k of new Set([...Object.keys(u.before), ...Object.keys(u.after)])) {
        if (k === 'updated_at' || k === 'created_at') continue;
        if (JSON.stringify(u.before[k]) === JSON.stringify(u.after[k])) continue;
        lines.push(`    ${k}: ${paint('red', show(u.before[k]))} → ${paint('green', show(u.after[k]))}`);
      }
    }
    for (const e of c.deleted) lines.push(paint('red', `- ${kind} ${e.name}`));
  }
  return lines;
}

export function buildConfigCommand(io: CliIo = defaultIo, exit: (code: number) => void = (c) => { process.exitCode = c; }): Command {
  const cmd = new Command('config')
    .description('declarative configuration (kong.yml): validate, diff, sync and dump through the admin API')
    .addOption(new Option('--admin-url <url>', 'admin API address').env('PORTICO_ADMIN_URL').default(DEFAULT_ADMIN_URL))
    .addOption(new Option('--token <token>', 'admin token, sent as Kong-Admin-Token').env('PORTICO_ADMIN_TOKEN'))
    .option('--select-tag <tag>', 'manage only entities carrying this tag (repeat for several: all must match)', (v: string, acc: string[]) => [...acc, v], [] as string[])
    .option('--no-color', 'plain output');

  const globals = (): Globals => {
    const o = cmd.opts();
    return { adminUrl: o.adminUrl, token: o.token, selectTag: o.selectTag, color: o.color !== false && io.isTTY && !io.env.NO_COLOR };
  };
  const paint = (g: Globals) => (style: Style, s: string) => (g.color ? styleText(style, s) : s);

  /** Run an action; its CliError or file problems become a message and exit 2. */
  const run = (action: (...args: any[]) => Promise<number>) => async (...args: any[]) => {
    try {
      exit(await action(...args));
    } catch (err) {
      if (err instanceof DeclarativeError) io.err(`invalid file:\n${err.problems.map((p) => '  ' + formatProblem(p)).join('\n')}`);
      else if (err instanceof CliError) io.err(err.message);
      else io.err(`error: ${(err as Error).stack ?? err}`);
      exit(EXIT.ERROR);
    }
  };

  const send = async (g: Globals, file: string, dryRun: boolean) => {
    const read = readForSending(readFileText(file), io.env, g.selectTag);
    const res = await request(g, 'POST', dryRun ? '/config?dry_run=1' : '/config', read.doc);
    if (res.status >= 300) throw refusal(res, read.lineOf);
    return res.body;
  };

  cmd.command('validate').argument('<file>', 'kong.yml (YAML or JSON; - for stdin)')
    .description('check a file offline: schemas, references, duplicates (no gateway needed)')
    .action(run(async (file: string) => {
      const state = validateText(readFileText(file), io.env, globals().selectTag);
      const count = Object.values(state).reduce((n, l) => n + l.length, 0);
      io.out(`${file}: valid (${count} entities)`);
      return EXIT.OK;
    }));

  cmd.command('diff').argument('<file>', 'kong.yml')
    .description('show what sync would change, and change nothing')
    .option('--exit-code', 'exit 1 when there are changes')
    .action(run(async (file: string, opts: { exitCode?: boolean }) => {
      const g = globals();
      const body = await send(g, file, true);
      const lines = renderChanges(body.changes ?? {}, paint(g));
      for (const l of lines) io.out(l);
      io.out(`Summary: ${body.summary}`);
      return opts.exitCode && lines.length ? EXIT.CHANGES : EXIT.OK;
    }));

  cmd.command('sync').argument('<file>', 'kong.yml')
    .description('make the gateway match the file: one transaction, one new config version')
    .action(run(async (file: string) => {
      const g = globals();
      const body = await send(g, file, false);
      io.out(body.version ? `synced: ${body.summary} (config version ${body.version})` : 'in sync: no changes');
      return EXIT.OK;
    }));

  cmd.command('dump')
    .description('write the gateway\'s configuration as a kong.yml')
    .option('-o, --output <file>', 'write here instead of stdout')
    .action(run(async (opts: { output?: string }) => {
      const g = globals();
      const q = g.selectTag.length ? `?select_tags=${encodeURIComponent(g.selectTag.join(','))}` : '';
      const res = await request(g, 'GET', `/config${q}`);
      if (res.status !== 200) throw refusal(res);
      if (opts.output) { writeFileSync(opts.output, res.body.config); io.err(`wrote ${opts.output}`); } else io.out(res.body.config.trimEnd());
      return EXIT.OK;
    }));

  cmd.command('history')
    .description('list config versions: who, when, what')
    .action(run(async () => {
      const res = await request(globals(), 'GET', '/config/versions');
      if (res.status !== 200) throw refusal(res);
      for (const v of res.body.data) {
        io.out(`${String(v.version).padStart(6)}  ${new Date(v.built_at).toISOString()}  ${v.hash.slice(0, 12)}  ${(v.changed_by ?? []).join(',') || '-'}  ${v.summary ?? ''}`);
      }
      return EXIT.OK;
    }));

  cmd.command('rollback').argument('<version>', 'the version to return to')
    .description('write a new version equal to an earlier one')
    .action(run(async (version: string) => {
      if (!/^[1-9]\d*$/.test(version)) throw new CliError(`version: expected a number, got '${version}'`);
      const res = await request(globals(), 'POST', '/config/rollback', { version: Number(version) });
      if (res.status >= 300) throw refusal(res);
      io.out(res.body.version ? `rolled back to ${version}: ${res.body.summary} (config version ${res.body.version})` : 'already at that content: no changes');
      return EXIT.OK;
    }));

  cmd.exitOverride();
  for (const c of cmd.commands) c.exitOverride();
  return cmd;
}
