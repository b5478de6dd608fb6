import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BACKENDS, useBackend } from './helpers/backends.js';
import { VNCA, NON_DOUBLING_MNIST, VncaError } from '../src/index.js';
import { datasetToTensor, loadMnistDigits } from '../src/node.js';

// stateBound: the overflow loss and the clipped pool of pooled training (models/mnist-regen was
// trained with it, in PyTorch, tools/train_regen_torch.py --state-bound 10).
const tiny = {
  ...NON_DOUBLING_MNIST, zSize: 8, hidden: 8, encoderChannels: [4, 4, 4, 4, 4], stepsRange: [4, 6] as [number, number],
  pUpdate: 1, poolSize: 8, learningRate: 1e-3, clipNorm: 10,
};

describe.each(BACKENDS)('stateBound on %s', (backend) => {
  let digits: tf.Tensor4D;
  beforeAll(async () => {
    await useBackend(backend);
    digits = datasetToTensor(loadMnistDigits({ split: 'train', pad: 0 }), 0, 8);
  });
  afterAll(() => digits.dispose());

  it('adds the excess of the final state beyond the bound to the loss, summed per image and averaged over the batch', () => {
    const bound = 0.05;
    const free = new VNCA({ ...tiny, stateBound: 0 });
    const bounded = new VNCA({ ...tiny, stateBound: bound });
    bounded.setNamedWeights(Object.fromEntries(free.namedWeights().map((w) => [w.name, w.variable])));
    const x = tf.slice(digits, 0, 4) as tf.Tensor4D;
    const noise = tf.randomNormal([4, tiny.zSize], 0, 1, 'float32', 3) as tf.Tensor2D;
    const a = free.computeGradients(x, { noise, steps: 5 });
    const b = bounded.computeGradients(x, { noise, steps: 5 });
    // The same rollout by hand (pUpdate 1: deterministic), and its excess over the bound.
    const excess = tf.tidy(() => {
      const q = free.encode(x);
      const z = tf.add(q.mean, tf.mul(tf.exp(q.logStd), noise)) as tf.Tensor2D;
      q.dispose();
      const state = free.rollout(free.seedGrid(z), { steps: 5 }).state;
      return tf.sum(tf.abs(tf.sub(state, tf.clipByValue(state, -bound, bound)))).dataSync()[0]! / 4;
    });
    expect(excess).toBeGreaterThan(1); // the test means something: states do pass 0.05
    expect(b.reconstruction).toBeCloseTo(a.reconstruction, 3);
    expect(b.kl).toBeCloseTo(a.kl, 4);
    expect(b.loss - a.loss).toBeCloseTo(excess, 1);
    // The penalty has a gradient: the rule's weights get a different one.
    const name = free.trainableVariables.at(-1)!.name;
    const nameB = bounded.trainableVariables.at(-1)!.name;
    const diff = tf.tidy(() => tf.max(tf.abs(tf.sub(a.grads[name]!, b.grads[nameB]!))).dataSync()[0]!);
    expect(diff).toBeGreaterThan(1e-4);
    tf.dispose([x, noise, ...Object.values(a.grads), ...Object.values(b.grads)]);
    free.dispose();
    bounded.dispose();
  });

  it('keeps the states written to the sample pool within the bound, and leaks nothing', async () => {
    const bound = 0.05;
    const m = new VNCA({ ...tiny, stateBound: bound });
    await m.fit(digits, { steps: 2, batchSize: 4, seed: 1 }); // fills the pool (8 entries)
    const before = tf.memory().numTensors;
    await m.fit(digits, { steps: 3, batchSize: 4, seed: 2 }); // pooled steps write back
    expect(tf.memory().numTensors).toBe(before);
    expect(m.poolSize).toBe(8);
    const trainer = (m as unknown as { trainer: { checkpoint(): Promise<{ poolStates?: tf.Tensor4D; poolImages?: tf.Tensor4D }> } }).trainer;
    const state = await trainer.checkpoint();
    const maxAbs = tf.tidy(() => tf.max(tf.abs(state.poolStates!)).dataSync()[0]!);
    expect(maxAbs).toBeLessThanOrEqual(bound + 1e-7);
    expect(maxAbs).toBeGreaterThan(bound / 2);
    tf.dispose([state.poolStates!, state.poolImages!]);
    m.dispose();
  });

  it('refuses a negative or non-finite bound with a named error', () => {
    expect(() => new VNCA({ ...tiny, stateBound: -1 })).toThrow(VncaError);
    expect(() => new VNCA({ ...tiny, stateBound: Number.NaN })).toThrow(/options\.stateBound/);
  });
});
