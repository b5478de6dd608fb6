import * as tf from '@tensorflow/tfjs-core';
import { mkdtempSync, readFileSync, rmSync, existsSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BACKENDS, expectClose, useBackend } from './helpers/backends.js';
import { VNCA, clipByGlobalNorm, VncaError, parseSafetensors, writeSafetensors, type VNCAOptions } from '../src/index.js';
import { fileSystem, loadMnistDigits, datasetToTensor } from '../src/node.js';
import { OneByOne } from './helpers/rules.js';

/** A tiny doubling model: 8x8 images grown from 2x2 in 2 doublings. */
const TINY: VNCAOptions = {
  zSize: 4, hidden: 4, nBlocks: 1, encoderChannels: [2, 2, 2], imageSize: 8, nDoublings: 2, stepsPerDoubling: 2,
};

const fixture = JSON.parse(readFileSync(new URL('./fixtures/vnca-tiny.expected.json', import.meta.url), 'utf8')) as {
  x: number[][][][]; encoderOutput: number[][]; z: number[][]; finalState: number[][][][];
  eps: number[][]; recon: number[]; kl: number[];
};
const fixtureBytes = readFileSync(new URL('./fixtures/vnca-tiny.safetensors', import.meta.url));


describe('VNCA defaults', () => {
  beforeAll(() => useBackend('cpu'));
  it("is the paper's model: 6,585,088 parameters, 1,182,208 in the update rule", () => {
    const before = tf.memory().numTensors;
    const m = new VNCA();
    expect(m.countParams()).toBe(6_585_088);
    expect(m.rule.countParams()).toBe(1_182_208);
    expect(m.seedSize).toBe(2);
    m.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });
});

describe.each(BACKENDS)('VNCA on %s', (name) => {
  let model: VNCA;
  beforeAll(async () => {
    await useBackend(name);
    model = new VNCA(TINY);
  });
  afterAll(() => model.dispose());

  it('matches the PyTorch reference fixture (encoder and decoder to 1e-4)', () => {
    const m = VNCA.fromPyTorch(fixtureBytes);
    expect(m.config.zSize).toBe(8);
    const x = tf.tensor4d(fixture.x);
    const q = m.encode(x);
    const enc = tf.concat([q.mean, q.logStd], 1);
    expectClose(enc.dataSync(), fixture.encoderOutput.flat(), 1e-4, 1e-5);
    const state = m.decode(tf.tensor2d(fixture.z));
    expect(state.shape).toEqual([2, 32, 32, 8]);
    expectClose(state.dataSync(), fixture.finalState.flat(3), 1e-4, 1e-4);
    // The reference's ELBO terms for z = mu + exp(logsigma) * eps.
    const z = tf.add(q.mean, tf.mul(tf.exp(q.logStd), tf.tensor2d(fixture.eps))) as tf.Tensor2D;
    const logPx = m.logLikelihood(m.decode(z), x);
    expectClose(tf.neg(logPx).dataSync(), fixture.recon, 1e-4, 1e-3);
    expectClose(q.klToStandardNormal().dataSync(), fixture.kl, 1e-4, 1e-4);
    q.dispose();
    m.dispose();
  });

  it('grows latents into cell states, with every intermediate state on request', () => {
    const z = tf.randomNormal([3, 4], 0, 1, 'float32', 1) as tf.Tensor2D;
    const before = tf.memory().numTensors;
    const { state, states } = model.decode(z, { returnStates: true });
    expect(state.shape).toEqual([3, 8, 8, 4]);
    expect(states.map((s) => s.shape[1])).toEqual([2, 2, 2, 4, 4, 4, 8, 8, 8]);
    expect(tf.memory().numTensors).toBe(before + 1 + states.length);
    // The seed grid holds z in every cell.
    expectClose(tf.slice(states[0]!, [0, 1, 1, 0], [3, 1, 1, 4]).dataSync(), z.dataSync());
    const img = model.render(state);
    expect(img.shape).toEqual([3, 8, 8, 1]);
    const v = img.dataSync();
    expect(v.every((p) => p >= 0 && p <= 1)).toBe(true);
    tf.dispose([z, state, img, ...states]);
  });

  it('samples, reconstructs and interpolates with the right shapes and no leaks', () => {
    const x = tf.cast(tf.greater(tf.randomUniform([2, 8, 8, 1], 0, 1, 'float32', 3), 0.5), 'float32') as tf.Tensor4D;
    const before = tf.memory().numTensors;
    const s = model.sample(5, { seed: 1 });
    const s2 = model.sample(5, { seed: 1 });
    expect(s.shape).toEqual([5, 8, 8, 1]);
    expectClose(s.dataSync(), s2.dataSync(), 0, 0);
    const r = model.reconstruct(x);
    expect(r.shape).toEqual([2, 8, 8, 1]);
    const [x1, x2] = tf.split(x, 2);
    const i = model.interpolate(x1!, x2!, 4);
    expect(i.shape).toEqual([4, 8, 8, 1]);
    tf.dispose([s, s2, r, i, x1!, x2!]);
    expect(tf.memory().numTensors).toBe(before);
    x.dispose();
  });

  it('evaluates an IWAE bound that is at least the ELBO on average and gives bits/dim', () => {
    const x = tf.cast(tf.greater(tf.randomUniform([2, 8, 8, 1], 0, 1, 'float32', 4), 0.5), 'float32') as tf.Tensor4D;
    const k1 = model.evaluate(x, { importanceSamples: 1, seed: 10 });
    const k16 = model.evaluate(x, { importanceSamples: 16, decodeBatchSize: 5, seed: 10 });
    expect(k16.importanceSamples).toBe(16);
    expect(k16.perImage.length).toBe(2);
    expect(k16.logLikelihood).toBeGreaterThanOrEqual(k1.logLikelihood - 1);
    expect(k16.bitsPerDim).toBeCloseTo(-k16.logLikelihood / (64 * Math.LN2), 6);
    // K = 1 is a one-sample ELBO estimate: its average over many draws matches the ELBO.
    const q = model.encode(x);
    const klMean = tf.mean(q.klToStandardNormal()).dataSync()[0]!;
    q.dispose();
    expect(Number.isFinite(klMean)).toBe(true);
    x.dispose();
  });

  it('regenerates damaged states and inpaints holding the known pixels', () => {
    const z = tf.randomNormal([2, 4], 0, 1, 'float32', 2) as tf.Tensor2D;
    const state = model.decode(z);
    const before = tf.memory().numTensors;
    const { state: regrown, states } = model.regenerate(state, { shape: 'square', top: 2, left: 2, size: 3 }, { steps: 3, returnStates: true });
    expect(regrown.shape).toEqual([2, 8, 8, 4]);
    expect(states!.length).toBe(4);
    // The first state is the damaged one: zero inside the square.
    expect(tf.tidy(() => tf.sum(tf.abs(tf.slice(states![0]!, [0, 2, 2, 0], [2, 3, 3, 4]))).dataSync()[0])).toBe(0);
    tf.dispose([regrown, ...states!]);
    expect(tf.memory().numTensors).toBe(before);

    const x = tf.cast(tf.greater(tf.randomUniform([2, 8, 8, 1], 0, 1, 'float32', 5), 0.5), 'float32') as tf.Tensor4D;
    const hole = tf.buffer([8, 8]);
    for (let y = 0; y < 4; y++) for (let xx = 0; xx < 8; xx++) hole.set(1, y, xx);
    const mask = hole.toTensor();
    const out = model.inpaint(x, mask, { steps: 2 });
    expect(out.shape).toEqual([2, 8, 8, 1]);
    const known = tf.slice(out, [0, 4, 0, 0], [2, 4, 8, 1]);
    expectClose(known.dataSync(), tf.slice(x, [0, 4, 0, 0], [2, 4, 8, 1]).dataSync(), 0, 0);
    tf.dispose([z, state, x, mask, out, known]);
  });

  it('saves and loads through an IO handler with identical outputs; custom rules load by class', async () => {
    let saved: tf.io.ModelArtifacts | undefined;
    await model.save(tf.io.withSaveHandler(async (a) => {
      saved = a;
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
    }));
    const loaded = await VNCA.load(tf.io.fromMemory(saved!));
    const a = model.sample(2, { seed: 9 });
    const b = loaded.sample(2, { seed: 9 });
    expectClose(b.dataSync(), a.dataSync(), 0, 0);
    expect(loaded.config).toEqual(model.config);
    tf.dispose([a, b]);
    loaded.dispose();

    const custom = new VNCA({ ...TINY, updateRule: new OneByOne({ channels: 4 }) });
    const dir = mkdtempSync(join(tmpdir(), 'vnca-'));
    try {
      await custom.save(fileSystem(dir));
      expect(readdirSync(dir).sort()).toEqual(['model.json', expect.stringMatching(/^weights-[0-9a-f]{16}\.bin$/)]); // weights named by content (atomic save)
      await expect(VNCA.load(fileSystem(dir))).rejects.toThrowError(/'test.OneByOne' is not a known update rule class/);
      const back = await VNCA.load(fileSystem(dir), { updateRules: [OneByOne] });
      const c1 = custom.sample(2, { seed: 3 });
      const c2 = back.sample(2, { seed: 3 });
      expectClose(c2.dataSync(), c1.dataSync(), 0, 0);
      tf.dispose([c1, c2]);
      back.dispose();
    } finally {
      rmSync(dir, { recursive: true, force: true });
      custom.dispose();
    }
  });

  it('rejects bad input with named errors', async () => {
    expect(() => new VNCA({ zSize: 0 })).toThrowError(/Error in VNCA: options.zSize must be an integer >= 1, but got 0/);
    expect(() => new VNCA({ imageSize: 30 })).toThrowError(/options.imageSize must be divisible by 2\^nDoublings = 16/);
    expect(() => new VNCA({ zsize: 3 } as never)).toThrowError(/options.zsize is not a VNCA option/);
    expect(() => new VNCA({ likelihood: 'gauss' as never })).toThrowError(/options.likelihood must be one of 'bernoulli', 'dmol'/);
    expect(() => new VNCA({ updateRule: {} as never })).toThrowError(/options.updateRule must be an UpdateRule instance/);
    const wrong = tf.zeros([1, 16, 16, 1]) as tf.Tensor4D;
    expect(() => model.encode(wrong)).toThrowError(/Error in VNCA.encode: x must have shape \[batch, 8, 8, 1\], but got \[1, 16, 16, 1\]/);
    expect(() => model.trainStep(wrong)).toThrowError(/Error in VNCA.trainStep: batch must have shape/);
    expect(() => model.decode(tf.zeros([2, 3]) as tf.Tensor2D)).toThrowError(/Error in VNCA.decode: z must have shape \[batch, 4\], but got \[2, 3\]/);
    expect(() => model.sample(0)).toThrowError(/Error in VNCA.sample: n must be an integer >= 1, but got 0/);
    expect(() => model.inpaint(tf.zeros([1, 8, 8, 1]) as tf.Tensor4D, tf.zeros([4, 4]))).toThrowError(/Error in VNCA.inpaint: mask must have shape \[8, 8\]/);
    await expect(model.save('nowhere')).rejects.toThrowError(/Error in VNCA.save: target must be a URL with a registered tfjs IO scheme/);
    wrong.dispose();
    const gone = new VNCA(TINY);
    gone.dispose();
    expect(() => gone.sample(1)).toThrowError(/is a disposed VNCA/);
  });
});

describe('VNCA.fromPyTorch validation', () => {
  beforeAll(() => useBackend('cpu'));
  const st = parseSafetensors(fixtureBytes);
  const rewrite = (edit: (m: Map<string, { shape: number[]; data: Float32Array }>) => void) => {
    const m = new Map(st.tensors);
    edit(m);
    return writeSafetensors(m);
  };

  it('names missing keys, unknown keys, wrong shapes, truncated files and absurd headers', () => {
    const before = tf.memory().numTensors;
    expect(() => VNCA.fromPyTorch(rewrite((m) => m.delete('nca.update_net.5.bias'))))
      .toThrowError(/must hold the reference key 'nca.update_net.5.bias', but it is missing/);
    expect(() => VNCA.fromPyTorch(rewrite((m) => m.set('decoder.extra', { shape: [1], data: new Float32Array(1) }))))
      .toThrowError(/hold keys the doubling VNCA does not have: decoder.extra/);
    expect(() => VNCA.fromPyTorch(rewrite((m) => m.set('nca.update_net.5.bias', { shape: [9], data: new Float32Array(9) }))))
      .toThrowError(/weights\['rule\/conv_out\/bias'\] must have shape \[8\], but got \[9\]/);
    expect(() => VNCA.fromPyTorch(fixtureBytes.subarray(0, fixtureBytes.length - 100))).toThrowError(/are truncated/);
    const absurd = new Uint8Array(fixtureBytes);
    new DataView(absurd.buffer, absurd.byteOffset).setBigUint64(0, 1n << 40n, true);
    expect(() => VNCA.fromPyTorch(absurd)).toThrowError(/Error in parseSafetensors: header length must be at most/);
    expect(() => VNCA.fromPyTorch(fixtureBytes, { zSize: 3 } as never)).toThrowError(/options.zSize is read from the weights/);
    expect(tf.memory().numTensors).toBe(before);
  });
});

describe('VNCA training on wasm', () => {
  beforeAll(() => useBackend('wasm'));

  it('lowers the loss of a small model on real digits within 40 steps', async () => {
    const train = datasetToTensor(loadMnistDigits({ split: 'train' }), 0, 256);
    const m = new VNCA({ zSize: 16, hidden: 16, nBlocks: 2, encoderChannels: [8, 8, 8, 8, 8], learningRate: 1e-3 });
    const hist = await m.fit(train, { steps: 40, batchSize: 8, seed: 1 });
    const first = hist.slice(0, 5).reduce((a, h) => a + h.loss, 0) / 5;
    const last = hist.slice(-5).reduce((a, h) => a + h.loss, 0) / 5;
    expect(last).toBeLessThan(0.6 * first);
    expect(hist.every((h) => Number.isFinite(h.gradNorm) && h.gradNorm > 0)).toBe(true);
    m.dispose();
    train.dispose();
  });

  it('keeps the tensor count flat across 100 trainStep and sample calls', () => {
    const m = new VNCA({ ...TINY, learningRate: 1e-3 });
    const x = tf.cast(tf.greater(tf.randomUniform([4, 8, 8, 1], 0, 1, 'float32', 6), 0.5), 'float32') as tf.Tensor4D;
    m.trainStep(x); // creates the optimizer's slots
    tf.dispose(m.sample(2));
    const before = tf.memory().numTensors;
    for (let i = 0; i < 100; i++) {
      const r = m.trainStep(x);
      expect(Number.isFinite(r.loss)).toBe(true);
      tf.dispose(m.sample(2));
    }
    expect(tf.memory().numTensors).toBe(before);
    m.dispose();
    x.dispose();
  });

  it('clips gradients to a global norm', () => {
    const g = { a: tf.tensor1d([3, 0]), b: tf.tensor1d([0, 4]) };
    const { grads, norm } = clipByGlobalNorm(g, 1);
    expect(norm).toBeCloseTo(5, 6);
    expectClose(grads.a!.dataSync(), [0.6, 0], 1e-6);
    expectClose(grads.b!.dataSync(), [0, 0.8], 1e-6);
    const same = clipByGlobalNorm(g, 10);
    expectClose(same.grads.b!.dataSync(), [0, 4], 0);
    expect(() => clipByGlobalNorm(g, 0)).toThrowError(/Error in clipByGlobalNorm: maxNorm must be a finite number > 0/);
    tf.dispose([...Object.values(g), ...Object.values(grads), ...Object.values(same.grads)]);
  });
});

it('VncaError names the function and argument', () => {
  const e = new VncaError('f', 'x', 'must be 1, but got 2.');
  expect(e.message).toBe('Error in f: x must be 1, but got 2.');
  expect(existsSync(join(__dirname, 'fixtures'))).toBe(true);
});
