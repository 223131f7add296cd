// The declarative file's pure logic: reading, templates, nesting, resolution and the diff, with no
// store (the e2e tests drive the same code through the admin API and the CLI).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { stringify } from 'yaml';
import { DeclarativeError, readForSending, type Problem } from './file.ts';
import { diffStates, emptyState, planSize, planSummary, resolveFile, type State } from './state.ts';
import { exportDocument } from './export.ts';

const RUNS = Number(process.env.PORTICO_FUZZ_RUNS ?? 100);

function problems(f: () => unknown): Problem[] {
  try { f(); } catch (err) {
    if (err instanceof DeclarativeError) return err.problems;
    throw err;
  }
  assert.fail('expected a DeclarativeError');
}
const read = (text: string, env: NodeJS.ProcessEnv = {}, tags: string[] = []) => readForSending(text, env, tags);
const resolve = (text: string, current: State = emptyState(), env: NodeJS.ProcessEnv = {}) => {
  const r = read(text, env);
  return resolveFile(r.file, current, r.lineOf);
};

describe('reading a file', () => {
  it('substitutes PORTICO_ and DECK_ templates only, and names what is missing', () => {
    const { doc } = read('_format_version: "3.0"\nconsumers:\n- username: \'${{ env "PORTICO_U" }}-${{ env "DECK_V" }}\'\n', { PORTICO_U: 'ann', DECK_V: 'x' });
    assert.deepEqual((doc.consumers as any)[0].username, 'ann-x');
    const ps = problems(() => read('_format_version: "3.0"\nconsumers:\n- username: \'${{ env "HOME" }}\'\n- username: \'${{ env "PORTICO_NOPE" }}\'\n', { HOME: '/root' }));
    assert.deepEqual(ps.map((p) => [p.path.join('.'), p.line]), [['consumers.0.username', 3], ['consumers.1.username', 4]]);
    assert.match(ps[0].message, /only PORTICO_\* and DECK_\* variables/);
    assert.match(ps[1].message, /PORTICO_NOPE is not set/);
  });

  it('nests children with their implicit foreign key, and refuses one given twice', () => {
    const { file } = read('_format_version: "3.0"\nservices:\n- name: s\n  url: http://x\n  routes:\n  - name: r\n    paths: [/r]\n    plugins: [{name: cors}]\n');
    assert.equal(file.items.routes[0].parent!.item, file.items.services[0]);
    assert.equal(file.items.plugins[0].parent!.field, 'route');
    const ps = problems(() => read('_format_version: "3.0"\nservices:\n- name: s\n  url: http://x\n  routes:\n  - {name: r, paths: [/r], service: other}\n'));
    assert.match(ps[0].message, /nested under a service: omit service/);
  });

  it('adds select tags to every entity it reads, and accepts an empty list of entities Portico lacks', () => {
    const { file } = read('_format_version: "3.0"\ncertificates: []\nservices:\n- {name: s, url: "http://x", tags: [own]}\n', {}, ['team']);
    assert.deepEqual(file.items.services[0].input.tags, ['own', 'team']);
    assert.deepEqual(file.selectTags, ['team']);
    assert.match(problems(() => read('_format_version: "3.0"\nvaults: [{name: env}]\n'))[0].message, /no vaults entity yet/);
    assert.match(problems(() => read('_format_version: "3.0"\n_workspace: team-a\n'))[0].message, /one workspace/);
  });

  it('refuses an alias bomb and absurd nesting instead of expanding them', () => {
    const bomb = ['a: &a ["x","x","x","x","x","x","x","x","x","x"]', ...Array.from({ length: 8 }, (_, i) => `${String.fromCharCode(98 + i)}: &${String.fromCharCode(98 + i)} [*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)}]`)].join('\n');
    assert.match(problems(() => read(bomb))[0].message, /invalid YAML/);
    const deep = '_format_version: "3.0"\nplugins:\n- name: cors\n  config: ' + '{a: '.repeat(40) + '1' + '}'.repeat(40) + '\n';
    assert.ok(problems(() => read(deep)).some((p) => /nested deeper than/.test(p.message)));
  });
});

describe('TLS entities in a file', () => {
  const id = '0b7c6a10-6d5e-4c3b-9a21-7e1f0a2b3c99';
  it('reads a certificate\'s `snis` shorthand (bare names) as SNIs nested under it', () => {
    const { file } = read('_format_version: "3.0"\ncertificates:\n- cert: x\n  key: y\n  snis: [a.test, {name: b.test}]\n');
    assert.deepEqual(file.items.snis.map((s) => s.input.name), ['a.test', 'b.test']);
    assert.equal(file.items.snis[0].parent!.item, file.items.certificates[0]);
    assert.equal(file.items.snis[0].parent!.field, 'certificate');
    assert.equal('snis' in file.items.certificates[0].input, false);
  });

  it('refuses, offline, ids of certificates and CA certificates that are not in the file', () => {
    const ps = problems(() => resolve(`_format_version: "3.0"
services:
- {name: s, url: "https://x", client_certificate: ${id}, ca_certificates: [${id}]}
plugins:
- {name: mtls-auth, config: {ca_certificates: [${id}]}}
`));
    assert.deepEqual(ps.map((p) => [p.path.join('.'), p.line]), [
      ['services.0.client_certificate', 3], ['services.0.ca_certificates', 3], ['plugins.0.config.ca_certificates', 5],
    ]);
    assert.match(ps[0].message, new RegExp(`references a certificate that is neither in the file nor managed elsewhere: ${id}`));
  });
});

describe('resolving against the store', () => {
  const file = '_format_version: "3.0"\nservices:\n- name: s\n  url: http://x\n  routes: [{name: r, paths: [/r]}]\n';

  it('reuses the ids of what exists (by name), so the same file changes nothing', () => {
    const current = resolve(file);
    const again = resolve(file, current);
    assert.equal(again.services[0].id, current.services[0].id);
    assert.equal(planSize(diffStates(current, again)), 0);
  });

  it('keeps a renamed entity\'s id when nothing else about it changed', () => {
    const current = resolve(file);
    const renamed = resolve(file.replace('name: s', 'name: s2'), current);
    assert.equal(renamed.services[0].id, current.services[0].id);
    assert.equal(renamed.routes[0].service && (renamed.routes[0].service as { id: string }).id, current.services[0].id);
    assert.equal(planSummary(diffStates(current, renamed)), '~1 services');
  });

  it('answers every problem at once, with paths and lines', () => {
    const ps = problems(() => resolve('_format_version: "3.0"\nroutes:\n- {name: r, paths: [/a], service: ghost}\n- {name: r2, paths: [bad]}\nplugins:\n- {name: no-such-plugin}\n'));
    assert.deepEqual(ps.map((p) => [p.path.join('.'), p.line]), [['routes.0.service', 3], ['routes.1.paths.0', 4], ['plugins.0.name', 6]]);
  });

  it('leaves entities outside the select tags alone and refuses to take one over', () => {
    const current = resolve(file);
    const { file: team } = read('_format_version: "3.0"\nservices: []\n', {}, ['team']);
    assert.equal(planSize(diffStates(current, resolveFile(team, current), team.selectTags)), 0);
    const { file: grab } = read(file, {}, ['team']);
    assert.match(problems(() => resolveFile(grab, current))[0].message, /exists without the select tags team/);
  });
});

describe('export → import', () => {
  it('round-trips any set of services and routes to no changes (property)', () => {
    const name = fc.stringMatching(/^[a-z][a-z0-9-]{0,8}$/);
    fc.assert(fc.property(
      fc.uniqueArray(fc.record({ name, routes: fc.uniqueArray(name, { maxLength: 3 }), tags: fc.option(fc.array(name, { maxLength: 2 }), { nil: undefined }) }), { selector: (s) => s.name, maxLength: 4 }),
      (services) => {
        const seen = new Set<string>();
        const doc = {
          _format_version: '3.0',
          services: services.map((s) => ({
            name: s.name, url: 'http://up:8080/p', ...(s.tags ? { tags: [...new Set(s.tags)] } : {}),
            routes: s.routes.filter((r) => !seen.has(`${s.name}-${r}`) && seen.add(`${s.name}-${r}`)).map((r) => ({ name: `${s.name}-${r}`, paths: [`/${s.name}/${r}`] })),
          })),
        };
        const current = resolve(stringify(doc));
        const back = resolve(stringify(exportDocument(current)), current);
        assert.equal(planSize(diffStates(current, back)), 0);
        assert.deepEqual(back.routes.map((r) => r.id).sort(), current.routes.map((r) => r.id).sort());
      },
    ), { numRuns: RUNS });
  });
});
