/**
 * Memory against the wasm backend's 4 GiB heap (issue 16, section 4): up-front estimates
 * (src/vae/memory.ts), a training step refused with a named error before anything is
 * allocated, and sample, decode and evaluate run in chunks that fit, with the same results.
 * Nothing here allocates gigabytes: the real limit is only estimated against, and chunking is
 * tested under a small limit set with `withMemoryLimit`.
 */
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it, vi } from 'vitest';
import { BACKENDS, useBackend } from './helpers/backends.js';
import { VNCA, VncaError, NON_DOUBLING_MNIST, type VNCAOptions } from '../src/index.js';
import {
  cellStepsPerSample, decodeBytesPerSample, decodeChunk, memoryLimit, trainStepBytes, withMemoryLimit,
} from '../src/vae/memory.js';
import { checkTrainingMemory } from '../src/vae/trainingChecks.js';

const MiB = 2 ** 20;

/** A tiny doubling model: 8x8 images grown from 2x2 in 2 doublings. */
const TINY: VNCAOptions = {
  zSize: 4, hidden: 4, nBlocks: 1, encoderChannels: [2, 2, 2], imageSize: 8, nDoublings: 2, stepsPerDoubling: 2,
};
/** mnist-small's sizes (models/mnist-small). */
const SMALL: VNCAOptions = { zSize: 64, hidden: 64, nBlocks: 4, encoderChannels: [16, 32, 64, 128, 256] };

function binary(n: number, seed: number): tf.Tensor4D {
  return tf.tidy(() => tf.cast(tf.greater(tf.randomUniform([n, 8, 8, 1], 0, 1, 'float32', seed), 0.5), 'float32') as tf.Tensor4D);
}

describe('estimates (no backend work)', () => {
  beforeAll(() => useBackend('cpu'));

  it('cell steps and bytes of the paper model are the measured ones, rounded up', () => {
    const paper = new VNCA({ checkpoint: false });
    const c = paper.config;
    // 8 steps at each of 2x2, 4x4, 8x8, 16x16, 32x32.
    expect(cellStepsPerSample(c)).toBe(8 * (4 + 16 + 64 + 256 + 1024));
    // Measured on wasm with tf.profile: 34 MiB a decoded sample, 165 MiB a trained one without checkpointing, 26 MiB with.
    expect(decodeBytesPerSample(c) / MiB).toBeCloseTo(36, 0);
    expect(trainStepBytes(c).perSample / MiB).toBeCloseTo(170.5, 0);
    expect(trainStepBytes(c).checkpointed).toBe(false);
    const ck = trainStepBytes({ ...c, checkpoint: true });
    expect(ck.checkpointed).toBe(true);
    expect(ck.perSample / MiB).toBeCloseTo(32, 0);
    // A fixed model's step count: the given one, else the longest of stepsRange.
    const nd = new VNCA(NON_DOUBLING_MNIST);
    expect(cellStepsPerSample(nd.config)).toBe(64 * 28 * 28);
    expect(cellStepsPerSample(nd.config, 32)).toBe(32 * 28 * 28);
    paper.dispose();
    nd.dispose();
  });

  it("checkpoint 'auto' is estimated for the whole batch, as grow.ts decides it", () => {
    const m = new VNCA({ checkpoint: 'auto' });
    const c = m.config;
    const plain = trainStepBytes({ ...c, checkpoint: false }).perSample;
    const ck = trainStepBytes({ ...c, checkpoint: true });
    // Batch 4: 4 x 170.5 MiB stays within the 1 GiB budget, so the rollout runs unchecked.
    const b4 = trainStepBytes(c, undefined, 4);
    expect(b4.checkpointed).toBe(false);
    expect(4 * b4.perSample + b4.fixed).toBe(4 * plain);
    // Batch 8 passes it: checkpointed.
    expect(trainStepBytes(c, undefined, 8)).toEqual(ck);
    // A limit that holds 4 checkpointed images and one image's activations, but not 4 images' activations, refuses batch 4.
    const limit = 4 * ck.perSample + Math.max(ck.fixed, plain) + MiB;
    expect(() => withMemoryLimit(tf.memory().numBytes + limit, () => checkTrainingMemory(c, 4, undefined, 'VNCA.trainStep')))
      .toThrowError(/batch must hold at most 1 images here, but got 4: with checkpoint "auto" a training step keeps every step's activations .* Use checkpoint: true/);
    m.dispose();
  });
});

describe('the real limit on wasm, estimated only', () => {
  beforeAll(() => useBackend('wasm'));

  it('wasm has a 4 GiB limit; cpu has none', async () => {
    expect(memoryLimit()).toBe(2 ** 32);
    await useBackend('cpu');
    expect(memoryLimit()).toBeNull();
    await useBackend('wasm');
  });

  it("the paper model's trainStep at batch 64 with checkpoint false is refused before any work, naming the batch and the fix", () => {
    const m = new VNCA({ checkpoint: false });
    const x = tf.zeros([64, 32, 32, 1]) as tf.Tensor4D;
    const count = tf.memory().numTensors;
    const bytes = tf.memory().numBytes;
    for (const call of [() => m.trainStep(x, { seed: 1 }), () => m.computeGradients(x, { seed: 1 })]) {
      expect(call).toThrowError(VncaError);
      expect(call).toThrowError(/Error in VNCA\.(trainStep|computeGradients): batch must hold at most (1[0-9]|2[0-9]) images here, but got 64: with checkpoint false a training step keeps every step's activations for the backward pass, about 170\.5 MiB per image \(10\.7 GiB in all\), and the wasm backend's 4\.0 GiB heap has 3\.[0-9] GiB free\. Use checkpoint: 'auto' or true/);
    }
    expect(tf.memory().numTensors).toBe(count);
    expect(tf.memory().numBytes).toBe(bytes);
    // With checkpointing (the default 'auto') the same batch is within the estimate.
    expect(() => checkTrainingMemory({ ...m.config, checkpoint: 'auto' }, 64, undefined, 'VNCA.trainStep')).not.toThrow();
    expect(() => checkTrainingMemory({ ...m.config, checkpoint: true }, 64, undefined, 'VNCA.trainStep')).not.toThrow();
    x.dispose();
    m.dispose();
  });

  it('sample(1e6) of the small model is refused up front: its images alone do not fit', () => {
    const m = new VNCA(SMALL);
    const count = tf.memory().numTensors;
    expect(() => m.sample(1e6)).toThrowError(/Error in VNCA\.sample: n must hold at most [0-9]+ images here, but got 1000000: the result alone takes 4 KiB per image \(4\.1 GiB\), and the wasm backend's 4\.0 GiB heap has 3\.[0-9] GiB free/);
    expect(tf.memory().numTensors).toBe(count);
    // 100,000 fit, decoded in chunks of a few hundred.
    const chunk = decodeChunk(m.config, 100_000, 100_000 * 4 * (32 * 32 + 64));
    expect(chunk).toBeGreaterThan(100);
    expect(chunk).toBeLessThan(1000);
    m.dispose();
  });

  it('evaluate with K = 4096 and decodeBatchSize 4096 decodes in chunks that fit', () => {
    const m = new VNCA(SMALL);
    // 4096 latents of the small model at once would take 36 GiB: a few hundred fit.
    expect(4096 * decodeBytesPerSample(m.config)).toBeGreaterThan(30 * 2 ** 30);
    const chunk = decodeChunk(m.config, 4096, 4 * 4096 * 68);
    expect(chunk).toBeGreaterThan(100);
    expect(chunk).toBeLessThan(1000);
    m.dispose();
  });
});

describe.each(BACKENDS)('chunks under a small limit give the same results on %s', (name) => {
  beforeAll(() => useBackend(name));

  /** A limit that leaves room for `samples` decoded samples beyond what is allocated now and `keep`. */
  const roomFor = (m: VNCA, samples: number, keep: number) => tf.memory().numBytes + keep + samples * decodeBytesPerSample(m.config) + 1024;

  it('sample and decode', () => {
    const m = new VNCA(TINY);
    const whole = m.sample(10, { seed: 0 });
    const z = tf.randomNormal([10, 4], 0, 1, 'float32', 3) as tf.Tensor2D;
    const decoded = m.decode(z);
    const spy = vi.spyOn(m, 'decode');
    const count = tf.memory().numTensors;
    const parts = withMemoryLimit(roomFor(m, 3, 10 * 4 * (64 + 4)), () => m.sample(10, { seed: 0 }));
    expect(spy.mock.calls.length).toBe(4); // chunks of 3, 3, 3, 1
    expect(Array.from(parts.dataSync())).toEqual(Array.from(whole.dataSync()));
    parts.dispose();
    spy.mockClear();
    const chunked = withMemoryLimit(roomFor(m, 4, 10 * 4 * 4 * 64), () => m.decode(z));
    expect(chunked.shape).toEqual(decoded.shape);
    expect(Array.from(chunked.dataSync())).toEqual(Array.from(decoded.dataSync()));
    chunked.dispose();
    expect(tf.memory().numTensors).toBe(count);
    // Not even the result fits: a named error, nothing allocated.
    expect(() => withMemoryLimit(tf.memory().numBytes + 1000, () => m.sample(10))).toThrowError(/Error in VNCA\.sample: n must hold at most 0 images here, but got 10/);
    expect(() => withMemoryLimit(tf.memory().numBytes + 1000, () => m.decode(z, { returnStates: true }))).toThrowError(/Error in VNCA\.decode: z must hold at most 0 latents here, but got 10/);
    // returnStates decodes the whole batch at once: room for 2 latents' states and decodes says 2, not more.
    const kept = 4 * 4 * (cellStepsPerSample(m.config) + 64);
    const z4 = tf.slice(z, 0, 4) as tf.Tensor2D;
    expect(() => withMemoryLimit(tf.memory().numBytes + 2 * (kept + decodeBytesPerSample(m.config)) + 100, () => m.decode(z4, { returnStates: true })))
      .toThrowError(/Error in VNCA\.decode: z must hold at most 2 latents here, but got 4: the result and its decode, all at once, take/);
    z4.dispose();
    expect(tf.memory().numTensors).toBe(count);
    spy.mockRestore();
    tf.dispose([whole, z, decoded]);
    m.dispose();
  });

  it('evaluate', () => {
    const m = new VNCA(TINY);
    const x = binary(2, 5);
    const options = { importanceSamples: 8, decodeBatchSize: 8, seed: 4 };
    const whole = m.evaluate(x, options);
    const spy = vi.spyOn(m, 'decode');
    const count = tf.memory().numTensors;
    const chunked = withMemoryLimit(roomFor(m, 3, 4 * 8 * (4 + 4)), () => m.evaluate(x, options));
    expect(spy.mock.calls.length).toBe(2 * 3); // per image: 3 + 3 + 2
    expect(Array.from(chunked.perImage)).toEqual(Array.from(whole.perImage));
    expect(tf.memory().numTensors).toBe(count);
    expect(() => withMemoryLimit(tf.memory().numBytes + 10, () => m.evaluate(x, options))).toThrowError(/Error in VNCA\.evaluate: options\.importanceSamples must be small enough that one decode fits/);
    expect(tf.memory().numTensors).toBe(count);
    spy.mockRestore();
    x.dispose();
    m.dispose();
  });

  it('trainStep is refused where only checkpointing fits, and runs with it', () => {
    const plain = new VNCA({ ...TINY, checkpoint: false });
    const x = binary(4, 6);
    const limit = tf.memory().numBytes + 4 * trainStepBytes(plain.config).perSample / 2;
    const count = tf.memory().numTensors;
    expect(() => withMemoryLimit(limit, () => plain.trainStep(x, { seed: 1 }))).toThrowError(/Error in VNCA\.trainStep: batch must hold at most 2 images here, but got 4: with checkpoint false/);
    expect(tf.memory().numTensors).toBe(count);
    const ck = new VNCA({ ...TINY, checkpoint: true });
    const r = withMemoryLimit(limit + 2 * trainStepBytes(ck.config).fixed, () => ck.trainStep(x, { seed: 1 }));
    expect(Number.isFinite(r.loss)).toBe(true);
    tf.dispose([x]);
    plain.dispose();
    ck.dispose();
  });
});
