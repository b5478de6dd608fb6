import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { publicExports } from './helpers/apiExports.js';

/**
 * The public API may grow but must not shrink: every name that `vnca` and `vnca/node`
 * exported when tests/fixtures/api-exports.json was written (values and types) is still
 * exported. To record an intended addition, rewrite the fixture with
 * `UPDATE_API_EXPORTS=1 npx vitest run tests/api-exports.test.ts`.
 */
const fixture = new URL('./fixtures/api-exports.json', import.meta.url);

describe('public exports', () => {
  it('vnca and vnca/node export at least the recorded names', async () => {
    const now = publicExports();
    if (process.env.UPDATE_API_EXPORTS) {
      const { writeFileSync } = await import('node:fs');
      writeFileSync(fixture, `${JSON.stringify(now, null, 2)}\n`);
    }
    const recorded = JSON.parse(readFileSync(fixture, 'utf8')) as Record<'index' | 'node', string[]>;
    for (const entry of ['index', 'node'] as const) {
      const missing = recorded[entry].filter((name) => !now[entry].includes(name));
      expect(missing, `names no longer exported from ${entry === 'index' ? 'vnca' : 'vnca/node'}`).toEqual([]);
    }
  }, 120_000);
});
