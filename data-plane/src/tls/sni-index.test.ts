import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { certificateSchema, sniSchema, sniNameError, type Certificate, type Sni } from '@portico/shared';
import { buildSniIndex } from './sni-index.ts';

/** A throwaway self-signed pair (openssl; node:crypto cannot issue certificates). */
function pair(): { cert: string; key: string } {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sni-index-'));
  try {
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'k.pem', '-out', 'c.pem', '-subj', '/CN=t', '-days', '2'], { cwd: dir, stdio: 'ignore' });
    return { cert: readFileSync(path.join(dir, 'c.pem'), 'utf8'), key: readFileSync(path.join(dir, 'k.pem'), 'utf8') };
  } finally { rmSync(dir, { recursive: true, force: true }); }
}

let n = 0;
const id = () => `00000000-0000-4000-8000-${String(++n).padStart(12, '0')}`;
function cert(): Certificate { return certificateSchema.parse({ id: id(), created_at: 0, updated_at: 0, ...pair() }); }
const sni = (name: string, c: Certificate): Sni => sniSchema.parse({ id: id(), created_at: 0, updated_at: 0, name, certificate: { id: c.id } });

describe('SniIndex', () => {
  const [exact, left, right, star] = [cert(), cert(), cert(), cert()];
  // Entries are compared by identity: one per certificate.
  const index = buildSniIndex([exact, left, right, star], [
    sni('api.example.com', exact), sni('*.example.com', left), sni('api.example.*', right), sni('*.both.test', left), sni('x.both.*', right), sni('*', star),
  ]);

  it('follows Kong\'s order: exact, *.parent, prefix.*, `*`, then the listener default (undefined)', () => {
    const pick = (name: string | undefined) => index.select(name);
    assert.equal(pick('api.example.com'), pick('API.EXAMPLE.COM'));
    assert.notEqual(pick('api.example.com'), pick('www.example.com'));
    assert.equal(pick('www.example.com'), pick('x.both.test'), '*.example.com and *.both.test are the same certificate');
    assert.equal(pick('api.example.org'), pick('x.both.example'), 'prefix.* replaces the last label');
    assert.notEqual(pick('x.both.test'), pick('x.both.example'), '*.parent beats prefix.*');
    assert.equal(pick('a.b.example.com') !== pick('www.example.com'), true, 'a wildcard stands for one label only');
    assert.equal(pick('nothing.test'), pick('a.b.example.com'), 'the `*` SNI catches the rest');
    assert.equal(pick(undefined), undefined, 'no SNI: the listener default');
  });

  it('reuses the entry of a certificate whose PEM did not change on the next build', () => {
    const again = buildSniIndex([exact], [sni('api.example.com', exact)]);
    assert.equal(again.select('api.example.com'), index.select('api.example.com'));
  });

  it('serves the default when no `*` SNI exists', () => {
    const only = buildSniIndex([exact], [sni('only.test', exact)]);
    assert.equal(only.select('other.test'), undefined);
    assert.ok(only.select('only.test'));
  });
});

describe('sniNameError', () => {
  it('accepts names, one leftmost or rightmost wildcard label, and `*`', () => {
    for (const ok of ['example.com', '*.example.com', 'example.*', '*', 'a-b.c']) assert.equal(sniNameError(ok), null, ok);
  });
  it('refuses misplaced or repeated wildcards, IPs and ports', () => {
    assert.equal(sniNameError('a.*.com'), 'wildcard must be leftmost or rightmost character');
    assert.equal(sniNameError('*.*.com'), 'only one wildcard must be specified');
    assert.equal(sniNameError('*a.com'), 'wildcard must be a whole label: *.example.com or example.*');
    assert.equal(sniNameError('127.0.0.1'), 'must not be an IP');
    assert.equal(sniNameError('::1'), 'must not be an IP');
    assert.equal(sniNameError('example.com:443'), 'must not have a port');
    assert.equal(sniNameError('ex ample.com'), 'invalid value: ex ample.com');
  });
});
