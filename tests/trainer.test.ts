/**
 * The Trainer (src/vae/training.ts) under bad numbers and for resumable runs (issue 16,
 * sections 1, 2 and 5): inputs rejected before any work, non-finite steps skipped before they
 * reach the weights or Adam's moments, `fit` stopping after consecutive skipped steps, the
 * optimiser reset, Adam's settings, the gradient map's order, epoch shuffling, and a
 * checkpoint with the optimiser's state that resumes the same curve.
 */
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectClose, useBackend } from './helpers/backends.js';
import { GrowingNCA, VNCA, VncaError, type VNCAOptions } from '../src/index.js';
import { ParallelVNCA, fileSystem } from '../src/node.js';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BatchSampler } from '../src/vae/batchSampler.js';

/** A tiny doubling model: 8x8 images grown from 2x2 in 2 doublings. */
const TINY: VNCAOptions = {
  zSize: 4, hidden: 4, nBlocks: 1, encoderChannels: [2, 2, 2], imageSize: 8, nDoublings: 2, stepsPerDoubling: 2,
};

/** `n` binary 8x8 images, seeded. */
function batchOf(n: number, seed: number): tf.Tensor4D {
  return tf.tidy(() => tf.cast(tf.greater(tf.randomUniform([n, 8, 8, 1], 0, 1, 'float32', seed), 0.5), 'float32') as tf.Tensor4D);
}

/** The model's weights as plain arrays, by name. */
function weightsOf(m: VNCA): Record<string, Float32Array> {
  return Object.fromEntries(m.namedWeights().map(({ name, variable }) => [name, variable.dataSync() as Float32Array]));
}

/** A second model with `m`'s weights (and config). */
function twin(m: VNCA, options: VNCAOptions = TINY): VNCA {
  const t = new VNCA(options);
  t.setNamedWeights(Object.fromEntries(m.namedWeights().map(({ name, variable }) => [name, variable])));
  return t;
}

function expectSameWeights(a: Record<string, Float32Array>, b: Record<string, Float32Array>, rtol = 0, atol = 0): void {
  expect(Object.keys(a)).toEqual(Object.keys(b));
  for (const k of Object.keys(a)) {
    if (rtol === 0 && atol === 0) expect(Array.from(a[k]!), k).toEqual(Array.from(b[k]!));
    else expectClose(a[k]!, b[k]!, rtol, atol);
  }
}

/** The largest absolute difference between two models' weights. */
function maxAbsDiff(a: Record<string, Float32Array>, b: Record<string, Float32Array>): number {
  let d = 0;
  for (const k of Object.keys(a)) a[k]!.forEach((v, i) => { d = Math.max(d, Math.abs(v - b[k]![i]!)); });
  return d;
}

/** Sets every value of the model's `i`-th weight to `v`; returns a function that restores it. */
function poison(m: VNCA, v: number, i = 0): () => void {
  const { variable } = m.namedWeights()[i]!;
  const saved = tf.clone(variable);
  tf.tidy(() => variable.assign(tf.fill(variable.shape, v)));
  return () => {
    variable.assign(saved);
    saved.dispose();
  };
}

/** Named-error cases and skipped steps seen, printed at the end for the figures. */
const tally = { cases: 0, named: 0, skipped: 0 };
afterAll(() => console.log(`trainer bad-number cases: ${tally.cases}, named VncaErrors: ${tally.named}, skipped steps: ${tally.skipped}`));

function expectNamed(f: () => unknown, re: RegExp): void {
  tally.cases++;
  expect(f).toThrowError(VncaError);
  expect(f).toThrowError(re);
  tally.named++;
}

describe('bad inputs are rejected before any work (cpu)', () => {
  let model: VNCA;
  beforeAll(async () => {
    await useBackend('cpu');
    model = new VNCA(TINY);
  });
  afterAll(() => model.dispose());

  /** A good batch of 4 with one value changed. */
  const withValue = (v: number) => tf.tidy(() => {
    const b = batchOf(4, 1);
    const mask = tf.reshape(tf.oneHot(tf.tensor1d([37], 'int32'), 4 * 64), [4, 8, 8, 1]);
    return tf.where(tf.cast(mask, 'bool'), tf.fill(b.shape, v), b) as tf.Tensor4D;
  });
  const cases: [string, () => tf.Tensor4D, RegExp][] = [
    ['one NaN pixel', () => withValue(NaN), /batch must hold finite values in \[0, 1\], but it holds NaN/],
    ['all NaN', () => tf.fill([4, 8, 8, 1], NaN) as tf.Tensor4D, /holds NaN/],
    ['one Infinity', () => withValue(Infinity), /batch must hold values in \[0, 1\], but its values range over \[0, Infinity\]/],
    ['one -Infinity', () => withValue(-Infinity), /range over \[-Infinity, 1\]/],
    ['a pixel of 1e30', () => withValue(1e30), /range over \[0, 1\.0000000150474662e\+30\]/],
    ['a pixel of -0.5', () => withValue(-0.5), /range over \[-0\.5, 1\]/],
    ['a pixel of 1.5', () => withValue(1.5), /range over \[0, 1\.5\]/],
    ['pixels in [0, 255]', () => tf.fill([4, 8, 8, 1], 255) as tf.Tensor4D, /range over \[255, 255\]/],
    ['batch 0', () => tf.zeros([0, 8, 8, 1]) as tf.Tensor4D, /batch must hold at least one image, but got a batch of 0/],
  ];

  it.each(cases)('trainStep and computeGradients: %s; no weight changes, no tensor leaks', (_name, make, re) => {
    const x = make();
    const before = weightsOf(model);
    const count = tf.memory().numTensors;
    expectNamed(() => model.trainStep(x), new RegExp(`Error in VNCA\\.trainStep: .*${re.source}`));
    expectNamed(() => model.computeGradients(x), new RegExp(`Error in VNCA\\.computeGradients: .*${re.source}`));
    expect(tf.memory().numTensors).toBe(count);
    expectSameWeights(weightsOf(model), before);
    x.dispose();
  });

  it('fit checks the whole data set once, before the first step', async () => {
    const data = tf.concat([batchOf(7, 2), tf.fill([1, 8, 8, 1], NaN)]) as tf.Tensor4D;
    let steps = 0;
    tally.cases++;
    await expect(model.fit(data, { steps: 3, batchSize: 2, onProgress: () => { steps++; } })).rejects.toThrowError(/Error in VNCA\.fit: data must hold finite values in \[0, 1\], but it holds NaN/);
    tally.named++;
    expect(steps).toBe(0);
    data.dispose();
  });

  it('NaN or Infinity noise is rejected', () => {
    const x = batchOf(2, 3);
    for (const v of [NaN, Infinity, -Infinity]) {
      const noise = tf.tidy(() => tf.concat([tf.zeros([1, 4]), tf.fill([1, 4], v)]) as tf.Tensor2D);
      expectNamed(() => model.trainStep(x, { noise }), /Error in VNCA\.trainStep: options\.noise must be finite, but it holds NaN or ±Infinity/);
      expectNamed(() => model.computeGradients(x, { noise }), /Error in VNCA\.computeGradients: options\.noise must be finite/);
      noise.dispose();
    }
    x.dispose();
  });

  it('ParallelVNCA.trainStep and computeGradients reject the same batches', async () => {
    const par = await ParallelVNCA.create(model, { workers: 0 });
    const x = withValue(NaN);
    for (const call of [() => par.trainStep(x), () => par.computeGradients(x)]) {
      tally.cases++;
      await expect(call()).rejects.toThrowError(/Error in ParallelVNCA\.(trainStep|computeGradients): batch must hold finite values in \[0, 1\], but it holds NaN/);
      tally.named++;
    }
    x.dispose();
    await par.dispose();
  });

  it('GrowingNCA rejects a NaN or Infinity target in its constructor', () => {
    for (const v of [NaN, Infinity]) {
      const target = tf.tidy(() => tf.concat([tf.zeros([1, 4, 4]), tf.fill([3, 4, 4], v)]) as tf.Tensor3D);
      expectNamed(() => new GrowingNCA({ target }), /Error in GrowingNCA: options\.target must be finite, but it holds NaN or ±Infinity/);
      target.dispose();
    }
  });
});

describe('non-finite steps are skipped: weights and Adam moments never see a NaN (cpu)', () => {
  beforeAll(() => useBackend('cpu'));

  it('trainStep skips a step whose loss is NaN, and the run continues exactly as without it', () => {
    const a = new VNCA(TINY);
    const b = twin(a);
    const x1 = batchOf(4, 1);
    const x2 = batchOf(4, 2);
    for (const m of [a, b]) expect(m.trainStep(x1, { seed: 1 }).skipped).toBe(false);
    // a: a step with a poisoned weight (NaN loss), skipped; the weight is restored afterwards.
    const restore = poison(a, NaN, 3);
    const count = tf.memory().numTensors;
    const bad = a.trainStep(x2, { seed: 9 });
    expect(tf.memory().numTensors).toBe(count);
    tally.skipped++;
    expect(bad.skipped).toBe(true);
    expect(Number.isNaN(bad.loss)).toBe(true);
    restore();
    // Both take the same next step: equal only if the skipped step touched neither weights nor moments.
    const ra = a.trainStep(x2, { seed: 2 });
    const rb = b.trainStep(x2, { seed: 2 });
    expect(ra).toEqual(rb);
    expect(ra.skipped).toBe(false);
    expectSameWeights(weightsOf(a), weightsOf(b));
    tf.dispose([x1, x2]);
    a.dispose();
    b.dispose();
  });

  it('an Infinity weight (Infinity gradient norm) is skipped too', () => {
    const m = new VNCA(TINY);
    const x = batchOf(2, 1);
    poison(m, Infinity, 0);
    const r = m.trainStep(x, { seed: 1 });
    tally.skipped++;
    expect(r.skipped).toBe(true);
    expect(Number.isFinite(r.loss) && Number.isFinite(r.gradNorm)).toBe(false);
    x.dispose();
    m.dispose();
  });

  it('fit stops after maxSkippedSteps consecutive skipped steps with a named error', async () => {
    const m = new VNCA(TINY);
    const data = batchOf(8, 4);
    poison(m, NaN, 3);
    const seen: number[] = [];
    tally.cases++;
    await expect(m.fit(data, { steps: 20, batchSize: 2, maxSkippedSteps: 3, onProgress: (p) => { seen.push(p.step); } }))
      .rejects.toThrowError(/Error in VNCA\.fit: training stopped after 3 consecutive skipped steps \(steps 1 to 3: loss NaN, gradient norm NaN\); nothing of them was applied, so the weights and optimiser state are those of step 0\..*options\.maxSkippedSteps/);
    tally.named++;
    tally.skipped += 3;
    expect(seen).toEqual([1, 2]);
    // The default limit is 5.
    await expect(m.fit(data, { steps: 20, batchSize: 2 })).rejects.toThrowError(/stopped after 5 consecutive skipped steps/);
    tally.skipped += 5;
    await expect(m.fit(data, { steps: 1, batchSize: 2, maxSkippedSteps: 0 })).rejects.toThrowError(/options\.maxSkippedSteps must be an integer >= 1/);
    data.dispose();
    m.dispose();
  });

  it('computeGradients then applyGradients with a NaN or Infinity gradient is refused, and nothing changes', () => {
    const m = new VNCA(TINY);
    const ref = twin(m);
    const x = batchOf(2, 5);
    const g = m.computeGradients(x, { seed: 1 });
    const name = Object.keys(g.grads)[2]!;
    for (const v of [NaN, Infinity]) {
      const bad = { ...g.grads, [name]: tf.fill(g.grads[name]!.shape, v) };
      expectNamed(() => m.applyGradients(bad), /Error in VNCA\.applyGradients: grads must be finite, but their global norm is (NaN|Infinity); nothing was applied/);
      bad[name]!.dispose();
    }
    // The refused calls left no optimiser state: applying the good gradients matches a fresh model.
    m.applyGradients(g.grads);
    const gr = ref.computeGradients(x, { seed: 1 });
    ref.applyGradients(gr.grads);
    tf.dispose(Object.values(gr.grads));
    expectSameWeights(weightsOf(m), weightsOf(ref));
    tf.dispose([x, ...Object.values(g.grads)]);
    m.dispose();
    ref.dispose();
  });

  it('ParallelVNCA.trainStep (one worker thread) skips a NaN step as model.trainStep does', async () => {
    const m = new VNCA(TINY);
    const par = await ParallelVNCA.create(m, { workers: 1 });
    const x = batchOf(4, 6);
    const restore = poison(m, NaN, 3);
    const before = weightsOf(m);
    const r = await par.trainStep(x, { seed: 1 });
    tally.skipped++;
    expect(r.skipped).toBe(true);
    expectSameWeights(weightsOf(m), before);
    restore();
    const ok = await par.trainStep(x, { seed: 1 });
    expect(ok.skipped).toBe(false);
    expect(Number.isFinite(ok.loss)).toBe(true);
    x.dispose();
    await par.dispose();
    m.dispose();
  }, 60_000);

  it('resetOptimizer forgets Adam\'s moments: the next step equals a fresh model\'s first step', () => {
    const m = new VNCA(TINY);
    const x = batchOf(4, 7);
    m.trainStep(x, { seed: 1 });
    m.trainStep(x, { seed: 2 });
    const fresh = twin(m);
    m.resetOptimizer();
    expect(m.trainStep(x, { seed: 3 })).toEqual(fresh.trainStep(x, { seed: 3 }));
    expectSameWeights(weightsOf(m), weightsOf(fresh));
    x.dispose();
    m.dispose();
    fresh.dispose();
  });

  it('GrowingNCA.trainStep skips a NaN step: rule, pool and step count unchanged', () => {
    const target = tf.tidy(() => tf.pad(tf.ones([2, 2, 4]), [[2, 2], [2, 2], [0, 0]]) as tf.Tensor3D);
    const nca = new GrowingNCA({ target, channels: 8, hidden: 8, poolSize: 4, batchSize: 2, damageCount: 0, stepsRange: [2, 3], seed: 1 });
    target.dispose();
    expect(nca.trainStep().skipped).toBe(false);
    const w = nca.rule.trainableWeights[0]!.read() as tf.Variable;
    const saved = tf.clone(w);
    tf.tidy(() => w.assign(tf.fill(w.shape, NaN)));
    const others = nca.rule.trainableWeights.slice(1).map((v) => Array.from(v.read().dataSync()));
    const count = tf.memory().numTensors;
    const r = nca.trainStep();
    tally.skipped++;
    expect(r.skipped).toBe(true);
    expect(tf.memory().numTensors).toBe(count);
    expect(nca.rule.trainableWeights.slice(1).map((v) => Array.from(v.read().dataSync()))).toEqual(others);
    w.assign(saved);
    saved.dispose();
    nca.resetOptimizer();
    const ok = nca.trainStep();
    expect(ok.skipped).toBe(false);
    expect(Number.isFinite(ok.loss)).toBe(true);
    nca.dispose();
  });
});

describe('fit draws batches by epoch (default) or with replacement, seeded', () => {
  it('epoch shuffling sees every image once an epoch; the same seed gives the same batches', () => {
    const s = new BatchSampler(10, 3, 'epoch', 7);
    const epoch1 = [s.next(), s.next(), s.next()].flat();
    const epoch2 = [s.next(), s.next(), s.next()].flat();
    for (const e of [epoch1, epoch2]) {
      expect(new Set(e).size).toBe(9);
      expect(e.every((i) => i >= 0 && i < 10)).toBe(true);
    }
    expect(epoch1).not.toEqual(epoch2);
    const again = new BatchSampler(10, 3, 'epoch', 7);
    expect([again.next(), again.next(), again.next()].flat()).toEqual(epoch1);
    expect(new BatchSampler(10, 3, 'replacement', 7).next()).toEqual(new BatchSampler(10, 3, 'replacement', 7).next());
  });

  it('fit refuses an unknown shuffle', async () => {
    await useBackend('cpu');
    const m = new VNCA(TINY);
    const data = batchOf(4, 1);
    await expect(m.fit(data, { steps: 1, batchSize: 2, shuffle: 'sometimes' as never })).rejects.toThrowError(/options\.shuffle must be one of/);
    const h = await m.fit(data, { steps: 3, batchSize: 2, shuffle: 'replacement' });
    expect(h.map((r) => r.skipped)).toEqual([false, false, false]);
    data.dispose();
    m.dispose();
  });
});

describe('Adam as the reference has it: epsilon 1e-8, betas as options, moments by variable (cpu)', () => {
  beforeAll(() => useBackend('cpu'));

  /** Weight change of one Adam step from gradients that are all `g`, learning rate 1, no clipping. */
  function firstStep(options: VNCAOptions, g: number): number {
    const m = new VNCA({ ...TINY, learningRate: 1, clipNorm: 0, ...options });
    const v = m.trainableVariables[0]!;
    const before = v.dataSync()[0]!;
    const grads = Object.fromEntries(m.trainableVariables.map((w) => [w.name, tf.fill(w.shape, g)]));
    m.applyGradients(grads);
    const delta = before - v.dataSync()[0]!;
    tf.dispose(Object.values(grads));
    m.dispose();
    return delta;
  }

  it('epsilon is 1e-8 by default: a first step of gradients 1e-7 moves each weight by 1e-7 / (1e-7 + 1e-8)', () => {
    // First Adam step: m^ = g, v^ = g^2, so the step is lr * g / (|g| + eps).
    expect(firstStep({}, 1e-7)).toBeCloseTo(1 / 1.1, 4);
    expect(firstStep({ adamEpsilon: 1e-7 }, 1e-7)).toBeCloseTo(0.5, 4); // tfjs's default on cpu/wasm
    expect(firstStep({ adamEpsilon: 1e-3 }, 1e-3)).toBeCloseTo(0.5, 4);
  });

  it("'auto' keeps the backend's epsilon where it is larger than 1e-7 (16-bit floats)", async () => {
    const { adamEpsilon } = await import('../src/vae/training.js');
    const m = new VNCA(TINY);
    expect(adamEpsilon(m.config)).toBe(1e-8);
    const backend = tf.backend();
    const own = backend.epsilon;
    try {
      backend.epsilon = () => 1e-4; // as WebGL without float32 textures
      expect(adamEpsilon(m.config)).toBe(1e-4);
      backend.epsilon = () => 1e-7; // cpu, wasm, WebGL with float32
      expect(adamEpsilon(m.config)).toBe(1e-8);
    } finally {
      backend.epsilon = own;
    }
    expect(adamEpsilon({ ...m.config, adamEpsilon: 3e-6 })).toBe(3e-6);
    m.dispose();
  });

  it('betas change the steps, are checked, and are saved with the config', async () => {
    // Second step with betas (0, 0): m^ = g2, v^ = g2^2, the same as a first step.
    const m = new VNCA({ ...TINY, learningRate: 1, clipNorm: 0, adamBeta1: 0, adamBeta2: 0 });
    expect(m.config).toMatchObject({ adamBeta1: 0, adamBeta2: 0, adamEpsilon: 'auto' });
    const v = m.trainableVariables[0]!;
    for (const g of [1, 1e-2]) {
      const grads = Object.fromEntries(m.trainableVariables.map((w) => [w.name, tf.fill(w.shape, g)]));
      const before = v.dataSync()[0]!;
      m.applyGradients(grads);
      expect(before - v.dataSync()[0]!).toBeCloseTo(1, 4);
      tf.dispose(Object.values(grads));
    }
    let saved: tf.io.ModelArtifacts | null = null;
    await m.save(tf.io.withSaveHandler(async (a) => { saved = a; return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } }; }));
    const back = VNCA.fromArtifacts(saved!);
    expect(back.config).toMatchObject({ adamBeta1: 0, adamBeta2: 0, adamEpsilon: 'auto' });
    back.dispose();
    m.dispose();
    const bad: [VNCAOptions, RegExp][] = [
      [{ adamEpsilon: 0 }, /options\.adamEpsilon must be a finite number > 0, but got 0/],
      [{ adamEpsilon: -1e-8 }, /options\.adamEpsilon must be a finite number > 0/],
      [{ adamEpsilon: 'x' as never }, /options\.adamEpsilon must be a finite number > 0, but got "x"/],
      [{ adamBeta1: 1 }, /options\.adamBeta1 must be a finite number >= 0 and < 1, but got 1/],
      [{ adamBeta2: NaN }, /options\.adamBeta2 must be a finite number >= 0 and < 1, but got NaN/],
    ];
    for (const [o, re] of bad) expectNamed(() => new VNCA({ ...TINY, ...o }), re);
  });

  it('applyGradients orders the map by the model\'s variables: reversed and swapped keys give the natural result', () => {
    // tfjs's Adam keeps its moments by position in the map: a step whose map lists the
    // variables in another order than the earlier steps' used to fail to broadcast (reversed)
    // or to apply one bias's moments to another of the same shape (swapped), silently.
    const natural = new VNCA(TINY);
    const mixed = twin(natural);
    const mixed2 = twin(natural);
    const x = batchOf(4, 11);
    const same = (k: string[]) => k;
    const reverse = (k: string[]) => [...k].reverse();
    const swap = (k: string[]) => { const o = [...k]; [o[1], o[3]] = [o[3]!, o[1]!]; return o; };
    expect(natural.trainableVariables[1]!.shape).toEqual(natural.trainableVariables[3]!.shape);
    const orders: [VNCA, ((k: string[]) => string[])[]][] = [
      [natural, [same, same, same, same]],
      [mixed, [same, reverse, swap, same]],
      [mixed2, [swap, same, reverse, swap]],
    ];
    for (const [m, steps] of orders) {
      steps.forEach((reorder, seed) => {
        const { grads } = m.computeGradients(x, { seed: seed + 1 }); // tfjs takes seed 0 for no seed
        m.applyGradients(Object.fromEntries(reorder(Object.keys(grads)).map((k) => [k, grads[k]!])));
        tf.dispose(Object.values(grads));
      });
    }
    expectSameWeights(weightsOf(mixed), weightsOf(natural));
    expectSameWeights(weightsOf(mixed2), weightsOf(natural));
    x.dispose();
    for (const m of [natural, mixed, mixed2]) m.dispose();
  });
});

describe('checkpoints that resume: save({ includeOptimizer: true }) then load continues the same curve (wasm)', () => {
  let dir: string;
  beforeAll(async () => {
    await useBackend('wasm');
    dir = mkdtempSync(join(tmpdir(), 'vnca-resume-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const FIXED: VNCAOptions = { ...TINY, growth: 'fixed', nBlocks: 0, inActivation: 'elu', outBias: false, stepsRange: [2, 5] };
  const K = 3;
  const M = 3;
  /** Step i (1-based) of every run: the same batch and noise. */
  const step = (m: VNCA, i: number) => {
    const x = batchOf(4, i);
    const r = m.trainStep(x, { seed: i });
    x.dispose();
    return r;
  };

  it.each([
    ['doubling', TINY],
    ['fixed (rollout lengths from the rng)', FIXED],
    ['fixed-half (pUpdate 0.5: the update masks follow the step seed)', { ...FIXED, pUpdate: 0.5 }],
  ] as const)('%s: k + m steps equal k steps, save, load, m steps', async (name, options) => {
    const straight = new VNCA(options);
    const first = twin(straight, options);
    const losses = Array.from({ length: K + M }, (_, i) => step(straight, i + 1).loss);
    for (let i = 1; i <= K; i++) step(first, i);
    const at = join(dir, name.split(' ')[0]!);
    await first.save(fileSystem(at), { includeOptimizer: true });
    const json = JSON.parse(readFileSync(join(at, 'model.json'), 'utf8'));
    expect(json.userDefinedMetadata.vncaTraining).toMatchObject({ step: K, adamIterations: K });
    expect(json.weightsManifest[0].weights.filter((w: { name: string }) => w.name.startsWith('optimizer/adam/')).length).toBe(2 * first.trainableVariables.length);
    const count = tf.memory().numTensors;
    const resumed = await VNCA.load(fileSystem(at));
    expect(resumed.trainingSteps).toBe(K);
    const after = Array.from({ length: M }, (_, i) => step(resumed, K + i + 1).loss);
    expectClose(after, losses.slice(K), 1e-5, 1e-6);
    const target = weightsOf(straight);
    expectSameWeights(weightsOf(resumed), target, 1e-5, 1e-7);
    expect(resumed.trainingSteps).toBe(K + M);
    const resumedGap = maxAbsDiff(weightsOf(resumed), target);
    resumed.dispose();
    expect(tf.memory().numTensors).toBeLessThanOrEqual(count);
    // The weights alone do not resume the curve: a fresh Adam (and rng) takes other steps.
    await first.save(fileSystem(at));
    const weightsOnly = await VNCA.load(fileSystem(at));
    for (let i = 1; i <= M; i++) step(weightsOnly, K + i);
    expect(maxAbsDiff(weightsOf(weightsOnly), target)).toBeGreaterThan(100 * resumedGap + 1e-6);
    for (const m of [straight, first, weightsOnly]) m.dispose();
  }, 60_000);

  /** A tiny pooled non-doubling model: a pool of 6, filled after two batches of 4. */
  const POOLED: VNCAOptions = {
    ...FIXED, poolSize: 6, poolFraction: 0.5, damageFraction: 0.25, damageSize: 3, stepsRange: [2, 3],
  };

  it.each([
    ['the pool still filling', 1, 2],
    ['the pool full, mid-epoch', 3, 3],
    ['the pool full, pUpdate 0.5 (seeded update masks)', 3, 3, 0.5],
  ] as const)('a pooled model through fit, %s: fit k + m equals fit k, save, load, fit m (pool and batch sampler saved)', async (what, k, m, pUpdate: number = 1) => {
    const data = batchOf(10, 77);
    const fit = (model: VNCA, steps: number) => model.fit(data, { steps, batchSize: 4, seed: 0 }).then((h) => h.map((r) => r.loss));
    const options = { ...POOLED, pUpdate };
    const straight = new VNCA(options);
    const first = twin(straight, options);
    const losses = await fit(straight, k + m);
    await fit(first, k);
    const at = join(dir, `pooled-${k}-${pUpdate}`);
    await first.save(fileSystem(at), { includeOptimizer: true });
    const json = JSON.parse(readFileSync(join(at, 'model.json'), 'utf8'));
    const meta = json.userDefinedMetadata.vncaTraining;
    expect(meta.pool).toMatchObject({ entries: k === 1 ? 4 : 6, full: k !== 1 });
    expect(meta.sampler).toMatchObject({ n: 10, batchSize: 4, shuffle: 'epoch', seed: 0, batches: k });
    const count = tf.memory().numTensors;
    const resumed = await VNCA.load(fileSystem(at));
    const after = await fit(resumed, m);
    expectClose(after, losses.slice(k), 1e-5, 1e-6);
    expectSameWeights(weightsOf(resumed), weightsOf(straight), 1e-5, 1e-7);
    resumed.dispose();
    expect(tf.memory().numTensors).toBeLessThanOrEqual(count);
    // An older checkpoint (no pool, sampler or rng state: the rng is replayed by its draws) still
    // loads, and without the pool and the sampler the run takes other steps.
    delete json.userDefinedMetadata.vncaTraining.pool;
    delete json.userDefinedMetadata.vncaTraining.sampler;
    delete json.userDefinedMetadata.vncaTraining.rngState;
    const weights = json.weightsManifest[0].weights;
    const artifacts = await fileSystem(at).load!();
    const keep = (artifacts.weightSpecs ?? []).map((s, i) => ({ s, i })).filter(({ s }) => !s.name.startsWith('training/'));
    let offset = 0;
    const bytes = new Uint8Array(artifacts.weightData as ArrayBuffer);
    const pieces: Uint8Array[] = [];
    for (const s of artifacts.weightSpecs!) {
      const n = 4 * s.shape.reduce((p, d) => p * d, 1);
      if (!s.name.startsWith('training/')) pieces.push(bytes.slice(offset, offset + n));
      offset += n;
    }
    const data2 = new Uint8Array(pieces.reduce((a, p) => a + p.length, 0));
    pieces.reduce((o, p) => { data2.set(p, o); return o + p.length; }, 0);
    expect(weights.length).toBeGreaterThan(keep.length);
    const old = await VNCA.load(tf.io.fromMemory({
      ...artifacts, weightSpecs: keep.map(({ s }) => s), weightData: data2.buffer,
      userDefinedMetadata: { vncaTraining: json.userDefinedMetadata.vncaTraining },
    }));
    const oldAfter = await fit(old, m);
    expect(oldAfter).not.toEqual(after);
    for (const x of [straight, first, old]) x.dispose();
    data.dispose();
  }, 60_000);

  it('the batch sampler rebuilt from its state draws what the original draws next', () => {
    for (const shuffle of ['epoch', 'replacement'] as const) {
      for (const k of [0, 1, 2, 3, 5]) {
        const a = new BatchSampler(10, 5, shuffle, 4);
        for (let i = 0; i < k; i++) a.next();
        const b = BatchSampler.fromState(a.state());
        for (let i = 0; i < 6; i++) expect(b.next(), `${shuffle} after ${k}, batch ${i}`).toEqual(a.next());
      }
    }
  });

  it('a save before any step, and fromArtifacts (weights only), load too', async () => {
    const m = new VNCA(TINY);
    let saved: tf.io.ModelArtifacts | null = null;
    const grab = tf.io.withSaveHandler(async (a) => { saved = a; return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } }; });
    await m.save(grab, { includeOptimizer: true });
    expect(saved!.userDefinedMetadata).toEqual({ vncaTraining: { step: 0, adamIterations: 0, rngDraws: 0, rngState: 0x5eed } });
    const back = await VNCA.load(tf.io.fromMemory(saved!));
    expect(back.trainingSteps).toBe(0);
    step(m, 1);
    await m.save(grab, { includeOptimizer: true });
    const count = tf.memory().numTensors;
    const plain = VNCA.fromArtifacts(saved!);
    expect(plain.trainingSteps).toBe(0);
    plain.dispose();
    expect(tf.memory().numTensors).toBe(count);
    for (const x of [m, back]) x.dispose();
  });

  it('a broken optimiser state is refused with a named error, and nothing leaks', async () => {
    const m = new VNCA(TINY);
    step(m, 1);
    let saved: tf.io.ModelArtifacts | null = null;
    await m.save(tf.io.withSaveHandler(async (a) => { saved = a; return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } }; }), { includeOptimizer: true });
    m.dispose();
    const a = saved! as tf.io.ModelArtifacts;
    const specs = a.weightSpecs!;
    const dropLast = { ...a, weightSpecs: specs.slice(0, -1), weightData: (a.weightData as ArrayBuffer).slice(0, (a.weightData as ArrayBuffer).byteLength - 4 * specs.at(-1)!.shape.reduce((p, d) => p * d, 1)) };
    const numbers = (a.userDefinedMetadata as { vncaTraining: Record<string, unknown> }).vncaTraining;
    const renamed = { ...a, weightSpecs: specs.map((s, i) => (i === specs.length - 1 ? { ...s, name: 'optimizer/adam/v/rule/nothing' } : s)) };
    const cases: [tf.io.ModelArtifacts, RegExp][] = [
      [{ ...a, userDefinedMetadata: {} }, /Error in VNCA\.load: artifacts\.userDefinedMetadata\.vncaTraining must be \{ step, adamIterations, rngDraws \} when the weights hold 'optimizer\/' entries, but got undefined/],
      [{ ...a, userDefinedMetadata: { vncaTraining: { step: -1, adamIterations: 1, rngDraws: 0 } } }, /vncaTraining\.step must be a non-negative integer, but got -1/],
      [{ ...a, userDefinedMetadata: { vncaTraining: { step: 1, adamIterations: 1.5, rngDraws: 0 } } }, /vncaTraining\.adamIterations must be a non-negative integer/],
      [dropLast, /weights hold an optimiser state without 'optimizer\/adam\/v\/rule\//],
      [{ ...a, userDefinedMetadata: { vncaTraining: { ...numbers, rngState: 2 ** 32 } } }, /vncaTraining\.rngState must be an integer in \[0, 4294967295\], but got 4294967296/],
      [{ ...a, userDefinedMetadata: { vncaTraining: { ...numbers, sampler: { n: 10, batchSize: 20, shuffle: 'epoch', seed: 0, batches: 1, rngState: 0, at: 0 } } } }, /vncaTraining\.sampler\.batchSize must be an integer in \[1, 10\], but got 20/],
      [{ ...a, userDefinedMetadata: { vncaTraining: { ...numbers, sampler: { n: 10, batchSize: 2, shuffle: 'sometimes', seed: 0, batches: 1, rngState: 0, at: 0 } } } }, /vncaTraining\.sampler\.shuffle must be 'epoch' or 'replacement'/],
      [{ ...a, userDefinedMetadata: { vncaTraining: { ...numbers, pool: { entries: 4, full: false, rngState: 0 } } } }, /vncaTraining\.pool must be absent for a model without a pool \(poolSize 0\)/],
      [renamed, /weights hold optimiser entries that match no trainable weight: optimizer\/adam\/v\/rule\/nothing/],
    ];
    const count = tf.memory().numTensors;
    for (const [bad, re] of cases) {
      tally.cases++;
      await expect(VNCA.load(tf.io.fromMemory(bad))).rejects.toThrowError(re);
      tally.named++;
    }
    expect(tf.memory().numTensors).toBe(count);
  });
});

describe('batch 0 (issue 16 section 4): a named error from every method that takes images, no tensor leak (cpu)', () => {
  it.each([
    ['encode', (m: VNCA, x: tf.Tensor4D) => m.encode(x)],
    ['reconstruct', (m: VNCA, x: tf.Tensor4D) => m.reconstruct(x)],
    ['evaluate', (m: VNCA, x: tf.Tensor4D) => m.evaluate(x, { importanceSamples: 2 })],
    ['inpaint', (m: VNCA, x: tf.Tensor4D) => m.inpaint(x, tf.zeros([8, 8]))],
    ['trainStep', (m: VNCA, x: tf.Tensor4D) => m.trainStep(x)],
    ['computeGradients', (m: VNCA, x: tf.Tensor4D) => m.computeGradients(x)],
  ] as const)('VNCA.%s', async (name, call) => {
    await useBackend('cpu');
    const m = new VNCA(TINY);
    const x = tf.zeros([0, 8, 8, 1]) as tf.Tensor4D;
    const count = tf.memory().numTensors;
    expectNamed(() => tf.tidy(() => { call(m, x); }), new RegExp(`Error in VNCA\\.${name}: (x|batch) must hold at least one image, but got a batch of 0\\.`));
    expect(tf.memory().numTensors).toBe(count);
    x.dispose();
    m.dispose();
  });

  // Latents and states too: decode, render and regenerate name the empty batch, as trainStep does.
  it.each([
    ['decode', 'z', 'latent', (m: VNCA) => m.decode(tf.zeros([0, 4]) as tf.Tensor2D)],
    ['decode', 'z', 'latent', (m: VNCA) => m.decode(tf.zeros([0, 4]) as tf.Tensor2D, { returnStates: true })],
    ['render', 'state', 'state', (m: VNCA) => m.render(tf.zeros([0, 8, 8, 4]) as tf.Tensor4D)],
    ['regenerate', 'state', 'state', (m: VNCA) => m.regenerate(tf.zeros([0, 8, 8, 4]) as tf.Tensor4D, { shape: 'square', top: 0, left: 0, size: 2 })],
  ] as const)('VNCA.%s(%s of batch 0)', async (name, arg, what, call) => {
    await useBackend('cpu');
    const m = new VNCA(TINY);
    const count = tf.memory().numTensors;
    expectNamed(() => tf.tidy(() => { call(m); }), new RegExp(`Error in VNCA\\.${name}: ${arg} must hold at least one ${what}, but got a batch of 0\\.`));
    expect(tf.memory().numTensors).toBe(count);
    m.dispose();
  });
});
