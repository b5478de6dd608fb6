import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-core/dist/register_all_gradients';
import { BACKENDS, expectClose, useBackend } from './helpers/backends.js';
import { bitsPerDimToNats, elbo, elboLoss, iwae, natsToBitsPerDim } from '../src/vae/losses.js';

/** A deterministic pseudo-random sequence in [lo, hi). */
function pseudo(n: number, seed: number, lo: number, hi: number): number[] {
  let s = seed;
  return Array.from({ length: n }, () => {
    s = (s * 16807) % 2147483647;
    return lo + (hi - lo) * (s / 2147483647);
  });
}

describe.each(BACKENDS)('losses on %s', (name) => {
  beforeAll(() => useBackend(name));

  it('elbo splits into elbo, loss, reconstruction and kl', async () => {
    const logPx = tf.tensor1d([-80, -100, -90]);
    const kl = tf.tensor1d([20, 10, 15]);
    const r = elbo(logPx, kl);
    expect(r.elbo.shape).toEqual([3]);
    expect(r.loss.shape).toEqual([]);
    expectClose(await r.elbo.data(), [-100, -110, -105]);
    expectClose(await r.loss.data(), [105]);
    expectClose(await r.reconstruction.data(), [80, 100, 90]);
    expectClose(await r.kl.data(), [20, 10, 15]);
    expect(r.kl).not.toBe(kl);
    const l = elboLoss(logPx, kl);
    expectClose(await l.data(), [105]);
    tf.dispose([logPx, kl, l, ...Object.values(r)]);
  });

  it('elbo averages [k, batch] log-likelihoods over the samples, and beta weights the KL in the loss', async () => {
    const logPx = tf.tensor2d([[-10, -20], [-12, -24]]);
    const kl = tf.tensor1d([2, 4]);
    const r = elbo(logPx, kl, { beta: 0.5 });
    expectClose(await r.reconstruction.data(), [11, 22]);
    expectClose(await r.elbo.data(), [-13, -26]); // elbo ignores beta
    expectClose(await r.loss.data(), [(11 + 1 + 22 + 2) / 2]);
    const l = elboLoss(logPx, kl, { beta: 0 });
    expectClose(await l.data(), [16.5]);
    tf.dispose([logPx, kl, l, ...Object.values(r)]);
  });

  it('elboLoss has gradient -1/b for logPx and 1/b for kl', async () => {
    const logPx = tf.tensor1d([-3, -4]);
    const kl = tf.tensor1d([1, 2]);
    const [gp, gk] = tf.grads((a: tf.Tensor, b: tf.Tensor) => elboLoss(a as tf.Tensor1D, b as tf.Tensor1D))([logPx, kl]);
    expectClose(await gp!.data(), [-0.5, -0.5]);
    expectClose(await gk!.data(), [0.5, 0.5]);
    tf.dispose([logPx, kl, gp!, gk!]);
  });

  it('iwae with k = 1 equals logPx + logPz - logQz', async () => {
    const a = [[-50, -60, -70]], b = [[-5, -6, -7]], c = [[-2, -1, -3]];
    const out = iwae(tf.tensor2d(a), tf.tensor2d(b), tf.tensor2d(c));
    expect(out.shape).toEqual([3]);
    expectClose(await out.data(), [-53, -65, -74]);
    tf.dispose(out);
  });

  it('iwae is log-mean-exp over k, is stable, and is >= the mean single-sample bound (Jensen)', async () => {
    const k = 16, b = 5;
    const lpx = pseudo(k * b, 3, -300, -100), lpz = pseudo(k * b, 5, -40, -20), lqz = pseudo(k * b, 7, -20, 0);
    const tpx = tf.tensor2d(lpx, [k, b]), tpz = tf.tensor2d(lpz, [k, b]), tqz = tf.tensor2d(lqz, [k, b]);
    const out = await iwae(tpx, tpz, tqz).data();
    for (let j = 0; j < b; j++) {
      const w = Array.from({ length: k }, (_, i) => lpx[i * b + j]! + lpz[i * b + j]! - lqz[i * b + j]!);
      const m = Math.max(...w);
      const expected = m + Math.log(w.reduce((s, v) => s + Math.exp(v - m), 0) / k);
      expectClose([out[j]!], [expected], 1e-5);
      expect(Number.isFinite(out[j]!)).toBe(true); // exp(-300) would underflow without the shift
      const meanElbo = w.reduce((s, v) => s + v, 0) / k;
      expect(out[j]!).toBeGreaterThanOrEqual(meanElbo - 1e-3);
    }
    tf.dispose([tpx, tpz, tqz]);
  });

  it('does not leak tensors', () => {
    const a = tf.zeros([2, 3]) as tf.Tensor2D, kl = tf.zeros([3]) as tf.Tensor1D;
    const before = tf.memory().numTensors;
    const r = elbo(a, kl);
    tf.dispose([...Object.values(r), elboLoss(a, kl), iwae(a, a, a), natsToBitsPerDim(a, 4)]);
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([a, kl]);
  });

  it('rejects bad input', () => {
    const a = tf.zeros([2, 3]) as tf.Tensor2D, b = tf.zeros([3, 2]) as tf.Tensor2D, kl = tf.zeros([2]) as tf.Tensor1D;
    expect(() => elbo(a, kl)).toThrowError(/Error in elbo: kl must have shape \[3\] to match logPx \[2, 3\]/);
    expect(() => elbo(tf.zeros([1, 1, 3]) as unknown as tf.Tensor1D, kl)).toThrowError(/logPx must be rank 1 \[batch\] or rank 2 \[k, batch\]/);
    expect(() => elboLoss(tf.zeros([2]) as tf.Tensor1D, kl, { beta: -1 })).toThrowError(/Error in elboLoss: options.beta must be a finite number >= 0/);
    expect(() => iwae(a, b, a)).toThrowError(/Error in iwae: logPz must have the shape of logPx \[2, 3\], but got \[3, 2\]/);
    expect(() => iwae(kl as unknown as tf.Tensor2D, a, a)).toThrowError(/logPx must be rank 2 \[k, batch\]/);
    expect(() => natsToBitsPerDim(-1, 0)).toThrowError(/Error in natsToBitsPerDim: dims must be an integer >= 1/);
    expect(() => bitsPerDimToNats(Number.NaN, 3)).toThrowError(/bits must be a number/);
    tf.dispose([a, b, kl]);
  });
});

describe('nats and bits per dimension', () => {
  it('converts a log-likelihood to positive bits/dim and back', async () => {
    // 84.23 nats on 784 MNIST pixels is ~0.155 bits/dim.
    expect(natsToBitsPerDim(-84.23, 784)).toBeCloseTo(84.23 / (784 * Math.LN2), 12);
    expect(natsToBitsPerDim(-784 * Math.LN2, 784)).toBeCloseTo(1, 12);
    expect(bitsPerDimToNats(1, 784)).toBeCloseTo(-784 * Math.LN2, 10);
    expect(bitsPerDimToNats(natsToBitsPerDim(-1234.5, 3072), 3072)).toBeCloseTo(-1234.5, 9);
    const t = tf.tensor1d([-3072 * Math.LN2 * 3]);
    const bpd = natsToBitsPerDim(t, 3072);
    expectClose(await bpd.data(), [3]);
    tf.dispose([t, bpd]);
  });
});
