/**
 * Loading a model is a security boundary (issue 16, sections 3 and 4): hostile or broken
 * model folders, artifacts, PNG files and save targets get a named `VncaError`, never a
 * raw TypeError, a read outside the model folder, a hang, NaN weights or a backend crash.
 *
 * Each table below is one kind of attack; every row must fail with the named error it gives.
 * Cases that could hang the test process (a FIFO, Node's recursive mkdir on /proc) run in a
 * child process with a time limit.
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { describe, expect, it, beforeAll, afterAll } from 'vitest';
import { spawnSync } from 'node:child_process';
import {
  cpSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, truncateSync, writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { GrowingNCA, ResidualUpdateRule, UpdateRule, VNCA, VncaError, type VNCAOptions } from '../src/index.js';
import { fileSystem, writeFileAtomic, encodePng, loadPngFolder } from '../src/node.js';
import { checkDeclaredSizes, checkModelArtifacts, resolveSavedClass, saveArtifacts } from '../src/core/io.js';
import { faultArtifacts } from './helpers/faultArtifacts.js';

const ROOT = resolve(import.meta.dirname, '..');
const TINY: VNCAOptions = { zSize: 4, hidden: 4, nBlocks: 1, encoderChannels: [2, 2, 2], imageSize: 8, nDoublings: 2, stepsPerDoubling: 2 };
let tmp: string;
/** A saved tiny VNCA: the folder every case starts from. */
let good: string;
let goodJson: { weightsManifest: { paths: string[]; weights: Record<string, unknown>[] }[]; [k: string]: unknown };
let weightsName: string;
let goodBytes: Buffer;
let n = 0;
/** Named errors seen, for the tally printed at the end. */
const tally = { cases: 0, named: 0 };

beforeAll(async () => {
  await tf.setBackend('cpu');
  tmp = mkdtempSync(join(tmpdir(), 'vnca-security-'));
  good = join(tmp, 'good');
  const model = new VNCA(TINY);
  await model.save(fileSystem(good));
  model.dispose();
  goodJson = JSON.parse(readFileSync(join(good, 'model.json'), 'utf8'));
  weightsName = goodJson.weightsManifest[0]!.paths[0]!;
  goodBytes = readFileSync(join(good, weightsName));
  // A file outside the model folder with exactly the bytes the model needs.
  writeFileSync(join(tmp, 'secret.bin'), goodBytes);
});
afterAll(() => {
  rmSync(tmp, { recursive: true, force: true });
  console.log(`security cases: ${tally.cases}, named VncaErrors: ${tally.named}`);
});

/** A copy of the good folder, changed by `edit`, in a folder two levels below tmp. */
function folder(edit: (dir: string, json: typeof goodJson) => unknown): string {
  const dir = join(tmp, 'cases', `c${n++}`);
  mkdirSync(join(tmp, 'cases'), { recursive: true });
  cpSync(good, dir, { recursive: true });
  const json = structuredClone(goodJson);
  const replaced = edit(dir, json);
  writeFileSync(join(dir, 'model.json'), typeof replaced === 'string' ? replaced : JSON.stringify(json));
  return dir;
}

/** Expects `p` to reject with a VncaError whose message matches `re`. */
async function expectNamed(p: Promise<unknown> | (() => unknown), re: RegExp): Promise<VncaError> {
  tally.cases++;
  let error: unknown;
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (e) {
    error = e;
  }
  expect(error, 'it must fail').toBeDefined();
  expect(error, String((error as Error)?.stack)).toBeInstanceOf(VncaError);
  expect((error as Error).message).toMatch(re);
  tally.named++;
  return error as VncaError;
}

/** Runs ES module code in a child process (node + tsx) with a time limit; returns its output. */
function inChild(code: string, timeoutMs = 30_000): { status: number | null; stdout: string; stderr: string; timedOut: boolean } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], {
    cwd: ROOT, encoding: 'utf8', timeout: timeoutMs,
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr, timedOut: (r.error as NodeJS.ErrnoException | undefined)?.code === 'ETIMEDOUT' };
}

const setPath = (p: unknown) => (_dir: string, j: typeof goodJson) => { j.weightsManifest[0]!.paths = [p as string]; };

describe('weightsManifest paths stay inside the model folder', () => {
  const cases: [string, (dir: string, j: typeof goodJson) => unknown, RegExp][] = [
    ['../secret.bin (right size, outside)', setPath('../../secret.bin'), /leads outside it/],
    ['../../../../etc/hostname', setPath('../../../../../../../../etc/hostname'), /leads outside it/],
    ['sub/../../secret.bin', setPath('sub/../../../secret.bin'), /leads outside it/],
    ['an absolute path to the secret', (dir, j) => setPath(join(dir, '..', '..', 'secret.bin'))(dir, j), /must be a path relative to the model folder/],
    ['/etc/hostname', setPath('/etc/hostname'), /must be a path relative to the model folder/],
    ['file:///etc/hostname', setPath('file:///etc/hostname'), /must be a path relative to the model folder/],
    ['C:\\secret.bin', setPath('C:\\secret.bin'), /must be a path relative to the model folder/],
    ['a symbolic link to a file outside', (dir, j) => { symlinkSync(join(tmp, 'secret.bin'), join(dir, 'link.bin')); setPath('link.bin')(dir, j); }, /leads outside it/],
    ['a folder', (dir, j) => { mkdirSync(join(dir, 'w.bin')); setPath('w.bin')(dir, j); }, /must name a regular file, but .* is a folder/],
    ['the model folder itself', setPath('.'), /must name a regular file, but .* is a folder/],
    ['a missing file', setPath('nothing.bin'), /must name an existing file/],
    ['an empty name', setPath(''), /must be a non-empty relative file name, but got ""/],
    ['a number', setPath(7), /must be a non-empty relative file name, but got 7/],
    ['null', setPath(null), /must be a non-empty relative file name, but got null/],
    ['a NUL byte', setPath('w\0.bin'), /must be a non-empty relative file name/],
  ];
  it.each(cases)('%s', async (_name, edit, re) => {
    const dir = folder(edit);
    const e = await expectNamed(fileSystem(dir).load!(), re);
    expect(e.fn).toBe('fileSystem.load');
    expect(e.message).not.toMatch(/root:|localhost/); // nothing read from outside is echoed
  });

  it('VNCA.load goes through the same checks', async () => {
    await expectNamed(VNCA.load(fileSystem(folder(setPath('../../secret.bin')))), /Error in fileSystem\.load: model\.json weightsManifest\[0\]\.paths\[0\] must name a file inside the model folder/);
  });

  it('a model.json that is a symbolic link to a file outside is refused unread', async () => {
    const dir = join(tmp, 'json-link');
    mkdirSync(dir);
    symlinkSync('/etc/passwd', join(dir, 'model.json'));
    const e = await expectNamed(fileSystem(dir).load!(), /model\.json must name a file inside the model folder/);
    expect(e.message).not.toMatch(/root/);
  });

  it('a model.json that is a folder, or missing', async () => {
    const dir = join(tmp, 'json-dir');
    mkdirSync(join(dir, 'model.json'), { recursive: true });
    await expectNamed(fileSystem(dir).load!(), /model\.json must name a regular file, but .* is a folder/);
    await expectNamed(fileSystem(join(tmp, 'nowhere')).load!(), /dir must be a folder holding model\.json, but .* does not exist/);
  });

  it('FIFOs as weights or as model.json are refused without blocking (child process, 30 s limit)', () => {
    const dir = folder(setPath('fifo.bin'));
    const jsonFifo = join(tmp, 'json-fifo');
    mkdirSync(jsonFifo);
    expect(spawnSync('mkfifo', [join(dir, 'fifo.bin'), join(jsonFifo, 'model.json')]).status).toBe(0);
    const r = inChild(`
      const { fileSystem } = await import(${JSON.stringify(join(ROOT, 'src/node/fileSystem.ts'))});
      for (const d of ${JSON.stringify([dir, jsonFifo])}) {
        try { await fileSystem(d).load(); console.log('loaded'); } catch (e) { console.log(e.name + ': ' + e.message); }
      }`);
    expect(r.timedOut, 'the load hangs').toBe(false);
    const lines = r.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^VncaError: Error in fileSystem\.load: model\.json weightsManifest\[0\]\.paths\[0\] must name a regular file, but .*fifo\.bin" is a FIFO\.$/);
    expect(lines[1]).toMatch(/^VncaError: Error in fileSystem\.load: model\.json must name a regular file, but .* is a FIFO\.$/);
    tally.cases += 2;
    tally.named += 2;
  });
});

describe('a malformed model.json gives a named error, not a TypeError', () => {
  const manifest = (m: unknown) => (_d: string, j: typeof goodJson) => { (j as Record<string, unknown>).weightsManifest = m; };
  const group = (g: unknown) => manifest([g]);
  const spec = (edit: (s: Record<string, unknown>) => void) => (_d: string, j: typeof goodJson) => { edit(j.weightsManifest[0]!.weights[0]!); };
  const cases: [string, (dir: string, j: typeof goodJson) => unknown, RegExp][] = [
    ['null', () => 'null', /model\.json must hold a JSON object, but holds null/],
    ['an array', () => '[]', /model\.json must hold a JSON object, but holds \[\]/],
    ['a string', () => '"model"', /model\.json must hold a JSON object, but holds "model"/],
    ['a number', () => '42', /model\.json must hold a JSON object, but holds 42/],
    ['not JSON', () => '{"weightsManifest": [', /model\.json must be valid JSON, but it does not parse/],
    ['no weightsManifest', manifest(undefined), /weightsManifest must be an array of \{ paths, weights \}, but got undefined/],
    ['weightsManifest null', manifest(null), /weightsManifest must be an array .* but got null/],
    ['weightsManifest an object', manifest({}), /weightsManifest must be an array .* but got \[object Object\]/],
    ['weightsManifest [null]', manifest([null]), /weightsManifest\[0\] must be an object \{ paths, weights \}, but got null/],
    ['weightsManifest [7]', manifest([7]), /weightsManifest\[0\] must be an object/],
    ['paths missing', group({ weights: [] }), /weightsManifest\[0\]\.paths must be an array of file names, but got undefined/],
    ['paths a string', group({ paths: 'weights.bin', weights: [] }), /paths must be an array of file names, but got "weights.bin"/],
    ['weights missing', (d, j) => group({ paths: j.weightsManifest[0]!.paths })(d, j), /weightsManifest\[0\]\.weights must be an array of weight specs, but got undefined/],
    ['weights an object', (d, j) => group({ paths: j.weightsManifest[0]!.paths, weights: {} })(d, j), /weights must be an array of weight specs, but got \[object Object\]/],
    ['a weight spec null', (d, j) => { j.weightsManifest[0]!.weights[0] = null as never; }, /model\.json weights\[0\] must be an object \{ name, shape, dtype \}, but got null/],
    ['a spec without name', spec((s) => { delete s.name; }), /weights\[0\]\.name must be a non-empty string, but got undefined/],
    ['a spec without shape', spec((s) => { delete s.shape; }), /weights\[0\]\.shape must be an array of integers/],
    ['a negative dimension', spec((s) => { s.shape = [-1, 2]; }), /shape must be an array of integers in \[0, 2147483647\], but weight .* has \[-1,2\]/],
    ['a string dimension', spec((s) => { s.shape = ['3']; }), /shape must be an array of integers/],
    ['a dimension of 1e10', spec((s) => { s.shape = [1e10]; }), /shape must be an array of integers in \[0, 2147483647\]/],
    ['a size past 2^53 bytes', spec((s) => { s.shape = [2 ** 31 - 1, 2 ** 31 - 1, 2 ** 31 - 1]; }), /must describe a size that fits in memory/],
    ['duplicated weight names', (_d, j) => { j.weightsManifest[0]!.weights[1]!.name = j.weightsManifest[0]!.weights[0]!.name; }, /weights\[1\]\.name must be unique, but '.*' appears twice/],
    ['duplicated names across groups', (_d, j) => { j.weightsManifest.push({ paths: [], weights: [{ ...j.weightsManifest[0]!.weights[0]! }] }); }, /must be unique/],
    ['a uint8 quantization spec', spec((s) => { s.quantization = { dtype: 'uint8', min: 0, scale: 1 }; }), /weights\[0\]\.quantization must be absent .* is quantised/],
    ['int32 declared over float32 bytes', spec((s) => { s.dtype = 'int32'; }), /weights\[0\]\.dtype must be 'float32' .* declares "int32"/],
    ['no dtype', spec((s) => { delete s.dtype; }), /dtype must be 'float32' .* declares undefined/],
  ];
  it.each(cases)('%s', async (_name, edit, re) => {
    const e = await expectNamed(fileSystem(folder(edit)).load!(), re);
    expect(e.fn).toBe('fileSystem.load');
  });
});

describe('weight bytes: sizes checked before reading, values finite', () => {
  const bytes = (edit: (b: Buffer) => Buffer) => (dir: string) => { writeFileSync(join(dir, weightsName), edit(Buffer.from(goodBytes))); };
  /** Writes `v` at float index `at` (negative: from the end). */
  const setFloat = (v: number, at = 3) => bytes((b) => { b.writeFloatLE(v, at >= 0 ? 4 * at : b.length + 4 * at); return b; });
  const cases: [string, (dir: string, j: typeof goodJson) => unknown, RegExp][] = [
    ['NaN in weights.bin', setFloat(NaN), /weights must be finite, but '.*' holds NaN at index 3/],
    ['Infinity', setFloat(Infinity), /must be finite, but '.*' holds Infinity/],
    ['-Infinity, in the last weight', setFloat(-Infinity, -1), /must be finite, but '.*' holds -Infinity/],
    ['a file 4 bytes short', bytes((b) => b.subarray(4)), /weights must hold the \d+ bytes that model\.json declares, but its weight files hold \d+/],
    ['a file 4 bytes long', bytes((b) => Buffer.concat([b, Buffer.alloc(4)])), /must hold the \d+ bytes that model\.json declares/],
    ['an empty file', bytes(() => Buffer.alloc(0)), /but its weight files hold 0/],
  ];
  it.each(cases)('%s', async (_name, edit, re) => {
    await expectNamed(fileSystem(folder(edit)).load!(), re);
  });

  it('a 4 GiB (sparse) weights file is refused from its size, before reading it', async () => {
    const dir = folder(() => undefined);
    truncateSync(join(dir, weightsName), 4 * 2 ** 30);
    const start = performance.now();
    await expectNamed(fileSystem(dir).load!(), /must hold the \d+ bytes that model\.json declares, but its weight files hold 4294967296/);
    expect(performance.now() - start).toBeLessThan(1000);
  });

  it('the same holds for artifacts from any handler (checkModelArtifacts, for VNCA.fromArtifacts / GrowingNCA.load)', () => {
    const good = faultArtifacts(1);
    expect(checkModelArtifacts(good, 'VNCA.load').specs.length).toBe(2);
    const cases: [unknown, RegExp][] = [
      [null, /artifacts must be an object with modelTopology, weightSpecs and weightData, but got null/],
      [[], /artifacts must be an object/],
      [{ ...good, modelTopology: null }, /artifacts\.modelTopology must be a JSON object, but got null/],
      [{ ...good, modelTopology: new ArrayBuffer(4) }, /artifacts\.modelTopology must be a JSON object/],
      [{ ...good, weightSpecs: undefined }, /artifacts\.weightSpecs must be an array of weight specs, but got undefined/],
      [{ ...good, weightSpecs: [null] }, /artifacts\.weightSpecs\[0\] must be an object/],
      [{ ...good, weightData: undefined }, /artifacts\.weightData must be an ArrayBuffer or an array of them, but got undefined/],
      [{ ...good, weightData: {} }, /artifacts\.weightData must be an ArrayBuffer/],
      [{ ...good, weightData: new ArrayBuffer(8) }, /artifacts\.weightData must hold 68 bytes for its weight specs, but got 8/],
      [{ ...good, weightData: new Float32Array(17).fill(NaN).buffer }, /artifacts\.weightData must be finite, but 'a' holds NaN at index 0/],
    ];
    for (const [a, re] of cases) {
      tally.cases++;
      expect(() => checkModelArtifacts(a, 'VNCA.load')).toThrowError(re);
      tally.named++;
    }
  });
});

describe('declared sizes and classes are checked before anything is built', () => {
  it('checkDeclaredSizes: a zSize of 8192 over weights for 16 is refused (for VNCA.fromArtifacts, before new VNCA)', () => {
    const specs = [{ name: 'rule/conv_in/kernel', shape: [3, 3, 16, 16], dtype: 'float32' as const }];
    expect(() => checkDeclaredSizes({ zSize: 16, hidden: 16, encoderChannels: [3, 16] }, specs, 'VNCA.load')).not.toThrow();
    const cases: [Record<string, number | number[]>, RegExp][] = [
      [{ zSize: 8192 }, /Error in VNCA\.load: config\.zSize must be an integer no larger than the largest weight dimension \(16\), but got 8192\./],
      [{ hidden: 8192 }, /config\.hidden must be/],
      [{ encoderChannels: [4, 8192] }, /config\.encoderChannels must be .* but got \[4,8192\]/],
      [{ zSize: 1.5 }, /config\.zSize must be an integer/],
      [{ zSize: -1 }, /config\.zSize must be an integer/],
      [{ zSize: 'x' as never }, /config\.zSize must be an integer/],
    ];
    for (const [sizes, re] of cases) {
      tally.cases++;
      expect(() => checkDeclaredSizes(sizes, specs, 'VNCA.load')).toThrowError(re);
      tally.named++;
    }
    expect(() => checkDeclaredSizes({}, specs, 'VNCA.load', { nBlocks: 1 })).not.toThrow();
    tally.cases++;
    expect(() => checkDeclaredSizes({}, specs, 'VNCA.load', { nBlocks: 100000 })).toThrowError(/config\.nBlocks must be an integer no larger than the number of weights \(1\), but got 100000/);
    tally.named++;
  });

  it('the tiny model\'s real config passes against its own weights', () => {
    const specs = goodJson.weightsManifest[0]!.weights as unknown as tf.io.WeightsManifestEntry[];
    expect(() => checkDeclaredSizes({ zSize: 4, hidden: 4, encoderChannels: [2, 2, 2] }, specs, 'VNCA.load')).not.toThrow();
  });

  it('resolveSavedClass builds only UpdateRule subclasses ("Dense", "Conv2D" are refused)', () => {
    const R = UpdateRule as unknown as abstract new (...a: never[]) => unknown;
    const builtIn = [ResidualUpdateRule] as unknown as (typeof R)[];
    const ok = resolveSavedClass({ className: ResidualUpdateRule.className, config: {} }, builtIn, R, 'VNCA.load', 'updateRule');
    expect(ok.cls).toBe(ResidualUpdateRule);
    const cases: [unknown, RegExp][] = [
      [{ className: 'Dense', config: { units: 1 } }, /updateRule 'Dense' is a registered class but not a UpdateRule: only UpdateRule subclasses can be loaded here/],
      [{ className: 'Conv2D', config: {} }, /'Conv2D' is a registered class but not a UpdateRule/],
      [{ className: 'NoSuchRule', config: {} }, /'NoSuchRule' is not a known UpdateRule class/],
      [{ className: '__proto__', config: {} }, /'__proto__' is not a known UpdateRule class/],
      [{ className: 'constructor', config: {} }, /'constructor' is not a known UpdateRule class/],
      [null, /updateRule must be \{ className, config \}, but got null/],
      [{ className: 7, config: {} }, /updateRule\.className must be a non-empty string, but got 7/],
      [{ className: 'Dense', config: null }, /updateRule\.config must be a JSON object, but got null/],
    ];
    for (const [spec, re] of cases) {
      tally.cases++;
      expect(() => resolveSavedClass(spec, builtIn, R, 'VNCA.load', 'updateRule')).toThrowError(re);
      tally.named++;
    }
  });
});

describe('save refuses what it must not write', () => {
  it('VNCA.save refuses NaN or Infinity weights, and the previous checkpoint stays', async () => {
    const dir = join(tmp, 'nan-save');
    const model = new VNCA(TINY);
    await model.save(fileSystem(dir));
    const before = readdirSync(dir).sort();
    const { name, variable } = model.namedWeights()[1]!;
    for (const bad of [NaN, Infinity]) {
      tf.tidy(() => variable.assign(tf.fill(variable.shape, bad)));
      const e = await expectNamed(model.save(fileSystem(dir)), new RegExp(`Error in VNCA\\.save: weights must be finite, but '${name}' holds ${bad} at index 0`));
      expect(e.fn).toBe('VNCA.save');
    }
    expect(readdirSync(dir).sort()).toEqual(before);
    const back = await VNCA.load(fileSystem(dir));
    expect(back.namedWeights().every(({ variable: v }) => tf.all(tf.isFinite(v)).dataSync()[0] === 1)).toBe(true);
    back.dispose();
    model.dispose();
  });

  it('saveArtifacts names GrowingNCA.save for its format', async () => {
    const t = tf.tensor1d([1, NaN]);
    await expectNamed(saveArtifacts(tf.io.withSaveHandler(async () => ({ modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } })), { format: 'vnca-growing-nca' }, [{ name: 'target', tensor: t }]),
      /Error in GrowingNCA\.save: weights must be finite, but 'target' holds NaN at index 1/);
    t.dispose();
  });

  it('saving under /proc/self fails at once instead of spinning in a recursive mkdir (child process)', () => {
    const r = inChild(`
      const { fileSystem, writeFileAtomic } = await import(${JSON.stringify(join(ROOT, 'src/node/fileSystem.ts'))});
      try { writeFileAtomic('/proc/self/x/y.png', 'a'); } catch (e) { console.log(e.name + ': ' + e.message); }
      try { await fileSystem('/proc/self/x/model').save({ modelTopology: {}, weightSpecs: [], weightData: new ArrayBuffer(0) }); } catch (e) { console.log(e.name + ': ' + e.message); }`, 20_000);
    expect(r.timedOut, 'the save spins').toBe(false);
    const lines = r.stdout.trim().split('\n');
    expect(lines[0]).toBe('VncaError: Error in writeFileAtomic: path must be in a folder that can be created, but creating "/proc/self/x" failed (ENOENT).');
    expect(lines[1]).toBe('VncaError: Error in fileSystem.save: dir must be in a folder that can be created, but creating "/proc/self/x" failed (ENOENT).');
    tally.cases += 2;
    tally.named += 2;
  });

  it('saving where a parent is a file', async () => {
    writeFileSync(join(tmp, 'plain'), 'x');
    await expectNamed(() => writeFileAtomic(join(tmp, 'plain', 'a.png'), 'a'), /path must be in a folder, but ".*plain" is a file\./);
    await expectNamed(fileSystem(join(tmp, 'plain', 'm')).save!(faultArtifacts(1)), /Error in fileSystem\.save: dir must be in a folder/);
  });
});

describe('loadPngFolder checks the PNG header before decoding', () => {
  /** A valid PNG of `w`x`h` whose IHDR then claims `cw`x`ch` (CRC fixed, so only the size lies). */
  function png(w: number, h: number, cw = w, ch = h): Buffer {
    const b = Buffer.from(encodePng({ width: w, height: h, rgba: new Uint8Array(w * h * 4).fill(200) }));
    b.writeUInt32BE(cw, 16);
    b.writeUInt32BE(ch, 20);
    b.writeUInt32BE(crc32(b.subarray(12, 29)), 29);
    return b;
  }
  function crc32(bytes: Uint8Array): number {
    let c = ~0;
    for (const x of bytes) {
      c ^= x;
      for (let k = 0; k < 8; k++) c = (c >>> 1) ^ (0xedb88320 & -(c & 1));
    }
    return ~c >>> 0;
  }
  const dirWith = (files: Record<string, Buffer>) => {
    const dir = join(tmp, `png${n++}`);
    mkdirSync(dir);
    for (const [name, bytes] of Object.entries(files)) writeFileSync(join(dir, name), bytes);
    return dir;
  };

  it('a 74-byte PNG claiming 30000x30000 is refused from its header', async () => {
    const liar = png(2, 2, 30000, 30000);
    const rss = process.memoryUsage().rss;
    await expectNamed(() => loadPngFolder(dirWith({ 'a.png': liar })), /loadPngFolder: dir must hold valid PNG files, but "a\.png" declares 30000x30000 pixels, more than its \d+ bytes can hold/);
    await expectNamed(() => loadPngFolder(dirWith({ 'a.png': liar }), { size: 32 }), /"a\.png" declares 30000x30000 pixels/);
    expect(process.memoryUsage().rss - rss).toBeLessThan(200 * 2 ** 20);
  });

  it('a header that differs from the expected size, or from the first image, is refused before decoding', async () => {
    await expectNamed(() => loadPngFolder(dirWith({ 'a.png': png(4, 4, 64, 64) }), { size: 4 }), /one size \(4x4\), but "a\.png" is 64x64/);
    await expectNamed(() => loadPngFolder(dirWith({ 'a.png': png(4, 4), 'b.png': png(4, 4, 400, 400) })), /one size \(4x4\), but "b\.png" is 400x400/);
  });

  it('files that are not PNGs', async () => {
    await expectNamed(() => loadPngFolder(dirWith({ 'a.png': Buffer.from('not a png at all, just text here....') })), /"a\.png" does not start with a PNG signature and header/);
    await expectNamed(() => loadPngFolder(dirWith({ 'a.png': png(2, 2).subarray(0, 20) })), /does not start with a PNG signature and header/);
    await expectNamed(() => loadPngFolder(dirWith({ 'a.png': png(2, 2, 0, 2) })), /declares a size of 0x2/);
    expect(loadPngFolder(dirWith({ 'a.png': png(3, 2) })).width).toBe(3);
  });
});

// The same checks through the public load paths: VNCA.fromArtifacts (src/vae/persistence.ts),
// buildRule (src/layers/registry.ts) and GrowingNCA.load.
describe('end to end after wiring (issue 16): VNCA.load / fromArtifacts', () => {
  it('a config that declares zSize 8192 over weights for 4 is refused before the model is built', async () => {
    const dir = folder((_d, j) => { ((j.modelTopology as { config: VNCAOptions }).config).zSize = 8192; });
    await expectNamed(VNCA.load(fileSystem(dir)), /config\.zSize must be an integer no larger than the largest weight dimension/);
  });
  it('updateRule.className "Dense" is refused', async () => {
    const dir = folder((_d, j) => { (j.modelTopology as { updateRule: { className: string } }).updateRule.className = 'Dense'; });
    await expectNamed(VNCA.load(fileSystem(dir)), /'Dense' is a registered class but not a(n)? (UpdateRule|update rule)/);
  });
  it('artifacts from memory with weightSpecs [null] or NaN weights are refused', async () => {
    const a = await fileSystem(good).load!();
    await expectNamed(VNCA.load(tf.io.fromMemory({ ...a, weightSpecs: [null as never] })), /weightSpecs\[0\] must be an object/);
    const nan = new Float32Array((a.weightData as ArrayBuffer).slice(0)).fill(NaN);
    await expectNamed(VNCA.load(tf.io.fromMemory({ ...a, weightData: nan.buffer })), /must be finite/);
  });
  it('VNCA.fromArtifacts: null artifacts and a null config are named errors', () => {
    expect(() => VNCA.fromArtifacts(null as never)).toThrowError(VncaError);
    expect(() => VNCA.fromArtifacts({ modelTopology: { format: 'vnca', formatVersion: 1, config: null } } as never)).toThrowError(/must be a VNCA model/);
    tally.cases += 2;
    tally.named += 2;
  });
  it('GrowingNCA.load: hidden 8192 over weights for 8, NaN weights and weightSpecs [null] are refused', async () => {
    const nca = new GrowingNCA({ target: tf.zeros([4, 4, 4]) as tf.Tensor3D, channels: 8, hidden: 8, poolSize: 2, batchSize: 1, damageCount: 0 });
    let saved: tf.io.ModelArtifacts | null = null;
    await nca.save(tf.io.withSaveHandler(async (a) => { saved = a; return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } }; }));
    nca.dispose();
    const a = saved! as tf.io.ModelArtifacts;
    const topo = a.modelTopology as { config: Record<string, unknown> };
    const big = { ...a, modelTopology: { ...topo, config: { ...topo.config, hidden: 8192 } } };
    await expectNamed(GrowingNCA.load(tf.io.fromMemory(big)), /Error in GrowingNCA\.load: config\.hidden must be an integer no larger than the largest weight dimension/);
    const nan = new Float32Array((a.weightData as ArrayBuffer).slice(0)).fill(NaN);
    await expectNamed(GrowingNCA.load(tf.io.fromMemory({ ...a, weightData: nan.buffer })), /GrowingNCA\.load: artifacts\.weightData must be finite/);
    await expectNamed(GrowingNCA.load(tf.io.fromMemory({ ...a, weightSpecs: [null as never] })), /weightSpecs\[0\] must be an object/);
    const back = await GrowingNCA.load(tf.io.fromMemory(a));
    back.dispose();
  });
});
