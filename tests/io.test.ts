/**
 * fileSystem(dir) and writeFileAtomic as users call them: metadata saved with the weights,
 * older folders (weights.bin) and tfjs downloads (`./name.weights.bin`) still load, what a
 * save leaves in the folder, and arguments checked before anything is written.
 * (Kills during a save: tests/faults.test.ts. Hostile folders: tests/security.test.ts.)
 */
import { describe, expect, it, beforeAll, afterAll } from 'vitest';
import { mkdtempSync, readFileSync, readdirSync, renameSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileSystem, writeFileAtomic } from '../src/node.js';
import { VncaError } from '../src/index.js';
import { faultArtifacts } from './helpers/faultArtifacts.js';

let tmp: string;
beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), 'vnca-io-'));
});
afterAll(() => {
  rmSync(tmp, { recursive: true, force: true });
});

const seedOf = async (dir: string) => new Float32Array((await fileSystem(dir).load!()).weightData as ArrayBuffer)[0];

describe('fileSystem', () => {
  it('saves metadata in model.json with the weights, and load returns it', async () => {
    const dir = join(tmp, 'meta');
    await fileSystem(dir, { metadata: { progress: { step: 7 } } }).save!(faultArtifacts(1));
    const a = await fileSystem(dir).load!();
    expect(a.userDefinedMetadata).toEqual({ progress: { step: 7 } });
    await fileSystem(dir).save!(faultArtifacts(2));
    expect((await fileSystem(dir).load!()).userDefinedMetadata).toBeUndefined();
  });

  it('leaves model.json and one weights file named by its content; the same weights keep the same name', async () => {
    const dir = join(tmp, 'names');
    await fileSystem(dir).save!(faultArtifacts(1));
    const first = readdirSync(dir).sort();
    expect(first).toEqual(['model.json', expect.stringMatching(/^weights-[0-9a-f]{16}\.bin$/)]);
    await fileSystem(dir).save!(faultArtifacts(1));
    expect(readdirSync(dir).sort()).toEqual(first);
    await fileSystem(dir).save!(faultArtifacts(2));
    expect(readdirSync(dir).sort()).not.toEqual(first);
    expect(readdirSync(dir)).toHaveLength(2);
    expect(await seedOf(dir)).toBe(2);
  });

  it('removes leftovers of crashed saves (temporary files of dead processes), not other files', async () => {
    const dir = join(tmp, 'leftovers');
    await fileSystem(dir).save!(faultArtifacts(1));
    writeFileSync(join(dir, 'weights-0123456789abcdef.bin.tmp-999999999-abc'), 'x'); // no such pid
    writeFileSync(join(dir, `model.json.tmp-${process.pid}-abc`), 'x'); // a live process: kept
    writeFileSync(join(dir, 'progress.json'), '{}');
    await fileSystem(dir).save!(faultArtifacts(2));
    expect(readdirSync(dir).sort()).toEqual(['model.json', `model.json.tmp-${process.pid}-abc`, 'progress.json', expect.stringMatching(/^weights-/)]);
  });

  it('loads folders of the older layout (weights.bin) and tfjs downloads (./name.weights.bin); a new save replaces their file', async () => {
    const dir = join(tmp, 'older');
    await fileSystem(dir).save!(faultArtifacts(3));
    const name = readdirSync(dir).find((f) => f.startsWith('weights-'))!;
    for (const [file, path] of [['weights.bin', 'weights.bin'], ['m.weights.bin', './m.weights.bin']]) {
      const json = JSON.parse(readFileSync(join(dir, 'model.json'), 'utf8')) as { weightsManifest: { paths: string[] }[] };
      const old = json.weightsManifest[0]!.paths[0]!;
      json.weightsManifest[0]!.paths = [path!];
      renameSync(join(dir, old), join(dir, file!));
      writeFileSync(join(dir, 'model.json'), JSON.stringify(json));
      expect(await seedOf(dir)).toBe(3);
    }
    await fileSystem(dir).save!(faultArtifacts(4));
    // m.weights.bin is not a name a save of ours writes: it stays; weights.bin was renamed away before.
    expect(readdirSync(dir).sort()).toEqual(['m.weights.bin', 'model.json', expect.stringMatching(/^weights-/)]);
    expect(name).toMatch(/^weights-/);
  });

  it('checks its arguments, and refuses unserialisable artifacts before writing anything', async () => {
    expect(() => fileSystem('')).toThrowError(/Error in fileSystem: dir must be a non-empty path string/);
    expect(() => fileSystem(join(tmp, 'x'), null as never)).toThrowError(/options must be an object/);
    expect(() => fileSystem(join(tmp, 'x'), { metadata: [] as never })).toThrowError(/options\.metadata must be a JSON object, but got \[\]/);
    const dir = join(tmp, 'bigint');
    await fileSystem(dir).save!(faultArtifacts(1));
    const before = readdirSync(dir).sort();
    await expect(fileSystem(dir, { metadata: { n: 1n } }).save!(faultArtifacts(2))).rejects.toThrowError(/Error in fileSystem\.save: artifacts must be JSON-serialisable/);
    expect(readdirSync(dir).sort()).toEqual(before);
    expect(await seedOf(dir)).toBe(1);
  });

  it('refuses a model.json over 64 MiB unread', async () => {
    const dir = join(tmp, 'bigjson');
    await fileSystem(dir).save!(faultArtifacts(1));
    truncateSync(join(dir, 'model.json'), 65 * 2 ** 20);
    await expect(fileSystem(dir).load!()).rejects.toThrowError(/model\.json must be at most 67108864 bytes, but it has 68157440/);
  });
});

describe('writeFileAtomic', () => {
  it('creates the folders, writes the bytes, leaves no temporary file', () => {
    const path = join(tmp, 'a', 'b', 'c.txt');
    writeFileAtomic(path, 'hello');
    writeFileAtomic(path, new Uint8Array([104, 105]));
    expect(readFileSync(path, 'utf8')).toBe('hi');
    expect(readdirSync(join(tmp, 'a', 'b'))).toEqual(['c.txt']);
  });

  it('names the bad path', () => {
    expect(() => writeFileAtomic('' as string, 'x')).toThrowError(VncaError);
    expect(() => writeFileAtomic(join(tmp, 'a', 'b', 'c.txt', 'd.txt'), 'x')).toThrowError(/Error in writeFileAtomic: path must be in a folder, but ".*c\.txt" is a file\./);
  });
});
