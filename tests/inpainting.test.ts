import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BACKENDS, useBackend } from './helpers/backends.js';
import { NON_DOUBLING_MNIST, VNCA, runSteps } from '../src/index.js';
import { measureInpainting } from '../src/vae/regeneration.js';
import { datasetToTensor, loadMnistDigits, pretrained } from '../src/node.js';

/** A tiny fixed-grid model whose rule does something (a new rule's last layer starts at zero). */
function tinyModel(): VNCA {
  const m = new VNCA({ ...NON_DOUBLING_MNIST, imageSize: 8, zSize: 4, hidden: 4, encoderChannels: [2, 2, 2, 2, 2], stepsRange: [3, 5], poolSize: 0 });
  for (const { name, variable } of m.namedWeights()) {
    if (name.startsWith('rule/')) variable.assign(tf.tidy(() => tf.randomNormal(variable.shape, 0, 0.3, 'float32', name.length)));
  }
  return m;
}

/** `model.inpaint` as it was before rounds of completion, written out from public parts. */
function singleRound(m: VNCA, x: tf.Tensor4D, mask: tf.Tensor4D, steps: number, seed: number): tf.Tensor4D {
  return tf.tidy(() => {
    const keep = tf.sub(1, mask);
    const q = m.encode(tf.mul(x, keep) as tf.Tensor4D);
    const grown = m.decode(q.mean as tf.Tensor2D, { seed });
    q.dispose();
    let cur = tf.mul(grown, keep) as tf.Tensor4D;
    for (let i = 0; i < steps; i++) {
      const stepped = runSteps(m.rule, cur, { steps: 1, pUpdate: m.config.pUpdate, seed: seed + i }).state;
      cur = tf.add(tf.mul(stepped, mask), tf.mul(grown, keep)) as tf.Tensor4D;
    }
    return tf.add(tf.mul(x, keep), tf.mul(m.render(cur), mask)) as tf.Tensor4D;
  });
}

describe.each(BACKENDS)('VNCA.inpaint with rounds of completion on %s', (backend) => {
  beforeAll(() => useBackend(backend));
  let m: VNCA;
  let x: tf.Tensor4D;
  let mask: tf.Tensor4D;
  beforeAll(() => {
    m = tinyModel();
    x = tf.tidy(() => tf.cast(tf.greater(tf.randomUniform([3, 8, 8, 1], 0, 1, 'float32', 7), 0.5), 'float32') as tf.Tensor4D);
    mask = tf.tidy(() => tf.tile(tf.reshape(tf.pad(tf.ones([4, 4]), [[1, 3], [2, 2]]), [1, 8, 8, 1]), [3, 1, 1, 1]) as tf.Tensor4D);
  });
  afterAll(() => {
    tf.dispose([x, mask]);
    m.dispose();
  });
  const run = (options: Parameters<VNCA["inpaint"]>[2]) => {
    const out = m.inpaint(x, mask, options);
    const a = out.arraySync();
    out.dispose();
    return a;
  };

  it('iterations 1 is the single round of before, number for number', () => {
    const ref = tf.tidy(() => singleRound(m, x, mask, 3, 5).arraySync());
    expect(run({ iterations: 1, steps: 3, seed: 5 })).toEqual(ref);
  });

  it('round 2 encodes the completed image and takes the region from its posterior-mean decode', () => {
    const want = tf.tidy(() => {
      const first = singleRound(m, x, mask, 3, 5);
      const q = m.encode(first);
      const p = m.render(m.decode(q.mean as tf.Tensor2D, { seed: 5 + 1000 }));
      q.dispose();
      return tf.add(tf.mul(x, tf.sub(1, mask)), tf.mul(p, mask)).arraySync();
    });
    expect(run({ iterations: 2, steps: 3, seed: 5 })).toEqual(want);
    // A fixed model's default is 3 rounds (a doubling model's 2).
    expect(run({ steps: 3, seed: 5 })).toEqual(run({ iterations: 3, steps: 3, seed: 5 }));
    expect(m.growthPlan.inpaintIterations(m.config)).toBe(3);
  });

  it('a fixed model\'s round 1 defaults to the posterior-mean decode: no regrowth, no damage', () => {
    const want = tf.tidy(() => {
      const keep = tf.sub(1, mask);
      const q = m.encode(tf.mul(x, keep) as tf.Tensor4D);
      const p = m.render(m.decode(q.mean as tf.Tensor2D, { seed: 2 }));
      q.dispose();
      return tf.add(tf.mul(x, keep), tf.mul(p, mask)).arraySync();
    });
    expect(run({ iterations: 1, seed: 2 })).toEqual(want);
    expect(run({ iterations: 1, seed: 2, steps: 0, damage: false })).toEqual(want);
  });

  it('more rounds change the region and never the known pixels; seeded and reproducible; no tensor left behind', () => {
    const before = tf.memory().numTensors;
    const outs = [1, 2, 3, 5].map((iterations) => run({ iterations, steps: 2, seed: 1 }));
    expect(tf.memory().numTensors).toBe(before);
    const flat = outs.map((o) => (o as number[][][][]).flat(3));
    const known = tf.tidy(() => tf.sub(1, mask).dataSync());
    const xs = x.dataSync();
    for (const f of flat) f.forEach((v, i) => { if (known[i] === 1) expect(v).toBe(xs[i]); });
    for (let k = 1; k < flat.length; k++) {
      const changed = flat[k]!.filter((v, i) => Math.abs(v - flat[k - 1]![i]!) > 1e-6).length;
      expect(changed, `rounds ${[1, 2, 3, 5][k]} against ${[1, 2, 3, 5][k - 1]}`).toBeGreaterThan(0);
    }
    expect(run({ iterations: 3, steps: 2, seed: 1 })).toEqual(outs[2]);
    // damage: false still applies to round 1 only, and changes the result.
    expect(run({ iterations: 3, steps: 2, seed: 1, damage: false })).not.toEqual(outs[2]);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('rejects bad options with named errors', () => {
    const before = tf.memory().numTensors;
    expect(() => m.inpaint(x, mask, { iterations: 0 })).toThrowError(/Error in VNCA.inpaint: options.iterations must be an integer >= 1, but got 0/);
    expect(() => m.inpaint(x, mask, { iterations: 1.5 })).toThrowError(/options.iterations must be an integer >= 1, but got 1.5/);
    expect(() => m.inpaint(x, mask, { iterations: '2' as never })).toThrowError(/options.iterations must be an integer >= 1/);
    expect(() => m.inpaint(x, mask, { damage: 'yes' as never })).toThrowError(/Error in VNCA.inpaint: options.damage must be a boolean/);
    expect(() => m.inpaint(x, mask, { seed: 0.5 })).toThrowError(/Error in VNCA.inpaint: options.seed must be an integer/);
    expect(() => m.inpaint(x, mask, { steps: -1 })).toThrowError(/Error in VNCA.inpaint: options.steps must be an integer >= 0/);
    expect(() => m.inpaint(x, mask, null as never)).toThrowError(/Error in VNCA.inpaint: options must be an object/);
    expect(tf.memory().numTensors).toBe(before);
  });
});

describe('inpainting with the shipped mnist-regen', () => {
  beforeAll(() => useBackend('wasm'));

  it('fills a hole better than round 1 alone and than the posterior-mean decode, on held-out digits', async () => {
    const model = await VNCA.load(pretrained('mnist-regen'));
    const x = datasetToTensor(loadMnistDigits({ split: 'test', pad: 0 }), 0, 24);
    const before = tf.memory().numTensors;
    const two = measureInpainting(model, x, { batchSize: 24, iterations: 2 });
    const three = measureInpainting(model, x, { batchSize: 24 });
    const one = measureInpainting(model, x, { batchSize: 24, iterations: 1 });
    // Round 1 alone is, by default for this fixed model, the posterior-mean decode itself;
    // round 2 gains several nats per digit, and so does it after round 1's damage and regrowth.
    expect(Array.from(one.inpaintedPerImage)).toEqual(Array.from(one.posteriorMeanPerImage));
    expect(two.inpainted).toBeGreaterThan(one.inpainted + 5);
    expect(three.inpainted).toBeGreaterThan(two.inpainted);
    const regrown = measureInpainting(model, x, { batchSize: 24, steps: [32], damage: true });
    const regrownOnly = measureInpainting(model, x, { batchSize: 24, steps: [32], damage: true, iterations: 1 });
    expect(regrown.inpainted).toBeGreaterThan(regrownOnly.inpainted + 5);
    expect(regrown.inpainted).toBeGreaterThan(regrown.posteriorMean + 5);
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose(x);
    model.dispose();
  }, 120_000);
});
