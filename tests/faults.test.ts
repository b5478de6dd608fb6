/**
 * Faults during a save (issue 16, section 2): a model folder is saved atomically as a whole.
 *
 * A child process (tests/helpers/faultSave.ts) saves with `fileSystem(dir)` and kills itself
 * with SIGKILL just before each file system call of the save in turn (a write is cut in
 * half first). After every kill the folder must load as the previous save or as the new
 * one, weights and model.json from the same save, never a mix and never an error (except
 * "no model yet" when the folder was empty before).
 *
 * Then the training examples' checkpoints: the step is saved with the weights, so a kill
 * between the model and progress.json loses nothing; a corrupt progress record stops the
 * example with a one-line named error and exit status 1.
 */
import { describe, expect, it, beforeAll, afterAll } from 'vitest';
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileSystem } from '../src/node/fileSystem.js';
import { faultArtifacts } from './helpers/faultArtifacts.js';

const ROOT = resolve(import.meta.dirname, '..');
const TSX = join(ROOT, 'node_modules', '.bin', 'tsx');
let tmp: string;

beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), 'vnca-faults-'));
});
afterAll(() => {
  rmSync(tmp, { recursive: true, force: true });
});

/** Runs the saving child; `killAt` 0 lets it finish and returns the calls it made. */
function childSave(dir: string, killAt: number, seed: number): { signal: NodeJS.Signals | null; calls: { op: string; args: string[] }[] } {
  // node itself, not the tsx wrapper, so the kill reaches the process that saves.
  const r = spawnSync(process.execPath, ['--import', 'tsx', join(ROOT, 'tests', 'helpers', 'faultSave.ts'), dir, String(killAt), String(seed)], {
    cwd: ROOT, encoding: 'utf8', timeout: 60_000,
  });
  if (killAt === 0 && r.status !== 0) throw new Error(`child save failed: ${r.stderr}`);
  const calls = r.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l) as { op: string; args: string[] });
  return { signal: r.signal, calls };
}

/** Loads the folder and returns the seed its save was made with, checking weights and model.json agree. */
async function loadedSeed(dir: string): Promise<number> {
  const a = await fileSystem(dir).load!();
  const seed = (a.modelTopology as { seed: number }).seed;
  const values = new Float32Array(a.weightData as ArrayBuffer);
  expect(values.length).toBe(17);
  for (const v of values) expect(v, `weights of another save than model.json's (seed ${seed})`).toBe(seed);
  return seed;
}

describe('a save killed at any point leaves the previous or the new model', () => {
  /** The file system calls of one save over an existing one, as the child logs them. */
  let calls: { op: string; args: string[] }[];
  /** Points where a save can be killed: before each of its calls. */
  let points = 0;
  let survived = 0;
  const trace = () => join(tmp, 'trace');

  beforeAll(async () => {
    await fileSystem(trace()).save!(faultArtifacts(1));
    calls = childSave(trace(), 0, 2).calls;
    points = calls.length;
  });

  it('makes every file durable before the next step: fsync file, rename, fsync folder; model.json last; old weights removed after', async () => {
    const dir = trace();
    const renames = calls.map((c, i) => ({ ...c, i })).filter((c) => c.op === 'renameSync');
    expect(renames.map((r) => r.args[1]!.split('/').pop())).toEqual([expect.stringMatching(/^weights-[0-9a-f]{16}\.bin$/), 'model.json']);
    for (const r of renames) {
      const before = calls.slice(0, r.i);
      const fsyncs = before.filter((c) => c.op === 'fsyncSync').map((c) => c.args[0]);
      expect(fsyncs, `${r.args[0]} is flushed before its rename`).toContain(`fd:${r.args[0]}`);
      const after = calls.slice(r.i + 1).find((c) => c.op === 'fsyncSync');
      expect(after?.args[0], 'the folder is flushed after the rename').toBe(`fd:${dir}`);
    }
    const unlink = calls.findIndex((c) => c.op === 'unlinkSync');
    expect(unlink).toBeGreaterThan(renames[1]!.i);
    expect(readdirSync(dir).sort()).toEqual(['model.json', expect.stringMatching(/^weights-[0-9a-f]{16}\.bin$/)]);
    expect(await loadedSeed(dir)).toBe(2);
  });

  it('over an existing save: kill -9 before each file system call of the save', async () => {
    expect(points).toBeGreaterThanOrEqual(19);
    const seen = new Set<number>();
    for (let k = 1; k <= points; k++) {
      const dir = join(tmp, `over-${k}`);
      await fileSystem(dir).save!(faultArtifacts(1));
      const { signal } = childSave(dir, k, 2);
      expect(signal, `kill point ${k}`).toBe('SIGKILL');
      const seed = await loadedSeed(dir);
      expect([1, 2], `kill point ${k}`).toContain(seed);
      seen.add(seed);
      survived++;
      // The next save cleans up what the killed one left.
      await fileSystem(dir).save!(faultArtifacts(3));
      expect(readdirSync(dir).length, `kill point ${k}: leftovers removed`).toBe(2);
      expect(await loadedSeed(dir)).toBe(3);
    }
    expect([...seen].sort()).toEqual([1, 2]); // early kills keep the old save, late ones the new
  });

  it('over a save of the older layout (weights.bin): kill -9 at every point', async () => {
    const legacy = join(tmp, 'legacy');
    await fileSystem(legacy).save!(faultArtifacts(1));
    const weights = readdirSync(legacy).find((n) => n.startsWith('weights-'))!;
    const json = JSON.parse(readFileSync(join(legacy, 'model.json'), 'utf8')) as { weightsManifest: { paths: string[] }[] };
    json.weightsManifest[0]!.paths = ['weights.bin'];
    writeFileSync(join(legacy, 'model.json'), JSON.stringify(json));
    cpSync(join(legacy, weights), join(legacy, 'weights.bin'));
    unlinkSync(join(legacy, weights));
    expect(await loadedSeed(legacy)).toBe(1);
    for (let k = 1; k <= points; k++) {
      const dir = join(tmp, `legacy-${k}`);
      cpSync(legacy, dir, { recursive: true });
      childSave(dir, k, 2);
      expect([1, 2], `kill point ${k}`).toContain(await loadedSeed(dir));
      survived++;
    }
  });

  it('into an empty folder: no model, or the new one', async () => {
    for (let k = 1; k <= points; k++) {
      const dir = join(tmp, `empty-${k}`);
      childSave(dir, k, 2);
      if (existsSync(join(dir, 'model.json'))) expect(await loadedSeed(dir)).toBe(2);
      else await expect(fileSystem(dir).load!()).rejects.toThrowError(/Error in fileSystem\.load: (dir|model\.json) must/);
      survived++;
    }
    expect(survived).toBeGreaterThanOrEqual(3 * 19);
    console.log(`kill -9 saves survived: ${survived} (${points} points a save)`);
  });
});

describe('example checkpoints keep the step with the weights', () => {
  const run = (args: string[]) => {
    const r = spawnSync(TSX, [join(ROOT, 'examples', '02-train-mnist.ts'), ...args], {
      cwd: ROOT, encoding: 'utf8', timeout: 240_000, env: { ...process.env, FORCE_COLOR: '0' },
    });
    return { code: r.status, stdout: r.stdout, stderr: r.stderr };
  };
  const tiny = (out: string) => ['--batch', '2', '--z-size', '4', '--hidden', '4', '--blocks', '1', '--encoder-channels', '4,4,4,4,4',
    '--checkpoint-every', '1', '--out', out, '--backend', 'cpu'];
  let ckpt: string;
  let out: string;

  beforeAll(() => {
    out = join(tmp, '02');
    ckpt = join(out, 'checkpoint');
    const r = run(['--steps', '2', ...tiny(out)]);
    expect(r.code, r.stderr).toBe(0);
  });

  it('saves the step in model.json, in the same save as the weights', () => {
    const json = JSON.parse(readFileSync(join(ckpt, 'model.json'), 'utf8')) as { userDefinedMetadata?: { progress?: { step: number } } };
    expect(json.userDefinedMetadata?.progress?.step).toBe(2);
  });

  it('killed between the model save and progress.json, resumes at the saved step', () => {
    const dir = join(tmp, '02-killed');
    cpSync(out, dir, { recursive: true });
    // What a kill right after the step-2 save leaves: progress.json still from step 1, or none yet.
    writeFileSync(join(dir, 'checkpoint', 'progress.json'), JSON.stringify({ step: 1, seed: 0, batchSize: 2, savedAt: '' }));
    let r = run(['--steps', '2', '--resume', ...tiny(dir)]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/resuming .* at step 2/);
    expect(r.stdout).toMatch(/already at step 2/);
    unlinkSync(join(dir, 'checkpoint', 'progress.json'));
    r = run(['--steps', '2', '--resume', ...tiny(dir)]);
    expect(r.stdout).toMatch(/resuming .* at step 2/);
  });

  it('a corrupt progress.json (older checkpoint) stops with a named error and exit 1, not a page of wasm source', () => {
    const dir = join(tmp, '02-corrupt');
    cpSync(out, dir, { recursive: true });
    const jsonPath = join(dir, 'checkpoint', 'model.json');
    const json = JSON.parse(readFileSync(jsonPath, 'utf8')) as Record<string, unknown>;
    delete json.userDefinedMetadata; // as checkpoints were written before the step moved into model.json
    writeFileSync(jsonPath, JSON.stringify(json));
    writeFileSync(join(dir, 'checkpoint', 'progress.json'), '{"step": 2, "seed"');
    for (const backend of ['wasm', 'cpu']) {
      const r = run(['--steps', '3', '--resume', ...tiny(dir), '--backend', backend]);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/^error: cannot resume from .*checkpoint: Error in readCheckpointProgress: progress\.json must be valid JSON, but .*progress\.json does not parse \(SyntaxError\)\.\n$/);
    }
    writeFileSync(join(dir, 'checkpoint', 'progress.json'), JSON.stringify({ step: 'two', seed: 0, batchSize: 2 }));
    const r = run(['--steps', '3', '--resume', ...tiny(dir)]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/Error in readCheckpointProgress: progress\.json step must be an integer >= 0, but got "two"\./);
  });

  it('a checkpoint with a model but no step recorded is not silently restarted', () => {
    const dir = join(tmp, '02-nostep');
    cpSync(out, dir, { recursive: true });
    const jsonPath = join(dir, 'checkpoint', 'model.json');
    const json = JSON.parse(readFileSync(jsonPath, 'utf8')) as Record<string, unknown>;
    delete json.userDefinedMetadata;
    writeFileSync(jsonPath, JSON.stringify(json));
    unlinkSync(join(dir, 'checkpoint', 'progress.json'));
    const r = run(['--steps', '3', '--resume', ...tiny(dir)]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/Error in startOrResume: checkpoint must record its training step/);
  });
});
