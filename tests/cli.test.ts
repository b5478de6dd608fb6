/**
 * The `vnca` command (src/cli.ts), run as a user runs it, in child processes through tsx:
 * sample from a shipped model, regrow, evaluate, train with checkpoints and resume, and the
 * one-line errors for a model that does not exist and a region that does not fit. The built
 * `dist/cli.js` through npm's bin link is tested from a packed tarball in package.test.ts.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { PNG } from 'pngjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const ROOT = resolve(import.meta.dirname, '..');
const TSX = join(ROOT, 'node_modules', '.bin', 'tsx');
let tmp: string;
beforeAll(() => { tmp = mkdtempSync(join(tmpdir(), 'vnca-cli-')); });
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function vnca(...args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(TSX, [join(ROOT, 'src', 'cli.ts'), ...args], { cwd: tmp, encoding: 'utf8', timeout: 240_000, env: { ...process.env, FORCE_COLOR: '0' } });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function ok(...args: string[]): string {
  const r = vnca(...args);
  expect(r.code, `vnca ${args.join(' ')}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`).toBe(0);
  expect(r.stderr).toBe(''); // no tfjs banner, no warnings
  return r.stdout;
}

describe('vnca command', () => {
  it('lists its commands', () => {
    const help = ok('--help');
    for (const c of ['sample', 'train', 'evaluate', 'regrow']) expect(help).toMatch(new RegExp(`^  ${c} `, 'm'));
  });

  it('samples from a shipped model by name, with a growth GIF', () => {
    const out = ok('sample', '--model', 'mnist-small', '--n', '4', '--scale', '2', '--out', 'samples.png', '--gif', 'growth.gif');
    expect(out).toMatch(/^tfjs backend: wasm/m);
    const png = PNG.sync.read(readFileSync(join(tmp, 'samples.png')));
    expect([png.width, png.height]).toEqual([2 * 32 * 2 + 3, 2 * 32 * 2 + 3]);
    expect(readFileSync(join(tmp, 'growth.gif')).subarray(0, 6).toString('latin1')).toBe('GIF89a');
  });

  it('regrows damaged digits and rejects a region larger than the grid', () => {
    const out = ok('regrow', '--model', 'mnist-small', '--n', '2', '--steps', '2', '--size', '8', '--out', 'regrowth.gif', '--png', 'regrowth.png');
    expect(out).toMatch(/grew 2 samples, damaged a 8x8-cell square, ran 2 steps/);
    expect(existsSync(join(tmp, 'regrowth.gif'))).toBe(true);
    const png = PNG.sync.read(readFileSync(join(tmp, 'regrowth.png')));
    expect(png.width).toBe(4 * 32 * 3 + 5); // grown, damaged, 2 steps
    const big = vnca('regrow', '--model', 'mnist-small', '--size', '40');
    expect(big.code).toBe(1);
    expect(big.stderr).toMatch(/^error: --size must be an integer from 1 to 32 \(the model's grid is 32x32\), but got 40\.$/m);
  });

  it('evaluates in nats', () => {
    const out = ok('evaluate', '--k', '2', '--images', '2');
    expect(out).toMatch(/log p\(x\) >= -\d+\.\d+ nats ± \d+\.\d+ \(standard error\), 0\.\d+ bits\/dim \(IWAE, K=2, 2 images\)/);
  });

  it('trains with checkpoints, resumes, and samples from its checkpoint folder', () => {
    const tiny = ['--batch', '2', '--z-size', '4', '--hidden', '4', '--blocks', '1', '--encoder-channels', '2,2,2,2,2', '--out', 'run'];
    expect(ok('train', '--steps', '2', '--checkpoint-every', '1', ...tiny)).toMatch(/trained steps 1-2 in/);
    expect(ok('train', '--steps', '3', '--resume', ...tiny)).toMatch(/resuming run\/checkpoint at step 2[\s\S]*trained steps 3-3 in/);
    expect(ok('sample', '--model', join('run', 'checkpoint'), '--n', '1', '--out', 'mine.png')).toMatch(/1 samples/);
  });

  it('names a model that does not exist', () => {
    const r = vnca('sample', '--model', 'no-such-model');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^error: no model 'no-such-model': expected one of the shipped models \(mnist-small/);
  });
});
