import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
// Gradients are registered by tfjs-layers (which the package imports); this test imports only core.
import '@tensorflow/tfjs-core/dist/register_all_gradients';
import { BACKENDS, expectClose, useBackend } from './helpers/backends.js';
import { DiagonalGaussian, sampleStandardNormal, standardNormalLogProb } from '../src/vae/distributions.js';

const HALF_LOG_2PI = 0.5 * Math.log(2 * Math.PI);

describe.each(BACKENDS)('distributions on %s', (name) => {
  beforeAll(() => useBackend(name));

  const mu = [[0.5, -1.0, 0.0], [2.0, 0.25, -0.75]];
  const ls = [[0.0, -0.5, 0.3], [-1.2, 0.1, 0.0]];

  it('fromEncoderOutput splits [mean | logStd]', async () => {
    const out = tf.tensor2d([[1, 2, 3, 4], [5, 6, 7, 8]]);
    const q = DiagonalGaussian.fromEncoderOutput(out);
    expect(q.batchSize).toBe(2);
    expect(q.zSize).toBe(2);
    expectClose(await q.mean.data(), [1, 2, 5, 6]);
    expectClose(await q.logStd.data(), [3, 4, 7, 8]);
    q.dispose();
    expect(out.isDisposed).toBe(false);
    out.dispose();
  });

  it('klToStandardNormal matches the closed form worked by hand', async () => {
    const q = new DiagonalGaussian(tf.tensor2d(mu), tf.tensor2d(ls));
    const kl = q.klToStandardNormal();
    expect(kl.shape).toEqual([2]);
    const expected = mu.map((row, i) => 0.5 * row.reduce((acc, m, j) => {
      const l = ls[i]![j]!;
      return acc + m * m + Math.exp(2 * l) - 1 - 2 * l;
    }, 0));
    expectClose(await kl.data(), expected, 1e-5);
    // KL of N(0, 1) to itself is 0.
    const q0 = new DiagonalGaussian(tf.zeros([1, 4]), tf.zeros([1, 4]));
    const kl0 = q0.klToStandardNormal();
    expectClose(await kl0.data(), [0], 0, 1e-7);
    tf.dispose([kl, kl0]);
    q.dispose();
    q0.dispose();
  });

  it('logProb matches the Gaussian density for [b, d] and [k, b, d]', async () => {
    const q = new DiagonalGaussian(tf.tensor2d(mu), tf.tensor2d(ls));
    const z = [[[0.1, 0.2, 0.3], [1.0, -1.0, 0.5]], [[-0.5, -1.5, 0.0], [2.5, 0.0, -1.0]]];
    const expected = z.map((zk) => zk.map((row, i) => row.reduce((acc, v, j) => {
      const m = mu[i]![j]!, l = ls[i]![j]!, s = Math.exp(l);
      return acc - 0.5 * ((v - m) / s) ** 2 - l - HALF_LOG_2PI;
    }, 0)));
    const lp3 = q.logProb(tf.tensor3d(z));
    expect(lp3.shape).toEqual([2, 2]);
    expectClose(await lp3.data(), expected.flat(), 1e-5);
    const z2 = tf.tensor2d(z[0]!);
    const lp2 = q.logProb(z2);
    expect(lp2.shape).toEqual([2]);
    expectClose(await lp2.data(), expected[0]!, 1e-5);
    tf.dispose([lp3, lp2, z2]);
    q.dispose();
  });

  it('standardNormalLogProb sums over the last axis', async () => {
    const z = tf.tensor3d([[[0, 1], [2, -1]]]);
    const lp = standardNormalLogProb(z);
    expect(lp.shape).toEqual([1, 2]);
    expectClose(await lp.data(), [-0.5 - 2 * HALF_LOG_2PI, -2.5 - 2 * HALF_LOG_2PI], 1e-6);
    tf.dispose([z, lp]);
  });

  it('sample has shape [k, b, d] and the right mean and std over many samples', async () => {
    const mean = tf.tensor2d([[1.5, -2.0]]);
    const logStd = tf.tensor2d([[Math.log(0.5), Math.log(2.0)]]);
    const q = new DiagonalGaussian(mean, logStd);
    const k = 20000;
    const z = q.sample(k, 7);
    expect(z.shape).toEqual([k, 1, 2]);
    const { mean: m, variance: v } = tf.moments(z, 0);
    expectClose(await m.data(), [1.5, -2.0], 0, 0.05);
    expectClose(Array.from(await v.data(), Math.sqrt), [0.5, 2.0], 0.03);
    // Seeded samples repeat.
    const z2 = q.sample(3, 11), z3 = q.sample(3, 11);
    expectClose(await z2.data(), await z3.data(), 0, 0);
    tf.dispose([z, m, v, z2, z3]);
    q.dispose();
  });

  it('sample is reparameterised: dz/dmean = 1 and dz/dlogStd = z - mean', async () => {
    const mean = tf.tensor2d([[0.3, -0.2], [1.0, 0.0]]);
    const logStd = tf.tensor2d([[0.1, -0.4], [0.0, 0.2]]);
    const f = (m: tf.Tensor, l: tf.Tensor) => {
      const q = new DiagonalGaussian(m as tf.Tensor2D, l as tf.Tensor2D);
      return tf.sum(q.sample(3, 5));
    };
    const [gMean, gLogStd] = tf.grads(f)([mean, logStd]);
    // Three samples per input, each with dz/dmean = 1.
    expectClose(await gMean!.data(), [3, 3, 3, 3], 1e-6);
    // dz/dlogStd = exp(logStd) * eps = z - mean, summed over the samples.
    const q = new DiagonalGaussian(mean, logStd);
    const z = q.sample(3, 5);
    const expected = tf.sum(tf.sub(z, mean), 0);
    expectClose(await gLogStd!.data(), await expected.data(), 1e-5, 1e-6);
    tf.dispose([gMean!, gLogStd!, z, expected]);
    q.dispose();
  });

  it('sampleStandardNormal draws [n, d] with mean 0 and std 1', async () => {
    const z = sampleStandardNormal([5000, 3], 3);
    expect(z.shape).toEqual([5000, 3]);
    const { mean, variance } = tf.moments(z, 0);
    expectClose(await mean.data(), [0, 0, 0], 0, 0.06);
    expectClose(await variance.data(), [1, 1, 1], 0.06);
    tf.dispose([z, mean, variance]);
  });

  it('does not leak tensors', () => {
    const mean = tf.zeros([2, 3]) as tf.Tensor2D, logStd = tf.zeros([2, 3]) as tf.Tensor2D;
    const q = new DiagonalGaussian(mean, logStd);
    const before = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) {
      const z = q.sample(2, i);
      tf.dispose([z, q.logProb(z), q.klToStandardNormal(), standardNormalLogProb(z), q.std()]);
    }
    expect(tf.memory().numTensors).toBe(before);
    q.dispose();
    expect(mean.isDisposed && logStd.isDisposed).toBe(true);
    q.dispose(); // twice is harmless
  });

  it('rejects bad input', () => {
    const a = tf.zeros([2, 3]) as tf.Tensor2D, b = tf.zeros([2, 4]) as tf.Tensor2D;
    expect(() => new DiagonalGaussian(a, b)).toThrowError(/Error in DiagonalGaussian: logStd must have the shape of mean/);
    expect(() => new DiagonalGaussian(tf.zeros([3]) as unknown as tf.Tensor2D, a)).toThrowError(/mean must be rank 2/);
    expect(() => DiagonalGaussian.fromEncoderOutput(tf.zeros([2, 3]) as tf.Tensor2D)).toThrowError(/out must have an even/);
    const q = new DiagonalGaussian(a, tf.zeros([2, 3]) as tf.Tensor2D);
    expect(() => q.sample(0)).toThrowError(/Error in DiagonalGaussian.sample: k must be an integer >= 1/);
    expect(() => q.sample(1, Number.NaN)).toThrowError(/seed must be a finite number/);
    expect(() => q.logProb(tf.zeros([2, 4]) as tf.Tensor2D)).toThrowError(/z must end in \[batch, zSize\] = \[2, 3\]/);
    expect(() => q.logProb(tf.zeros([2]) as unknown as tf.Tensor2D)).toThrowError(/z must be rank 2 .* or rank 3/);
    expect(() => sampleStandardNormal([0, 3])).toThrowError(/Error in sampleStandardNormal: shape\[0\] must be an integer >= 1/);
    expect(() => standardNormalLogProb(tf.scalar(1))).toThrowError(/z must have rank >= 1/);
    q.dispose();
    expect(() => q.klToStandardNormal()).toThrowError(/must be a live distribution/);
    tf.dispose([b]);
  });
});
