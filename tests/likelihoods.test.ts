import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-core/dist/register_all_gradients';
import { BACKENDS, expectClose, onBackend, useBackend } from './helpers/backends.js';
import {
  bernoulliLogProb, bernoulliMean, bernoulliSample, discretizedMixLogisticLogProb, discretizedMixLogisticMean,
  discretizedMixLogisticSample, nMixFromChannels,
} from '../src/vae/likelihoods.js';

const sigmoid = (v: number) => 1 / (1 + Math.exp(-v));
const softplus = (v: number) => Math.max(v, 0) + Math.log1p(Math.exp(-Math.abs(v)));

/**
 * Plain-JS (float64) PixelCNN++ log-probability of one RGB pixel, written from the paper's
 * formulas; `p` holds the 10 * nMix parameters of the pixel in the documented layout.
 */
function dmolPixelLogProb(p: number[], x: [number, number, number]): number {
  const n = p.length / 10;
  const at = (c: number, part: number, k: number) => p[n + 3 * n * c + part * n + k]!;
  const logits = p.slice(0, n);
  const maxL = Math.max(...logits);
  const logZ = maxL + Math.log(logits.reduce((s, l) => s + Math.exp(l - maxL), 0));
  const comps: number[] = [];
  for (let k = 0; k < n; k++) {
    const means = [
      at(0, 0, k),
      at(1, 0, k) + Math.tanh(at(0, 2, k)) * x[0],
      at(2, 0, k) + Math.tanh(at(1, 2, k)) * x[0] + Math.tanh(at(2, 2, k)) * x[1],
    ];
    let lp = logits[k]! - logZ;
    for (let c = 0; c < 3; c++) {
      const ls = Math.max(at(c, 1, k), -7), s = Math.exp(ls), v = x[c]!;
      if (v < -0.999) lp += Math.log(sigmoid((v - means[c]! + 1 / 255) / s));
      else if (v > 0.999) lp += Math.log(1 - sigmoid((v - means[c]! - 1 / 255) / s));
      else {
        const delta = sigmoid((v - means[c]! + 1 / 255) / s) - sigmoid((v - means[c]! - 1 / 255) / s);
        if (delta > 1e-5) lp += Math.log(delta);
        else {
          const mid = (v - means[c]!) / s;
          lp += mid - ls - 2 * softplus(mid) - Math.log(127.5);
        }
      }
    }
    comps.push(lp);
  }
  const m = Math.max(...comps);
  return m + Math.log(comps.reduce((s, c) => s + Math.exp(c - m), 0));
}

/** A deterministic pseudo-random sequence in [-1, 1). */
function pseudo(n: number, seed: number): number[] {
  let s = seed;
  return Array.from({ length: n }, () => {
    s = (s * 1103515245 + 12345) % 2147483648;
    return (s / 2147483648) * 2 - 1;
  });
}

/** 8-bit value i in 0..255 scaled to [-1, 1]. */
const bin = (i: number) => i / 127.5 - 1;

/** Parameters of one pixel with one component: channel c has mean m[c], log-scale ls[c], raw coefficient co[c]. */
function onePixelParams(m: number[], ls: number[], co: number[]): number[] {
  const p = [0];
  for (let c = 0; c < 3; c++) p.push(m[c]!, ls[c]!, co[c]!);
  return p;
}

describe.each(BACKENDS)('likelihoods on %s', (name) => {
  beforeAll(() => useBackend(name));

  describe('Bernoulli', () => {
    it('bernoulliLogProb matches the naive formula for moderate logits, summed per example', async () => {
      const l = [[0.5, -1.2], [2.0, 0.0], [-3.0, 1.0]];
      const xs = [[1, 0], [0, 1], [1, 1]];
      const logits = tf.tensor4d(l.flat(), [3, 1, 2, 1]);
      const x = tf.tensor4d(xs.flat(), [3, 1, 2, 1]);
      const lp = bernoulliLogProb(logits, x);
      expect(lp.shape).toEqual([3]);
      const expected = l.map((row, i) => row.reduce((acc, v, j) => {
        const p = sigmoid(v);
        return acc + (xs[i]![j] ? Math.log(p) : Math.log(1 - p));
      }, 0));
      expectClose(await lp.data(), expected, 1e-5);
      tf.dispose([logits, x, lp]);
    });

    it('bernoulliLogProb is finite and exact for |logits| = 100', async () => {
      const logits = tf.tensor4d([100, -100, 100, -100], [1, 2, 2, 1]);
      const right = tf.tensor4d([1, 0, 0, 0], [1, 2, 2, 1]); // right, right, wrong, right
      const lp = bernoulliLogProb(logits, right);
      const v = (await lp.data())[0]!;
      expect(Number.isFinite(v)).toBe(true);
      expectClose([v], [-100], 1e-6); // log sigmoid(100) ~ -3.7e-44 thrice, log sigmoid(-100) = -100 once
      tf.dispose([logits, right, lp]);
    });

    it('bernoulliMean is sigmoid and bernoulliSample draws with that frequency', async () => {
      const logits = tf.fill([4000, 1, 1, 1], Math.log(0.3 / 0.7));
      const mean = bernoulliMean(logits);
      expectClose((await mean.data()).slice(0, 1), [0.3], 1e-5);
      const s = bernoulliSample(logits, 1);
      const vals = await s.data();
      expect(vals.every((v) => v === 0 || v === 1)).toBe(true);
      const freq = Array.from(vals).reduce((a, b) => a + b, 0) / vals.length;
      expect(Math.abs(freq - 0.3)).toBeLessThan(0.03);
      tf.dispose([logits, mean, s]);
    });

    it('has gradient sigmoid(logits) - x', async () => {
      const logits = tf.tensor2d([[0.3, -2]]);
      const x = tf.tensor2d([[1, 0]]);
      const g = tf.grad((l: tf.Tensor) => tf.neg(tf.sum(bernoulliLogProb(l, x))))(logits);
      expectClose(await g.data(), [sigmoid(0.3) - 1, sigmoid(-2)], 1e-5);
      tf.dispose([logits, x, g]);
    });

    it('rejects bad input', () => {
      const a = tf.zeros([2, 2, 2, 1]), b = tf.zeros([2, 2, 2, 3]);
      expect(() => bernoulliLogProb(a, b)).toThrowError(/Error in bernoulliLogProb: x must have the shape of logits \[2, 2, 2, 1\]/);
      expect(() => bernoulliLogProb(tf.scalar(1), tf.scalar(1))).toThrowError(/logits must have a batch axis/);
      expect(() => bernoulliSample(a, Infinity)).toThrowError(/Error in bernoulliSample: seed must be a finite number/);
      tf.dispose([a, b]);
    });
  });

  describe('discretised mixture of logistics', () => {
    it('nMixFromChannels', () => {
      expect(nMixFromChannels(10)).toBe(1);
      expect(nMixFromChannels(100)).toBe(10);
      expect(() => nMixFromChannels(15)).toThrowError(/Error in nMixFromChannels: channels must be a positive multiple of 10/);
      expect(() => nMixFromChannels(0)).toThrowError(/positive multiple of 10/);
    });

    it('a channel\'s probabilities over its 256 values sum to 1 (independent channels)', async () => {
      // Red: mean 0.1, scale e^-2.5; green and blue pinned at -1 with probability ~1
      // (means far below -1, tiny scales), coefficients 0 so the channels are independent.
      const p = onePixelParams([0.1, -3, -3], [-2.5, -7, -7], [0, 0, 0]);
      const params = tf.tensor4d(Array.from({ length: 256 }, () => p).flat(), [256, 1, 1, 10]);
      const x = tf.tensor4d(Array.from({ length: 256 }, (_, i) => [bin(i), -1, -1]).flat(), [256, 1, 1, 3]);
      const lp = discretizedMixLogisticLogProb(params, x);
      expect(lp.shape).toEqual([256]);
      const probs = Array.from(await lp.data(), Math.exp);
      expect(Math.abs(probs.reduce((a, b) => a + b, 0) - 1)).toBeLessThan(1e-3);
      // One interior value and both edges against the logistic CDF worked by hand.
      const s = Math.exp(-2.5), cdf = (v: number) => sigmoid((v - 0.1) / s);
      const i = 140; // bin(140) ~ 0.098
      expectClose([probs[i]!], [cdf(bin(i) + 1 / 255) - cdf(bin(i) - 1 / 255)], 1e-3);
      expectClose([probs[0]!], [cdf(-1 + 1 / 255)], 1e-3, 1e-9);
      expectClose([probs[255]!], [1 - cdf(1 - 1 / 255)], 1e-3, 1e-9);
      tf.dispose([params, x, lp]);
    });

    it('blue\'s conditional sums to 1 and its mean is shifted by the coefficients', async () => {
      // Red pinned at +1, green pinned at -1; blue mean -0.2 + tanh(0.5) * 1 + tanh(-0.3) * (-1).
      const p = onePixelParams([3, -3, -0.2], [-7, -7, -2], [0.9, 0.5, -0.3]);
      const params = tf.tensor4d(Array.from({ length: 256 }, () => p).flat(), [256, 1, 1, 10]);
      const x = tf.tensor4d(Array.from({ length: 256 }, (_, i) => [1, -1, bin(i)]).flat(), [256, 1, 1, 3]);
      const lp = discretizedMixLogisticLogProb(params, x);
      const probs = Array.from(await lp.data(), Math.exp);
      expect(Math.abs(probs.reduce((a, b) => a + b, 0) - 1)).toBeLessThan(1e-3);
      const mB = -0.2 + Math.tanh(0.5) - Math.tanh(-0.3), s = Math.exp(-2);
      const cdf = (v: number) => sigmoid((v - mB) / s);
      for (const i of [100, 150, 200]) {
        expectClose([probs[i]!], [cdf(bin(i) + 1 / 255) - cdf(bin(i) - 1 / 255)], 1e-3);
      }
      tf.dispose([params, x, lp]);
    });

    it('matches a float64 reference of the formula for a mixture, summed over pixels', async () => {
      const nMix = 3, b = 2, h = 2, w = 3;
      const raw = pseudo(b * h * w * 10 * nMix, 42).map((v) => 2 * v);
      // Keep log-scales in a realistic range (-4..-1) so no pixel sits on the 1e-5 fallback by accident.
      const pv = raw.map((v, i) => {
        const c = i % (10 * nMix);
        const part = c < nMix ? -1 : Math.floor(((c - nMix) % (3 * nMix)) / nMix);
        return part === 1 ? -2.5 + 0.75 * v : v * 0.5;
      });
      const xv = pseudo(b * h * w * 3, 7).map((v) => bin(Math.round((v + 1) * 127.5)));
      xv[0] = -1; xv[4] = 1; // edge cases
      const params = tf.tensor4d(pv, [b, h, w, 10 * nMix]);
      const x = tf.tensor4d(xv, [b, h, w, 3]);
      const lp = discretizedMixLogisticLogProb(params, x);
      const expected = Array.from({ length: b }, (_, bi) => {
        let acc = 0;
        for (let pix = 0; pix < h * w; pix++) {
          const idx = bi * h * w + pix;
          const px = pv.slice(idx * 10 * nMix, (idx + 1) * 10 * nMix);
          acc += dmolPixelLogProb(px, [xv[idx * 3]!, xv[idx * 3 + 1]!, xv[idx * 3 + 2]!]);
        }
        return acc;
      });
      expectClose(await lp.data(), expected, 1e-4);
      // Gradient of the first pixel's log-prob against central differences of the reference.
      const g = tf.grad((q: tf.Tensor) => tf.sum(discretizedMixLogisticLogProb(q as tf.Tensor4D, x)))(params);
      const gv = await g.data();
      const px0 = pv.slice(0, 10 * nMix), x0: [number, number, number] = [xv[0]!, xv[1]!, xv[2]!];
      const fd = px0.map((_, j) => {
        const hi = px0.slice(), lo = px0.slice();
        hi[j]! += 1e-4; lo[j]! -= 1e-4;
        return (dmolPixelLogProb(hi, x0) - dmolPixelLogProb(lo, x0)) / 2e-4;
      });
      expectClose(gv.slice(0, 10 * nMix), fd, 1e-2, 1e-3);
      tf.dispose([params, x, lp, g]);
    });

    it('uses the mid-point log-density for tiny bin probabilities, and stays finite', async () => {
      // Mean 0.9 with scale e^-7: the bin of 0 has probability ~ e^-(0.9 e^7) (underflows).
      const p = onePixelParams([0.9, 0.9, 0.9], [-7, -7, -7], [0, 0, 0]);
      const params = tf.tensor4d(p, [1, 1, 1, 10]);
      const x = tf.tensor4d([bin(128), bin(128), bin(128)], [1, 1, 1, 3]);
      const lp = discretizedMixLogisticLogProb(params, x);
      const v = (await lp.data())[0]!;
      expect(Number.isFinite(v)).toBe(true);
      expectClose([v], [dmolPixelLogProb(p, [bin(128), bin(128), bin(128)])], 1e-4);
      const g = tf.grad((q: tf.Tensor) => tf.sum(discretizedMixLogisticLogProb(q as tf.Tensor4D, x)))(params);
      expect(Array.from(await g.data()).every(Number.isFinite)).toBe(true);
      tf.dispose([params, x, lp, g]);
    });

    it('samples lie in [-1, 1], follow the component means, and repeat with a seed', async () => {
      // Two components; the logits make component 1 (means 0.5, -0.5, 0.2) almost certain.
      const n = 2;
      const p = new Array(10 * n).fill(0);
      p[0] = -20; p[1] = 20;
      const means = [[-0.9, 0.5], [0.9, -0.5], [0.9, 0.2]];
      for (let c = 0; c < 3; c++) {
        for (let k = 0; k < n; k++) {
          p[n + 3 * n * c + k] = means[c]![k]!;
          p[n + 3 * n * c + n + k] = -4;
          p[n + 3 * n * c + 2 * n + k] = 0;
        }
      }
      const params = tf.tensor4d(Array.from({ length: 400 }, () => p).flat(), [4, 10, 10, 10 * n]);
      const s = discretizedMixLogisticSample(params, 3);
      expect(s.shape).toEqual([4, 10, 10, 3]);
      const vals = await s.data();
      expect(vals.every((v) => v >= -1 && v <= 1)).toBe(true);
      const m = tf.mean(s, [0, 1, 2]);
      expectClose(await m.data(), [0.5, -0.5, 0.2], 0, 0.02);
      const s2 = discretizedMixLogisticSample(params, 3);
      expectClose(await s2.data(), vals, 0, 0);
      const mean = discretizedMixLogisticMean(params);
      expect(mean.shape).toEqual([4, 10, 10, 3]);
      expectClose((await mean.data()).slice(0, 3), [0.5, -0.5, 0.2], 1e-5);
      tf.dispose([params, s, m, s2, mean]);
    });

    it('sampling applies the coefficients: green follows red', async () => {
      // Red ~ mean 0.5; green = mean 0 + tanh(atanh(0.8)) * red = 0.8 * red (tiny scales).
      const p = onePixelParams([0.5, 0, 0], [-7, -7, -7], [Math.atanh(0.8), 0, 0]);
      const params = tf.tensor4d(p, [1, 1, 1, 10]);
      const s = discretizedMixLogisticSample(params, 9);
      const [r, g] = await s.data();
      expectClose([g!], [0.8 * r!], 0, 1e-2);
      const mean = discretizedMixLogisticMean(params);
      expectClose(await mean.data(), [0.5, 0.4, 0], 1e-5, 1e-6);
      tf.dispose([params, s, mean]);
    });

    it('does not leak tensors', () => {
      const params = tf.zeros([1, 2, 2, 20]) as tf.Tensor4D;
      const x = tf.zeros([1, 2, 2, 3]) as tf.Tensor4D;
      const before = tf.memory().numTensors;
      tf.dispose([
        discretizedMixLogisticLogProb(params, x), discretizedMixLogisticSample(params, 1),
        discretizedMixLogisticMean(params), bernoulliLogProb(x, x), bernoulliSample(x, 1), bernoulliMean(x),
      ]);
      expect(tf.memory().numTensors).toBe(before);
      tf.dispose([params, x]);
    });

    it('rejects bad input', () => {
      const params = tf.zeros([1, 2, 2, 15]) as tf.Tensor4D;
      const good = tf.zeros([1, 2, 2, 10]) as tf.Tensor4D;
      const x = tf.zeros([1, 2, 2, 1]) as tf.Tensor4D;
      expect(() => discretizedMixLogisticLogProb(params, x)).toThrowError(/Error in discretizedMixLogisticLogProb: params must have 10 \* nMix channels/);
      expect(() => discretizedMixLogisticLogProb(good, x)).toThrowError(/x must have shape \[1, 2, 2, 3\] to match params/);
      expect(() => discretizedMixLogisticSample(tf.zeros([2, 10]) as unknown as tf.Tensor4D)).toThrowError(/params must be rank 4/);
      tf.dispose([params, good, x]);
    });
  });
});

describe('likelihoods agree across backends', () => {
  it('DMoL log-prob and seeded sample are the same on cpu and wasm', async () => {
    const nMix = 2;
    const pv = pseudo(2 * 3 * 3 * 10 * nMix, 5);
    const xv = pseudo(2 * 3 * 3 * 3, 9).map((v) => bin(Math.round((v + 1) * 127.5)));
    const run = () => tf.tidy(() => {
      const params = tf.tensor4d(pv, [2, 3, 3, 10 * nMix]);
      const x = tf.tensor4d(xv, [2, 3, 3, 3]);
      return [discretizedMixLogisticLogProb(params, x).dataSync(), discretizedMixLogisticSample(params, 4).dataSync()];
    });
    const [lpCpu, sCpu] = await onBackend('cpu', run);
    const [lpWasm, sWasm] = await onBackend('wasm', run);
    expectClose(lpWasm!, lpCpu!, 1e-4);
    expectClose(sWasm!, sCpu!, 1e-4, 1e-5);
  });
});
