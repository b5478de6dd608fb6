import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { BACKENDS, useBackend } from './helpers/backends.js';
import { VNCA, NON_DOUBLING_MNIST } from '../src/index.js';
import { measureInpainting, measureRegeneration } from '../src/vae/regeneration.js';
import { datasetToTensor, loadMnistDigits } from '../src/node.js';

const LOG_HALF = Math.log(0.5);

describe.each(BACKENDS)('regeneration and inpainting measures on %s', (backend) => {
  beforeAll(() => useBackend(backend));
  const tiny = () => new VNCA({ ...NON_DOUBLING_MNIST, zSize: 4, hidden: 4, encoderChannels: [2, 2, 2, 2, 2], stepsRange: [2, 4], poolSize: 0 });
  const digits = () => datasetToTensor(loadMnistDigits({ split: 'test', pad: 0 }), 0, 5);

  it('reports L0, Ld, Lr per image and recovery = (Lr - Ld) / (L0 - Ld) on the means', () => {
    const m = tiny();
    const x = digits();
    const before = tf.memory().numTensors;
    const r = measureRegeneration(m, x, { steps: [1, 3], seed: 4, batchSize: 2 });
    expect(tf.memory().numTensors).toBe(before);
    expect(r.size).toBe(14);
    expect(r.undamagedPerImage).toHaveLength(5);
    expect(r.regrown.map((g) => g.steps)).toEqual([1, 3]);
    const mean = (a: Float32Array) => a.reduce((s, v) => s + v, 0) / a.length;
    expect(r.undamaged).toBeCloseTo(mean(r.undamagedPerImage), 3);
    for (const g of r.regrown) {
      expect(g.logLikelihood).toBeCloseTo(mean(g.perImage), 3);
      expect(g.recovery).toBeCloseTo((g.logLikelihood - r.damaged) / (r.undamaged - r.damaged), 5);
    }
    // A new model's last layer starts at zero: the rule changes nothing, so nothing regrows.
    for (const g of r.regrown) {
      for (let i = 0; i < 5; i++) expect(g.perImage[i]).toBeCloseTo(r.damagedPerImage[i]!, 3);
      expect(g.recovery).toBeCloseTo(0, 5);
    }
    // Seeded: the same call gives the same numbers.
    const again = measureRegeneration(m, x, { steps: [1, 3], seed: 4, batchSize: 5 });
    for (let i = 0; i < 5; i++) expect(again.damagedPerImage[i]).toBeCloseTo(r.damagedPerImage[i]!, 3);
    tf.dispose(x);
    m.dispose();
  });

  it('zeroing the whole grid leaves logits 0: log p(x | state) = 784 log 0.5 for every image', () => {
    const m = tiny();
    const x = digits();
    const r = measureRegeneration(m, x, { size: 28, steps: [0] });
    for (const v of r.damagedPerImage) expect(v).toBeCloseTo(784 * LOG_HALF, 2);
    // The inpainting measure, with the whole image as the hole: in round 1 (the damage and
    // regrowth) the zero rule regrows nothing, p = 0.5.
    const ip = measureInpainting(m, x, { size: 28, iterations: 1, damage: true });
    for (const v of ip.inpaintedPerImage) expect(v).toBeCloseTo(784 * LOG_HALF, 1);
    expect(ip.posteriorMeanPerImage).toHaveLength(5);
    expect(ip.size).toBe(28);
    tf.dispose(x);
    m.dispose();
  });

  it('rejects bad arguments with named errors', () => {
    const m = tiny();
    const x = digits();
    expect(() => measureRegeneration(m, tf.zeros([2, 32, 32, 1]) as tf.Tensor4D)).toThrowError(/Error in measureRegeneration: x must be images \[batch >= 1, 28, 28, 1\], but got shape \[2, 32, 32, 1\]/);
    expect(() => measureRegeneration(m, x, { steps: [4, 2] })).toThrowError(/measureRegeneration: options.steps must be ascending/);
    expect(() => measureRegeneration(m, x, { steps: [] })).toThrowError(/options.steps must be a non-empty array/);
    expect(() => measureRegeneration(m, x, { size: 29 })).toThrowError(/options.size must be an integer in \[1, 28\]/);
    expect(() => measureInpainting(m, x, { batchSize: 0 })).toThrowError(/Error in measureInpainting: options.batchSize/);
    tf.dispose(x);
    m.dispose();
  });
});
