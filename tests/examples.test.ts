/**
 * Runs every example and the demo as a user would (`tsx examples/<name>.ts` in a child
 * process) with flags that make them quick, and checks the exit code, the pictures they
 * write (valid PNG / GIF of the expected size) and the numbers they print.
 *
 * The examples run one after another (each is a separate process that uses one core).
 */
import { describe, expect, it, beforeAll, afterAll } from 'vitest';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { PNG } from 'pngjs';

const ROOT = resolve(import.meta.dirname, '..');
const TSX = join(ROOT, 'node_modules', '.bin', 'tsx');
const FASHION = '/usr/share/datasets/fashion-mnist';
let tmp: string;

beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), 'vnca-examples-'));
});
afterAll(() => {
  rmSync(tmp, { recursive: true, force: true });
});

/** Runs an example; returns its exit code and output. */
function run(example: string, args: string[], cwd = ROOT): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(TSX, [join(ROOT, 'examples', example), ...args], {
    cwd, encoding: 'utf8', timeout: 240_000, env: { ...process.env, FORCE_COLOR: '0' },
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Runs an example and expects it to succeed, with its output in the failure message. */
function runOk(example: string, args: string[]): string {
  const r = run(example, args);
  expect(r.code, `${example} ${args.join(' ')}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`).toBe(0);
  return r.stdout;
}

/** Width and height of a grid of `cols x rows` images of `side` pixels (savePngGrid's layout). */
function gridSize(cols: number, rows: number, scale: number, gap = 1, side = 32): [number, number] {
  return [cols * side * scale + (cols + 1) * gap, rows * side * scale + (rows + 1) * gap];
}

/** Decodes a PNG file and checks its size. */
function expectPng(path: string, [width, height]: [number, number]): void {
  expect(existsSync(path), `${path} exists`).toBe(true);
  const png = PNG.sync.read(readFileSync(path));
  expect([png.width, png.height], path).toEqual([width, height]);
}

/** Checks a GIF file's signature and logical screen size. */
function expectGif(path: string, [width, height]: [number, number]): void {
  expect(existsSync(path), `${path} exists`).toBe(true);
  const b = readFileSync(path);
  expect(b.subarray(0, 6).toString('latin1'), path).toBe('GIF89a');
  expect([b.readUInt16LE(6), b.readUInt16LE(8)], path).toEqual([width, height]);
  expect(b[b.length - 1], `${path} ends with the trailer byte`).toBe(0x3b);
}

const NATS = (k: number, n: number) => new RegExp(`IWAE \\(K=${k}\\) on ${n} held-out digits: -\\d+\\.\\d+ nats`);

describe('examples', () => {
  it('demo writes every picture and prints the held-out nats', () => {
    const out = join(tmp, 'demo');
    const stdout = runOk('demo.ts', ['--samples', '4', '--k', '4', '--eval-images', '2', '--out', out]);
    expect(stdout).toMatch(NATS(4, 2));
    expect(stdout).toMatch(/wrote 8 files/);
    expectPng(join(out, 'samples.png'), gridSize(2, 2, 3));
    expectPng(join(out, 'growth.png'), gridSize(15, 4, 3)); // first, middle, last state of 5 grid sizes
    expectGif(join(out, 'growth.gif'), gridSize(4, 1, 4, 2));
    expectPng(join(out, 'reconstructions.png'), gridSize(10, 2, 3));
    // Regrowth and inpainting use mnist-regen (28x28): grown, damaged, every 4th of 32 steps.
    expectPng(join(out, 'regrowth.png'), gridSize(10, 4, 3, 1, 28));
    expectGif(join(out, 'regrowth.gif'), gridSize(4, 1, 4, 2, 28));
    expectPng(join(out, 'inpainting.png'), gridSize(8, 4, 3, 1, 28)); // original, masked, inpaint, posterior decode
    expectPng(join(out, 'interpolation.png'), gridSize(8, 4, 3));
  });

  it('a missing model fails with what to do instead', () => {
    const r = run('01-quick-start.ts', ['--model', 'none', '--out', join(tmp, 'none')], tmp);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/no model 'none': expected one of the shipped models \(mnist-small/);
    expect(r.stderr).toMatch(/vnca train --out <dir>/);
  });

  it('01 quick start samples the shipped model', () => {
    const out = join(tmp, '01');
    runOk('01-quick-start.ts', ['--n', '4', '--out', out]);
    expectPng(join(out, 'samples.png'), gridSize(2, 2, 4));
  });

  it('02 trains, checkpoints and resumes', () => {
    const out = join(tmp, '02');
    const tiny = ['--batch', '2', '--z-size', '4', '--hidden', '4', '--blocks', '1', '--encoder-channels', '4,4,4,4,4',
      '--checkpoint-every', '1', '--out', out];
    runOk('02-train-mnist.ts', ['--steps', '2', ...tiny]);
    const progress = () => JSON.parse(readFileSync(join(out, 'checkpoint', 'progress.json'), 'utf8')) as { step: number };
    expect(progress().step).toBe(2);
    expect(existsSync(join(out, 'checkpoint', 'model.json'))).toBe(true);
    expectPng(join(out, 'samples.png'), gridSize(8, 2, 3));
    expectPng(join(out, 'reconstructions.png'), gridSize(8, 2, 3));
    const stdout = runOk('02-train-mnist.ts', ['--steps', '3', '--resume', '--workers', '1', ...tiny]); // resumed on two threads
    expect(stdout).toMatch(/resuming .* at step 2/);
    expect(stdout).toMatch(/trained steps 3-3/);
    expect(progress().step).toBe(3);
  });

  it('03 evaluates in nats and bits/dim', () => {
    const stdout = runOk('03-evaluate.ts', ['--k', '2', '--images', '2']);
    expect(stdout).toMatch(NATS(2, 2));
    expect(stdout).toMatch(/\d\.\d{4} bits\/dim/);
  });

  it('04 damages and regrows', () => {
    const out = join(tmp, '04');
    runOk('04-regenerate.ts', ['--n', '2', '--steps', '4', '--every', '2', '--shape', 'circle', '--size', '8', '--out', out]);
    expectPng(join(out, 'regrowth.png'), gridSize(4, 2, 3, 1, 28)); // mnist-regen: grown, damaged, after 2 and 4 steps
    expectGif(join(out, 'regrowth.gif'), gridSize(2, 1, 3, 2, 28));
  });

  it('04 rejects a region larger than the grid, and counts in words', () => {
    const r = run('04-regenerate.ts', ['--size', '40', '--out', join(tmp, '04-big')]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/--size 40 does not fit: the model's grid is 28x28/);
    const one = runOk('04-regenerate.ts', ['--model', 'mnist-small', '--source', 'samples', '--n', '1', '--steps', '1', '--size', '16', '--out', join(tmp, '04-one')]);
    expect(one).toMatch(/grew 1 new sample, damaged a 16x16-cell square, ran 1 steps/);
  });

  it('06 trains a growing NCA and writes its growth, with plain progress lines when not on a terminal', () => {
    const out = join(tmp, '06');
    const stdout = runOk('06-growing-nca.ts', ['--tiny', '--out', out]);
    expect(stdout).toMatch(/^training 3\/3: loss \d/m);
    expect(stdout).not.toMatch(/\u001b\[|\r|░|█/); // no bar drawing, no cursor codes
    expect(stdout).toMatch(/distance to the target: grown \d\.\d{4}, cut \d\.\d{4}, regrown \d\.\d{4} after 12 steps: -?\d+ % of the cut regrown/);
    expectGif(join(out, 'growth.gif'), [expect.any(Number) as unknown as number, expect.any(Number) as unknown as number]);
    expect(existsSync(join(out, 'regrowth.gif'))).toBe(true);
    expect(existsSync(join(out, 'final.png'))).toBe(true);
    expect(existsSync(join(out, 'model', 'model.json'))).toBe(true);
  });

  it('05 inpaints', () => {
    const out = join(tmp, '05');
    const stdout = runOk('05-inpaint.ts', ['--n', '2', '--steps', '2', '--iterations', '2', '--mask', 'right', '--out', out]);
    expect(stdout).toMatch(/hidden part, model.inpaint: +mean \|p - x\| \d\.\d{3}, cross-entropy \d+\.\d{3} nats\/pixel/);
    expect(stdout).toMatch(/hidden part, posterior decode: mean \|p - x\| \d\.\d{3}/);
    expectPng(join(out, 'inpainting.png'), gridSize(2, 4, 4, 1, 28)); // mnist-regen
  });

  it('07 trains a custom rule on the cpu backend and loads it back', () => {
    const out = join(tmp, '07');
    const stdout = runOk('07-custom-rule.ts', ['--steps', '1', '--batch', '2', '--z-size', '4', '--hidden', '4',
      '--encoder-channels', '4,4,4,4,4', '--backend', 'cpu', '--out', out]);
    expect(stdout).toMatch(/largest pixel difference between the trained and the loaded model: 0\b/);
    expect(existsSync(join(out, 'model', 'model.json'))).toBe(true);
    expectPng(join(out, 'samples.png'), gridSize(8, 1, 3));
  });

  it('08 says what to install when Fashion-MNIST is absent', () => {
    const r = run('08-train-fashion-mnist.ts', ['--data', join(tmp, 'no-such-folder'), '--out', join(tmp, '08-absent')]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/apt-get install dataset-fashion-mnist/);
  });

  it.runIf(existsSync(join(FASHION, 'train-images-idx3-ubyte.gz')))('08 trains on Fashion-MNIST', () => {
    const out = join(tmp, '08');
    runOk('08-train-fashion-mnist.ts', ['--steps', '1', '--batch', '2', '--z-size', '4', '--hidden', '4', '--blocks', '1',
      '--encoder-channels', '4,4,4,4,4', '--out', out]);
    expect(existsSync(join(out, 'checkpoint', 'model.json'))).toBe(true);
    expectPng(join(out, 'samples.png'), gridSize(8, 2, 3));
    expectPng(join(out, 'reconstructions.png'), gridSize(8, 2, 3));
  });
});
