import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { PLUGIN_DEFINITIONS } from './schemas.ts';
import { PLUGIN_HANDLERS } from './handlers.ts';

describe('plugin registries', () => {
  it('keeps the CP schema registry and the DP handler registry in step', () => {
    assert.deepEqual([...PLUGIN_DEFINITIONS.keys()].sort(), [...PLUGIN_HANDLERS.keys()].sort());
    for (const [name, def] of PLUGIN_DEFINITIONS) assert.equal(PLUGIN_HANDLERS.get(name)!.priority, def.priority, name);
  });
  it('fills Kong defaults for an empty config', () => {
    assert.deepEqual(PLUGIN_DEFINITIONS.get('key-auth')!.configSchema.parse({}), {
      key_names: ['apikey'], hide_credentials: false, anonymous: null, key_in_header: true, key_in_query: true,
      key_in_body: false, run_on_preflight: true, realm: null,
    });
  });
});
