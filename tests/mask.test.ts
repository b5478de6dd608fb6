import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
// tfjs-core registers its gradients when tfjs-layers loads (the package entry imports it);
// these tests load src/core alone, so they import it themselves.
import '@tensorflow/tfjs-layers';
import { BACKENDS, expectClose, useBackend } from './helpers/backends.js';
import { cellMask, maskedUpdate } from '../src/core/mask.js';

describe.each(BACKENDS)('cellMask on %s', (name) => {
  beforeAll(() => useBackend(name));

  it('draws 0/1 cells with frequency pUpdate (within 3 sigma)', () => {
    for (const p of [0.5, 0.2, 0.9]) {
      const m = cellMask([4, 64, 64], p, 1234);
      expect(m.shape).toEqual([4, 64, 64, 1]);
      expect(m.dtype).toBe('float32');
      const v = m.dataSync();
      let ones = 0, other = 0;
      for (const x of v) {
        if (x === 1) ones++;
        else if (x !== 0) other++;
      }
      expect(other).toBe(0);
      const n = v.length, sigma = Math.sqrt((p * (1 - p)) / n);
      expect(Math.abs(ones / n - p)).toBeLessThan(3 * sigma);
      m.dispose();
    }
  });

  it('is reproducible with a seed and varies without', () => {
    const a = cellMask([2, 16, 16], 0.5, 7), b = cellMask([2, 16, 16], 0.5, 7);
    const c = cellMask([2, 16, 16], 0.5, 8);
    expect(Array.from(a.dataSync())).toEqual(Array.from(b.dataSync()));
    expect(Array.from(a.dataSync())).not.toEqual(Array.from(c.dataSync()));
    const u1 = cellMask([2, 16, 16], 0.5), u2 = cellMask([2, 16, 16], 0.5);
    expect(Array.from(u1.dataSync())).not.toEqual(Array.from(u2.dataSync()));
    tf.dispose([a, b, c, u1, u2]);
  });

  it('is all ones for pUpdate 1 and all zeros for pUpdate 0', () => {
    const one = cellMask([2, 3, 4], 1), zero = cellMask([2, 3, 4], 0, 5);
    expect(one.shape).toEqual([2, 3, 4, 1]);
    expect(Array.from(one.dataSync())).toEqual(new Array(24).fill(1));
    expect(Array.from(zero.dataSync())).toEqual(new Array(24).fill(0));
    tf.dispose([one, zero]);
  });

  it('does not leak', () => {
    cellMask([1, 4, 4], 0.5, 1).dispose();
    const before = tf.memory().numTensors;
    for (const p of [0, 0.3, 1]) cellMask([1, 4, 4], p, 1).dispose();
    cellMask([1, 4, 4], 0.3).dispose();
    expect(tf.memory().numTensors).toBe(before);
  });

  it('rejects bad input', () => {
    expect(() => cellMask([4, 64] as unknown as [number, number, number], 0.5)).toThrowError(/Error in cellMask: shape must be \[batch, height, width\]/);
    expect(() => cellMask([0, 4, 4], 0.5)).toThrowError(/Error in cellMask: shape\[0\] must be an integer >= 1, but got 0/);
    expect(() => cellMask([1, 4.5, 4], 0.5)).toThrowError(/Error in cellMask: shape\[1\] must be an integer >= 1, but got 4.5/);
    expect(() => cellMask([1, 4, 4], 1.5)).toThrowError(/Error in cellMask: pUpdate must be a finite number >= 0 and <= 1, but got 1.5/);
    expect(() => cellMask([1, 4, 4], -0.1)).toThrowError(/Error in cellMask: pUpdate must be .*but got -0.1/);
    expect(() => cellMask([1, 4, 4], NaN)).toThrowError(/Error in cellMask: pUpdate must be .*but got NaN/);
    expect(() => cellMask([1, 4, 4], 0.5, Infinity)).toThrowError(/Error in cellMask: seed must be a finite number, but got Infinity/);
  });
});

describe.each(BACKENDS)('maskedUpdate on %s', (name) => {
  beforeAll(() => useBackend(name));

  const state = () => tf.tensor4d([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12], [2, 1, 2, 3]);
  const delta = () => tf.tensor4d([10, 20, 30, 40, 50, 60, 70, 80, 90, 100, 110, 120], [2, 1, 2, 3]);
  const mask = () => tf.tensor4d([1, 0, 0, 1], [2, 1, 2, 1]);

  it('adds the masked delta, the mask shared across channels, no rescale', () => {
    const s = state(), d = delta(), m = mask();
    const y = maskedUpdate(s, d, m);
    expect(y.shape).toEqual([2, 1, 2, 3]);
    expect(Array.from(y.dataSync())).toEqual([11, 22, 33, 4, 5, 6, 7, 8, 9, 110, 121, 132]);
    tf.dispose([s, d, m, y]);
  });

  it('keeps all channels of a cell together with a random mask', () => {
    const s = tf.zeros([2, 8, 8, 5]) as tf.Tensor4D, d = tf.ones([2, 8, 8, 5]) as tf.Tensor4D;
    const m = cellMask([2, 8, 8], 0.5, 3);
    const y = maskedUpdate(s, d, m);
    const v = y.dataSync(), mv = m.dataSync();
    for (let cell = 0; cell < 128; cell++) for (let k = 0; k < 5; k++) expect(v[cell * 5 + k]).toBe(mv[cell]);
    tf.dispose([s, d, m, y]);
  });

  it('without a mask is state + delta', () => {
    const s = state(), d = delta();
    const y1 = maskedUpdate(s, d), y2 = maskedUpdate(s, d, null);
    const expected = [11, 22, 33, 44, 55, 66, 77, 88, 99, 110, 121, 132];
    expect(Array.from(y1.dataSync())).toEqual(expected);
    expect(Array.from(y2.dataSync())).toEqual(expected);
    tf.dispose([s, d, y1, y2]);
  });

  it('has gradients 1 (state) and the mask (delta) at batch 2', () => {
    const s = state(), d = delta(), m = mask();
    const [gs, gd] = tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(maskedUpdate(a as tf.Tensor4D, b as tf.Tensor4D, m)))([s, d]);
    expectClose(gs!.dataSync(), new Array(12).fill(1));
    expectClose(gd!.dataSync(), [1, 1, 1, 0, 0, 0, 0, 0, 0, 1, 1, 1]);
    // Weighted: d/d(delta) of sum(w * out) = w * mask.
    const w = tf.tensor4d([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12], [2, 1, 2, 3]);
    const [ws, wd] = tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(w, maskedUpdate(a as tf.Tensor4D, b as tf.Tensor4D, m))))([s, d]);
    expectClose(ws!.dataSync(), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
    expectClose(wd!.dataSync(), [1, 2, 3, 0, 0, 0, 0, 0, 0, 10, 11, 12]);
    tf.dispose([s, d, m, w, gs!, gd!, ws!, wd!]);
  });

  it('does not leak', () => {
    const s = state(), d = delta(), m = mask();
    maskedUpdate(s, d, m).dispose();
    const before = tf.memory().numTensors;
    maskedUpdate(s, d, m).dispose();
    maskedUpdate(s, d).dispose();
    tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(maskedUpdate(a as tf.Tensor4D, b as tf.Tensor4D, m)))([s, d]).forEach((g) => g.dispose());
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([s, d, m]);
  });

  it('rejects bad input', () => {
    const s = state(), d = delta(), m = mask();
    const s3 = tf.zeros([1, 2, 3]);
    const si = tf.zeros([2, 1, 2, 3], 'int32');
    const dBad = tf.zeros([2, 1, 2, 4]);
    const mBad = tf.zeros([2, 1, 2, 3]);
    const mOne = tf.zeros([1, 1, 2, 1]);
    const mInt = tf.zeros([2, 1, 2, 1], 'int32');
    expect(() => maskedUpdate(s3 as tf.Tensor4D, d, m)).toThrowError(/Error in maskedUpdate: state must be rank 4.*got rank 3/);
    expect(() => maskedUpdate(si as tf.Tensor4D, d, m)).toThrowError(/Error in maskedUpdate: state must be float32, but got int32/);
    expect(() => maskedUpdate(s, s3 as tf.Tensor4D, m)).toThrowError(/Error in maskedUpdate: delta must be rank 4/);
    expect(() => maskedUpdate(s, dBad as tf.Tensor4D, m)).toThrowError(/Error in maskedUpdate: delta must have the shape of state \[2, 1, 2, 3\], but got \[2, 1, 2, 4\]/);
    expect(() => maskedUpdate(s, d, mBad as tf.Tensor4D)).toThrowError(/Error in maskedUpdate: mask must have shape \[2, 1, 2, 1\].*but got \[2, 1, 2, 3\]/);
    expect(() => maskedUpdate(s, d, mOne as tf.Tensor4D)).toThrowError(/Error in maskedUpdate: mask must have shape \[2, 1, 2, 1\].*but got \[1, 1, 2, 1\]/);
    expect(() => maskedUpdate(s, d, mInt as tf.Tensor4D)).toThrowError(/Error in maskedUpdate: mask must be float32, but got int32/);
    expect(() => maskedUpdate(s, d, 1 as unknown as tf.Tensor4D)).toThrowError(/Error in maskedUpdate: mask must be a tf.Tensor, but got 1/);
    tf.dispose([s, d, m, s3, si, dBad, mBad, mOne, mInt]);
  });
});
