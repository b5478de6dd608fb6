import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { useBackend } from './helpers/backends.js';
import { VNCA, NON_DOUBLING_MNIST, ResidualUpdateRule } from '../src/index.js';
import { loadMnistDigits, datasetToTensor } from '../src/node.js';

describe('non-doubling VNCA', () => {
  beforeAll(() => useBackend('wasm'));

  it("has the paper's update rule: conv3x3 ; ELU ; conv1x1 without bias", () => {
    const m = new VNCA({ ...NON_DOUBLING_MNIST, encoderChannels: [4, 4, 4, 4, 4] });
    expect(m.seedSize).toBe(28);
    const rule = m.rule as ResidualUpdateRule;
    expect(rule.nBlocks).toBe(0);
    expect(rule.inActivation).toBe('elu');
    // conv3x3 128->128 with bias, conv1x1 128->128 without bias
    expect(rule.countParams()).toBe(9 * 128 * 128 + 128 + 128 * 128);
    m.dispose();
  });

  it('trains from a sample pool with damage on real digits: the pool fills and the loss falls', async () => {
    const digits = datasetToTensor(loadMnistDigits({ split: 'train', pad: 0 }), 0, 128);
    const m = new VNCA({
      ...NON_DOUBLING_MNIST, zSize: 8, hidden: 8, encoderChannels: [4, 4, 4, 4, 4], stepsRange: [4, 6],
      poolSize: 16, learningRate: 2e-3, clipNorm: 10,
    });
    const before = tf.memory().numTensors;
    const hist = await m.fit(digits, { steps: 40, batchSize: 8, seed: 2 });
    expect(m.poolSize).toBe(16);
    const first = hist.slice(0, 5).reduce((a, h) => a + h.loss, 0) / 5;
    const last = hist.slice(-5).reduce((a, h) => a + h.loss, 0) / 5;
    expect(last).toBeLessThan(0.7 * first);
    // Beyond the pool (16 entries) and the optimizer's slots, nothing accumulates.
    const mid = tf.memory().numTensors;
    await m.fit(digits, { steps: 5, batchSize: 8, seed: 3 });
    expect(tf.memory().numTensors).toBe(mid);
    expect(mid).toBeGreaterThan(before);
    m.dispose();
    expect(tf.memory().numTensors).toBeLessThanOrEqual(before);
    digits.dispose();
  });

  it('rejects a pool for doubling growth', () => {
    expect(() => new VNCA({ poolSize: 8 })).toThrowError(/Error in VNCA: options.poolSize needs growth 'fixed'/);
    expect(() => new VNCA({ ...NON_DOUBLING_MNIST, damageSize: 40 })).toThrowError(/options.damageSize must be an integer in \[0, 28\]/);
  });
});

describe('pooled training objective', () => {
  beforeAll(() => useBackend('wasm'));

  it('counts the KL of fresh entries only: pooled entries did not start from their posterior', async () => {
    const { elboTerms } = await import('../src/vae/objective.js');
    const m = new VNCA({ ...NON_DOUBLING_MNIST, zSize: 4, hidden: 4, encoderChannels: [2, 2, 2, 2, 2], stepsRange: [2, 2], poolSize: 4 });
    const x = datasetToTensor(loadMnistDigits({ split: 'test', pad: 0 }), 0, 4);
    const noise = tf.randomNormal([4, 4], 0, 1, 'float32', 7) as tf.Tensor2D;
    const all = elboTerms(m as never, x, 2, null, { noise });
    const pooled = tf.zeros([2, 28, 28, 4]) as tf.Tensor4D;
    const half = elboTerms(m as never, x, 2, pooled, { noise });
    // The KL of each image, from the encoder alone.
    const q = m.encode(x);
    const kl = await q.klToStandardNormal().data();
    expect(all.kl.dataSync()[0]).toBeCloseTo((kl[0]! + kl[1]! + kl[2]! + kl[3]!) / 4, 3);
    expect(half.kl.dataSync()[0]).toBeCloseTo((kl[2]! + kl[3]!) / 2, 3);
    // loss = (sum of -log p + fresh KL) / batch.
    expect(half.loss.dataSync()[0]).toBeCloseTo(half.reconstruction.dataSync()[0]! + (kl[2]! + kl[3]!) / 4, 2);
    tf.dispose([x, noise, pooled, all.loss, all.kl, all.reconstruction, all.state, half.loss, half.kl, half.reconstruction, half.state]);
    q.dispose();
    m.dispose();
  });
});
