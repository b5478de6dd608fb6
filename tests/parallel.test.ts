/**
 * ParallelVNCA (vnca/node): data parallelism over worker threads. From the sources the worker
 * runs its TypeScript through tsx; the last tests run the built package (dist/, made by
 * `npm run build`, which `npm test` runs first) as ESM and CJS in fresh processes.
 */
import { spawnSync } from 'node:child_process';
import type { Worker } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BACKENDS, expectClose, useBackend } from './helpers/backends.js';
import { VNCA, type VNCAOptions } from '../src/index.js';
import { ParallelVNCA } from '../src/node.js';
import { OneByOne } from './helpers/rules.js';
import { enableWasmTraining } from '../src/backend/wasm/register.js';
import {
  disableRelaxedSimdKernels, enableRelaxedSimdKernels, isRelaxedSimdEnabled, isRelaxedSimdSupported,
} from '../src/backend/relaxed/relaxedMatMul.js';

/** A tiny doubling model: 8x8 images grown from 2x2 in 2 doublings. */
const TINY: VNCAOptions = {
  zSize: 8, hidden: 8, nBlocks: 1, encoderChannels: [4, 8], imageSize: 8, nDoublings: 2, stepsPerDoubling: 2,
};

/** A tiny fixed-grid model (random rollout length, no pool). */
const TINY_FIXED: VNCAOptions = {
  growth: 'fixed', zSize: 8, hidden: 8, nBlocks: 0, inActivation: 'elu', outBias: false,
  encoderChannels: [4, 8], imageSize: 8, stepsRange: [2, 4],
};


/** Binary images [n, 8, 8, 1]. */
function batchOf(n: number, seed: number): tf.Tensor4D {
  return tf.tidy(() => tf.cast(tf.greater(tf.randomUniform([n, 8, 8, 1], 0, 1, 'float32', seed), 0.5), 'float32') as tf.Tensor4D);
}

/** A second model with the same config and weights. */
function copyOf(model: VNCA, options: VNCAOptions): VNCA {
  const m = new VNCA(options);
  const weights: tf.NamedTensorMap = {};
  for (const { name, variable } of model.namedWeights()) weights[name] = variable;
  m.setNamedWeights(weights);
  return m;
}

/** Every weight, flat, in namedWeights order. */
function weightsOf(model: VNCA): number[] {
  return model.namedWeights().flatMap(({ variable }) => Array.from(variable.dataSync()));
}

/** Gradients in trainableVariables order, flat. */
function gradsOf(model: VNCA, grads: tf.NamedTensorMap): number[] {
  return model.trainableVariables.flatMap((v) => Array.from(grads[v.name]!.dataSync()));
}

function threadsOf(par: ParallelVNCA): Worker[] {
  return (par as unknown as { threads: { worker: Worker }[] }).threads.map((t) => t.worker);
}

describe.each(BACKENDS)('ParallelVNCA on %s', (name) => {
  let model: VNCA;
  let par: ParallelVNCA;
  beforeAll(async () => {
    await useBackend(name);
    model = new VNCA(TINY);
    par = await ParallelVNCA.create(model, { workers: 1 });
  });
  afterAll(async () => {
    await par.dispose();
    model.dispose();
  });

  it('starts one worker on the same backend', () => {
    expect(par.workers).toBe(1);
    expect(par.backend).toBe(name);
    expect(par.model).toBe(model);
    // The main thread has no relaxed-SIMD kernels on here, so neither has the worker.
    expect(isRelaxedSimdEnabled()).toBe(false);
    expect(par.relaxedSimd).toEqual([false]);
  });

  it("combines the gradients of a split batch into the whole batch's (by hand and across threads)", async () => {
    const x = batchOf(5, 1);
    const noise = tf.randomNormal([5, 8], 0, 1, 'float32', 3) as tf.Tensor2D;
    const full = model.computeGradients(x, { noise });
    // By hand on one thread: rows 0-2 and 3-4, weighted 3/5 and 2/5.
    const [xa, xb] = tf.split(x, [3, 2]) as tf.Tensor4D[];
    const [na, nb] = tf.split(noise, [3, 2]) as tf.Tensor2D[];
    const a = model.computeGradients(xa!, { noise: na });
    const b = model.computeGradients(xb!, { noise: nb });
    const mixed = gradsOf(model, a.grads).map((g, i) => 0.6 * g + 0.4 * gradsOf(model, b.grads)[i]!);
    const want = gradsOf(model, full.grads);
    expectClose(mixed, want, 1e-4, 1e-5);
    expect(0.6 * a.loss + 0.4 * b.loss).toBeCloseTo(full.loss, 4);
    // Across threads: rows 0-2 on the main thread, 3-4 in the worker.
    const split = await par.computeGradients(x, { noise });
    expectClose(gradsOf(model, split.grads), want, 1e-4, 1e-5);
    expect(split.loss).toBeCloseTo(full.loss, 4);
    expect(split.reconstruction).toBeCloseTo(full.reconstruction, 4);
    expect(split.kl).toBeCloseTo(full.kl, 5);
    // A seed draws the noise model.computeGradients draws with it.
    const seeded = await par.computeGradients(x, { seed: 11 });
    const ref = model.computeGradients(x, { seed: 11 });
    expectClose(gradsOf(model, seeded.grads), gradsOf(model, ref.grads), 1e-4, 1e-5);
    // Seed 0 is a seed too (tfjs reads a falsy seed as none; tfSeed hands it over).
    const zero = await par.computeGradients(x, { seed: 0 });
    const zeroRef = model.computeGradients(x, { seed: 0 });
    expectClose(gradsOf(model, zero.grads), gradsOf(model, zeroRef.grads), 1e-4, 1e-5);
    tf.dispose([...Object.values(zero.grads), ...Object.values(zeroRef.grads)]);
    // A batch of one: the worker gets no rows.
    const x1 = tf.slice(x, 0, 1);
    const n1 = tf.slice(noise, 0, 1);
    const one = await par.computeGradients(x1, { noise: n1 });
    const oneRef = model.computeGradients(x1, { noise: n1 });
    expectClose(gradsOf(model, one.grads), gradsOf(model, oneRef.grads), 1e-6, 1e-7);
    tf.dispose([x, noise, xa!, xb!, na!, nb!, x1, n1, ...[full, a, b, split, seeded, ref, one, oneRef].flatMap((g) => Object.values(g.grads))]);
  });

  it("trains like model.trainStep given the same randomness: same losses, same updated weights", async () => {
    const reference = copyOf(model, TINY);
    const x = batchOf(4, 2);
    for (const seed of [1, 2, 3]) {
      const want = reference.trainStep(x, { seed });
      const got = await par.trainStep(x, { seed });
      expect(got.loss).toBeCloseTo(want.loss, 4);
      expect(got.kl).toBeCloseTo(want.kl, 5);
      expect(got.gradNorm).toBeCloseTo(want.gradNorm, 3);
      // Adam's first steps move each weight by about ±learningRate = 1e-4, so 1e-6 tells them apart.
      expectClose(weightsOf(model), weightsOf(reference), 1e-5, 1e-6);
    }
    x.dispose();
    reference.dispose();
  });

  it('samples the images model.sample gives, split across threads, and follows weight changes', async () => {
    const check = async (n: number): Promise<void> => {
      const got = await par.sample(n, { seed: 4 });
      const want = model.sample(n, { seed: 4 });
      expect(got.shape).toEqual([n, 8, 8, 1]);
      expectClose(got.dataSync(), want.dataSync(), 1e-4, 1e-5);
      tf.dispose([got, want]);
    };
    await check(5);
    await check(1); // the worker gets no rows
    const version = (par as unknown as { version: number }).version;
    await check(3);
    expect((par as unknown as { version: number }).version).toBe(version); // unchanged weights are not resent
    // Weights changed outside ParallelVNCA reach the worker before its next call.
    const changed: tf.NamedTensorMap = {};
    for (const { name: n, variable } of model.namedWeights()) changed[n] = tf.add(variable, 0.01);
    model.setNamedWeights(changed);
    tf.dispose(Object.values(changed));
    await check(4);
    expect((par as unknown as { version: number }).version).toBe(version + 1);
  });

  it('keeps the tensor count flat across calls', async () => {
    const x = batchOf(3, 5);
    await par.trainStep(x); // Adam's slots exist after the first step
    const before = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) {
      const r = await par.trainStep(x);
      expect(Number.isFinite(r.loss)).toBe(true);
      const g = await par.computeGradients(x);
      tf.dispose(Object.values(g.grads));
      (await par.sample(3)).dispose();
    }
    expect(tf.memory().numTensors).toBe(before);
    x.dispose();
  });

  it('runs calls made together one after another', async () => {
    const x = batchOf(2, 6);
    const results = await Promise.all([par.trainStep(x), par.trainStep(x), par.sample(2)]);
    expect(results[2].shape).toEqual([2, 8, 8, 1]);
    (results[2] as tf.Tensor).dispose();
    x.dispose();
  });

  it('trains a fixed-grid model with one rollout length for every thread', async () => {
    const a = new VNCA(TINY_FIXED);
    const b = copyOf(a, TINY_FIXED); // same generator state: both draw the same rollout lengths
    const p = await ParallelVNCA.create(b, { workers: 1 });
    const x = batchOf(4, 7);
    for (const seed of [1, 2]) {
      const want = a.trainStep(x, { seed });
      const got = await p.trainStep(x, { seed });
      expect(got.loss).toBeCloseTo(want.loss, 4);
    }
    expectClose(weightsOf(b), weightsOf(a), 1e-5, 1e-6);
    await p.dispose();
    tf.dispose([x]);
    a.dispose();
    b.dispose();
  });

  it('rejects bad input in the library style', async () => {
    const wrong = tf.zeros([2, 4, 4, 1]) as tf.Tensor4D;
    await expect(par.trainStep(wrong)).rejects.toThrowError(/Error in ParallelVNCA.trainStep: batch must be a float32 tensor of shape \[batch, 8, 8, 1\], but got a float32 tensor of shape \[2, 4, 4, 1\]/);
    await expect(par.trainStep(tf.zeros([8, 8, 1]) as never)).rejects.toThrowError(/Error in ParallelVNCA.trainStep: batch must be rank 4/);
    await expect(par.computeGradients([1, 2] as never)).rejects.toThrowError(/Error in ParallelVNCA.computeGradients: batch must be a tf.Tensor/);
    const x = batchOf(2, 8);
    await expect(par.trainStep(x, { noise: tf.zeros([3, 8]) as tf.Tensor2D })).rejects.toThrowError(/options.noise must be a float32 tensor of shape \[2, 8\]/);
    await expect(par.trainStep(x, { seed: 1.5 })).rejects.toThrowError(/options.seed must be an integer/);
    await expect(par.sample(0)).rejects.toThrowError(/Error in ParallelVNCA.sample: n must be an integer >= 1, but got 0/);
    tf.dispose([wrong, x]);
  });
});

describe.each(BACKENDS)('ParallelVNCA with workers: 0 on %s', (name) => {
  beforeAll(() => useBackend(name));

  it("is the model's own methods: identical results, any model", async () => {
    const model = new VNCA(TINY);
    const reference = copyOf(model, TINY);
    const par = await ParallelVNCA.create(model, { workers: 0 });
    expect(par.workers).toBe(0);
    expect(par.relaxedSimd).toEqual([]);
    const x = batchOf(3, 9);
    for (const seed of [1, 2]) expect(await par.trainStep(x, { seed })).toEqual(reference.trainStep(x, { seed }));
    expect(weightsOf(model)).toEqual(weightsOf(reference));
    const got = await par.sample(2, { seed: 3 });
    const want = reference.sample(2, { seed: 3 });
    expect(Array.from(got.dataSync())).toEqual(Array.from(want.dataSync()));
    // A custom rule and a sample pool need no worker here.
    const custom = new VNCA({ ...TINY, updateRule: new OneByOne({ channels: 8 }) });
    const pc = await ParallelVNCA.create(custom, { workers: 0 });
    expect(Number.isFinite((await pc.trainStep(x)).loss)).toBe(true);
    await Promise.all([par.dispose(), pc.dispose()]);
    tf.dispose([x, got, want]);
    [model, reference, custom].forEach((m) => m.dispose());
  });
});

describe('ParallelVNCA errors and lifetime', () => {
  beforeAll(() => useBackend('wasm'));

  it('rejects models a worker cannot rebuild, and bad options', async () => {
    const custom = new VNCA({ ...TINY, updateRule: new OneByOne({ channels: 8 }) });
    await expect(ParallelVNCA.create(custom, { workers: 1 })).rejects.toThrowError(/Error in ParallelVNCA.create: model.rule is a custom update rule \('test.OneByOne'\) that a worker thread cannot rebuild/);
    custom.dispose();
    const pooled = new VNCA({ ...TINY_FIXED, poolSize: 4, damageSize: 2 });
    await expect(ParallelVNCA.create(pooled, { workers: 1 })).rejects.toThrowError(/Error in ParallelVNCA.create: model trains with a sample pool \(poolSize 4\), whose states live on the main thread/);
    pooled.dispose();
    const model = new VNCA(TINY);
    await expect(ParallelVNCA.create(model, { workers: -1 })).rejects.toThrowError(/options.workers must be an integer in \[0, 256\], but got -1/);
    await expect(ParallelVNCA.create(model, { threads: 2 } as never)).rejects.toThrowError(/options.threads is not an option/);
    await expect(ParallelVNCA.create({} as never)).rejects.toThrowError(/Error in ParallelVNCA.create: model must be a VNCA/);
    await expect(ParallelVNCA.create(model, { workers: 1, backend: 'nope' })).rejects.toThrowError(/options.backend 'nope' could not start in a worker thread \(backend module '@tensorflow\/tfjs-backend-nope'\)/);
    model.dispose();
    await expect(ParallelVNCA.create(model)).rejects.toThrowError(/model is a disposed VNCA/);
  });

  it('ends its workers on dispose and rejects calls afterwards', async () => {
    const model = new VNCA(TINY);
    const par = await ParallelVNCA.create(model, { workers: 1 });
    const [worker] = threadsOf(par);
    expect(worker!.threadId).toBeGreaterThan(0);
    await par.dispose();
    expect(worker!.threadId).toBe(-1); // the thread has exited
    await par.dispose(); // harmless
    await expect(par.sample(1)).rejects.toThrowError(/Error in ParallelVNCA.sample: this is a disposed ParallelVNCA/);
    await expect(par.trainStep(batchOf(1, 1))).rejects.toThrowError(/this is a disposed ParallelVNCA/);
    model.dispose();
  });
});

/**
 * Above the relaxed-SIMD kernels' thresholds (1x1 products of at least 2^16 MACs, 16 input
 * channels for a convolution): 16x16 images grown from 2x2, 32 channels.
 */
const ABOVE_THRESHOLDS: VNCAOptions = {
  zSize: 32, hidden: 32, nBlocks: 1, encoderChannels: [16, 32], imageSize: 16, nDoublings: 3, stepsPerDoubling: 2,
};

// Runs where the runtime has relaxed SIMD (Node 22 and 24; on Node 20 it is skipped, and the
// tests above check that the workers stay on XNNPACK).
describe.skipIf(!isRelaxedSimdSupported())('ParallelVNCA with the relaxed-SIMD kernels (Node 22+)', () => {
  let model: VNCA;
  let reference: VNCA;
  let par: ParallelVNCA;
  beforeAll(async () => {
    await useBackend('wasm');
    enableWasmTraining();
    expect(await enableRelaxedSimdKernels()).toBe(true);
    model = new VNCA(ABOVE_THRESHOLDS);
    reference = copyOf(model, ABOVE_THRESHOLDS);
    par = await ParallelVNCA.create(model, { workers: 2 });
  });
  afterAll(async () => {
    await par.dispose();
    model.dispose();
    reference.dispose();
    disableRelaxedSimdKernels();
  });

  it('turns them on in every wasm worker, following the main thread', () => {
    expect(par.relaxedSimd).toEqual([true, true]);
  });

  it("trains and samples like the main thread's model to float tolerance", async () => {
    const x = tf.tidy(() => tf.cast(tf.greater(tf.randomUniform([6, 16, 16, 1], 0, 1, 'float32', 1), 0.5), 'float32') as tf.Tensor4D);
    const noise = tf.randomNormal([6, 32], 0, 1, 'float32', 2) as tf.Tensor2D;
    const full = model.computeGradients(x, { noise });
    const split = await par.computeGradients(x, { noise });
    expectClose(gradsOf(model, split.grads), gradsOf(model, full.grads), 1e-3, 1e-5);
    expect(split.loss).toBeCloseTo(full.loss, 3);
    for (const seed of [1, 2]) {
      const want = reference.trainStep(x, { seed });
      const got = await par.trainStep(x, { seed });
      expect(got.loss).toBeCloseTo(want.loss, 3);
      expect(got.gradNorm / want.gradNorm).toBeCloseTo(1, 4);
      // Adam's first steps move every weight by about ±lr whatever the gradient's size, so a
      // gradient element near 0 whose last bits differ between the kernels' split and whole
      // batch can move the other way: up to 2 lr a step (CI saw 1e-5 on a 0.01 weight).
      expectClose(weightsOf(model), weightsOf(reference), 1e-4, 2 * 2 * model.config.learningRate);
    }
    const got = await par.sample(6, { seed: 3 });
    const want = reference.sample(6, { seed: 3 });
    expectClose(got.dataSync(), want.dataSync(), 1e-4, 1e-5);
    // XNNPACK's result is the same to float tolerance. (That the kernels' products differ from
    // XNNPACK's in their last bits is asserted in tests/relaxedSimd.test.ts. It cannot be asserted
    // on a whole sample here: two steps from a zero-initialised output layer leave the rule's
    // updates so small that their last-bit differences mostly round away in the state; of 1,536
    // values 0-13 differ, none for about 1 random initialisation in 10.)
    disableRelaxedSimdKernels();
    const xnnpack = reference.sample(6, { seed: 3 });
    expect(await enableRelaxedSimdKernels()).toBe(true);
    expectClose(xnnpack.dataSync(), want.dataSync(), 1e-4, 1e-5);
    tf.dispose([x, noise, got, want, xnnpack, ...Object.values(full.grads), ...Object.values(split.grads)]);
  });

  it('leaves the workers on XNNPACK when the main thread turned the kernels off', async () => {
    disableRelaxedSimdKernels();
    const p = await ParallelVNCA.create(model, { workers: 1 });
    expect(p.relaxedSimd).toEqual([false]);
    await p.dispose();
    expect(await enableRelaxedSimdKernels()).toBe(true);
  });
});

describe('ParallelVNCA from the built package', () => {
  const root = new URL('..', import.meta.url).pathname;
  const body = `
    await tf.setBackend('wasm');
    // True on Node 22+, false on Node 20: the worker must follow (vnca and vnca/node share the kernels' state).
    const fma = await enableRelaxedSimdKernels();
    const m = new VNCA(${JSON.stringify(TINY)});
    const par = await ParallelVNCA.create(m, { workers: 1 });
    const x = tf.zeros([2, 8, 8, 1]);
    const r = await par.trainStep(x, { seed: 1 });
    const a = await par.sample(3, { seed: 1 });
    const b = m.sample(3, { seed: 1 });
    console.log(JSON.stringify({ workers: par.workers, fma, relaxedSimd: par.relaxedSimd, loss: r.loss, diff: tf.max(tf.abs(tf.sub(a, b))).dataSync()[0] }));
    await par.dispose();`;
  it.each([
    ['ESM', ['--input-type=module', '-e', `import * as tf from '@tensorflow/tfjs-core'; import '@tensorflow/tfjs-backend-wasm'; import { VNCA, enableRelaxedSimdKernels } from 'vnca'; import { ParallelVNCA } from 'vnca/node'; ${body}`]],
    ['CJS', ['-e', `const tf = require('@tensorflow/tfjs-core'); require('@tensorflow/tfjs-backend-wasm'); const { VNCA, enableRelaxedSimdKernels } = require('vnca'); const { ParallelVNCA } = require('vnca/node'); (async () => { ${body} })();`]],
  ])('runs its worker thread on wasm through %s and exits', (_kind, args) => {
    const r = spawnSync(process.execPath, args as string[], { cwd: root, encoding: 'utf8', timeout: 60_000 });
    expect(r.status, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout.trim().split('\n').filter((l) => l.startsWith('{')).pop()!);
    expect(out.workers).toBe(1);
    expect(out.fma).toBe(isRelaxedSimdSupported());
    expect(out.relaxedSimd).toEqual([out.fma]);
    expect(Number.isFinite(out.loss)).toBe(true);
    expect(out.diff).toBeLessThan(1e-5);
  });
});
