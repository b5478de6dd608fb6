/**
 * The built package as users receive it: `npm test` builds dist/ first, then these tests import
 * it by its name (Node resolves a package's own name through its `exports` map) as ESM and as
 * CJS, in fresh processes, and check that nothing is printed on stderr.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

const root = new URL('..', import.meta.url).pathname;

/** tfjs-backend-cpu's own banner on Node, the one thing allowed on stderr. */
const BANNER = /=+\s*Hi, looks like you are running TensorFlow\.js in Node\.js\.[^=]*=+/;

function node(args: string[]): { stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, args, { cwd: root, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`node exited with ${r.status}: ${r.stderr}`);
  return { stdout: r.stdout, stderr: r.stderr.replace(BANNER, '').trim() };
}

const program = (load: string) => `
${load}
const tf = core;
(async () => {
  await tf.setBackend('cpu');
  const m = new vnca.VNCA({ zSize: 4, hidden: 4, nBlocks: 1, encoderChannels: [2, 2], imageSize: 8, nDoublings: 2, stepsPerDoubling: 2 });
  const s = m.sample(2);
  const d = vnca.doubleCells(tf.tensor4d([1, 2, 3, 4], [1, 2, 2, 1]));
  // One copy of the shared classes across the two entry points: an error thrown by vnca/node is a vnca VncaError.
  let sameError = false;
  try { node.fileSystem(''); } catch (e) { sameError = e instanceof vnca.VncaError; }
  console.log(JSON.stringify({ params: m.countParams(), shape: s.shape, doubled: Array.from(d.dataSync()), node: typeof node.fileSystem, sameError }));
})();
`;

describe('the built package', () => {
  it('has the dist files of the exports map', () => {
    const pkg = JSON.parse(readFileSync(`${root}/package.json`, 'utf8'));
    for (const entry of Object.values(pkg.exports) as Record<string, Record<string, string>>[]) {
      if (typeof entry !== 'object') continue;
      for (const cond of Object.values(entry)) {
        for (const file of Object.values(cond)) expect(existsSync(`${root}/${file}`), file).toBe(true);
      }
    }
  });

  it.each([
    ['ESM import', ['--input-type=module', '-e', program(`import * as core from '@tensorflow/tfjs-core'; import '@tensorflow/tfjs-backend-cpu'; import * as vnca from 'vnca'; import * as node from 'vnca/node';`)]],
    ['CJS require', ['-e', program(`const core = require('@tensorflow/tfjs-core'); require('@tensorflow/tfjs-backend-cpu'); const vnca = require('vnca'); const node = require('vnca/node');`)]],
    ['CJS dynamic import', ['-e', `Promise.all([import('@tensorflow/tfjs-core'), import('@tensorflow/tfjs-backend-cpu'), import('vnca'), import('vnca/node')]).then(([core, _b, vnca, node]) => { ${program('').replace('const tf = core;', 'const tf = core;')} });`]],
  ])('works through %s', (_name, args) => {
    const { stdout, stderr } = node(args as string[]);
    expect(stderr).toBe('');
    const lines = stdout.trim().split('\n').filter((l) => l.startsWith('{'));
    const out = JSON.parse(lines[lines.length - 1]!);
    expect(out.shape).toEqual([2, 8, 8, 1]);
    expect(out.doubled).toEqual([1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4]);
    expect(out.node).toBe('function');
    expect(out.sameError).toBe(true);
    expect(out.params).toBeGreaterThan(0);
  });
});
