import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
// tfjs-core registers its gradients when tfjs-layers loads (the package entry imports it);
// these tests load src/core alone, so they import it themselves.
import '@tensorflow/tfjs-layers';
import { BACKENDS, expectClose, useBackend } from './helpers/backends.js';
import { aliveMask, damage, damageMask, type DamageRegion } from '../src/core/damage.js';

const arange = (n: number, from = 1) => Array.from({ length: n }, (_, i) => i + from);

describe.each(BACKENDS)('damageMask on %s', (name) => {
  beforeAll(() => useBackend(name));

  const grid = (h: number, w: number, region: DamageRegion) => {
    const m = damageMask(h, w, region);
    expect(m.shape).toEqual([h, w]);
    expect(m.dtype).toBe('float32');
    const a = m.arraySync();
    m.dispose();
    return a;
  };

  it('marks a square', () => {
    expect(grid(4, 5, { shape: 'square', top: 1, left: 2, size: 2 })).toEqual([
      [0, 0, 0, 0, 0],
      [0, 0, 1, 1, 0],
      [0, 0, 1, 1, 0],
      [0, 0, 0, 0, 0],
    ]);
  });

  it('clips a square partly outside the grid, and one wholly outside or empty', () => {
    expect(grid(4, 5, { shape: 'square', top: -1, left: 3, size: 3 })).toEqual([
      [0, 0, 0, 1, 1],
      [0, 0, 0, 1, 1],
      [0, 0, 0, 0, 0],
      [0, 0, 0, 0, 0],
    ]);
    expect(grid(2, 2, { shape: 'square', top: 5, left: -9, size: 3 })).toEqual([[0, 0], [0, 0]]);
    expect(grid(2, 2, { shape: 'square', top: 0, left: 0, size: 0 })).toEqual([[0, 0], [0, 0]]);
    expect(grid(2, 2, { shape: 'square', top: -3, left: -3, size: 10 })).toEqual([[1, 1], [1, 1]]);
  });

  it('marks a circle (centre distance <= radius), clipped at the border', () => {
    expect(grid(5, 5, { shape: 'circle', centerY: 2, centerX: 2, radius: 1 })).toEqual([
      [0, 0, 0, 0, 0],
      [0, 0, 1, 0, 0],
      [0, 1, 1, 1, 0],
      [0, 0, 1, 0, 0],
      [0, 0, 0, 0, 0],
    ]);
    // sqrt(2) <= 1.5: the 3x3 block; 2 <= 2: the tips too.
    expect(grid(5, 5, { shape: 'circle', centerY: 2, centerX: 2, radius: 2 })).toEqual([
      [0, 0, 1, 0, 0],
      [0, 1, 1, 1, 0],
      [1, 1, 1, 1, 1],
      [0, 1, 1, 1, 0],
      [0, 0, 1, 0, 0],
    ]);
    expect(grid(3, 4, { shape: 'circle', centerY: 0, centerX: 0, radius: 1 })).toEqual([
      [1, 1, 0, 0],
      [1, 0, 0, 0],
      [0, 0, 0, 0],
    ]);
    // A centre between cells: the four nearest cells lie at sqrt(0.5) ~ 0.707.
    expect(grid(4, 4, { shape: 'circle', centerY: 1.5, centerX: 1.5, radius: 0.75 })).toEqual([
      [0, 0, 0, 0],
      [0, 1, 1, 0],
      [0, 1, 1, 0],
      [0, 0, 0, 0],
    ]);
    expect(grid(2, 2, { shape: 'circle', centerY: -5, centerX: 0, radius: 2 })).toEqual([[0, 0], [0, 0]]);
  });

  it('binarises an explicit mask of shape [h,w], [h,w,1], [1,h,w] or [1,h,w,1]', () => {
    const expected = [[0, 1, 0], [1, 0, 1]];
    const masks = [
      tf.tensor2d([0, 1, 0, 1, 0, 1], [2, 3]),
      tf.tensor3d([0, 0.9, 0.2, 1, 0.4, 3], [2, 3, 1]),
      tf.tensor3d([0, 1, 0, 1, 0, 1], [1, 2, 3], 'int32'),
      tf.tensor4d([false, true, false, true, false, true], [1, 2, 3, 1], 'bool'),
    ];
    for (const mask of masks) expect(grid(2, 3, { shape: 'mask', mask })).toEqual(expected);
    tf.dispose(masks);
  });

  it('does not leak', () => {
    const mask = tf.ones([2, 2]);
    const before = tf.memory().numTensors;
    damageMask(2, 2, { shape: 'mask', mask }).dispose();
    damageMask(2, 2, { shape: 'square', top: 0, left: 0, size: 1 }).dispose();
    expect(tf.memory().numTensors).toBe(before);
    mask.dispose();
  });

  it('rejects bad input', () => {
    const sq: DamageRegion = { shape: 'square', top: 0, left: 0, size: 1 };
    const m2 = tf.ones([2, 2, 2]);
    expect(() => damageMask(0, 2, sq)).toThrowError(/Error in damageMask: height must be an integer >= 1, but got 0/);
    expect(() => damageMask(2, 2.5, sq)).toThrowError(/Error in damageMask: width must be an integer >= 1, but got 2.5/);
    expect(() => damageMask(2, 2, { shape: 'mask', mask: m2 })).toThrowError(/Error in damageMask: region.mask must have shape \[2, 2\].*with b = 1, but got \[2, 2, 2\]/);
    expect(() => damageMask(2, 2, { shape: 'ellipse' } as unknown as DamageRegion)).toThrowError(/Error in damageMask: region.shape must be one of 'square', 'circle', 'mask', but got "ellipse"/);
    m2.dispose();
  });
});

describe.each(BACKENDS)('damage on %s', (name) => {
  beforeAll(() => useBackend(name));

  it('zeroes every channel of the cells in a square, in every batch element', () => {
    const x = tf.tensor4d(arange(2 * 3 * 3 * 2), [2, 3, 3, 2]);
    const y = damage(x, { shape: 'square', top: 1, left: 1, size: 5 });
    expect(y.shape).toEqual([2, 3, 3, 2]);
    const keep = [1, 1, 1, 1, 0, 0, 1, 0, 0];
    const expected = arange(36).map((v, i) => v * keep[Math.floor(i / 2) % 9]!);
    expect(Array.from(y.dataSync())).toEqual(expected);
    tf.dispose([x, y]);
  });

  it('zeroes a circle', () => {
    const x = tf.ones([1, 3, 3, 2]) as tf.Tensor4D;
    const y = damage(x, { shape: 'circle', centerY: 1, centerX: 1, radius: 1 });
    const keep = [1, 0, 1, 0, 0, 0, 1, 0, 1];
    expect(Array.from(y.dataSync())).toEqual(keep.flatMap((k) => [k, k]));
    tf.dispose([x, y]);
  });

  it('applies an explicit mask, shared or per batch element', () => {
    const x = tf.tensor4d(arange(2 * 2 * 2 * 1), [2, 2, 2, 1]);
    const shared = tf.tensor2d([1, 0, 0, 0], [2, 2]);
    const perBatch = tf.tensor3d([1, 0, 0, 0, 0, 0, 0, 1], [2, 2, 2]);
    const perBatch4 = tf.tensor4d([true, false, false, false, false, false, false, true], [2, 2, 2, 1], 'bool');
    const ys = damage(x, { shape: 'mask', mask: shared });
    expect(Array.from(ys.dataSync())).toEqual([0, 2, 3, 4, 0, 6, 7, 8]);
    const yb = damage(x, { shape: 'mask', mask: perBatch });
    expect(Array.from(yb.dataSync())).toEqual([0, 2, 3, 4, 5, 6, 7, 0]);
    const yb4 = damage(x, { shape: 'mask', mask: perBatch4 });
    expect(Array.from(yb4.dataSync())).toEqual([0, 2, 3, 4, 5, 6, 7, 0]);
    tf.dispose([x, shared, perBatch, perBatch4, ys, yb, yb4]);
  });

  it('passes the gradient through the undamaged cells only (batch 2)', () => {
    const x = tf.ones([2, 2, 2, 2]) as tf.Tensor4D;
    const g = tf.grad((s: tf.Tensor) => tf.sum(damage(s as tf.Tensor4D, { shape: 'square', top: 0, left: 1, size: 1 })))(x);
    const keep = [1, 0, 1, 1];
    expectClose(g.dataSync(), [0, 1].flatMap(() => keep.flatMap((k) => [k, k])));
    tf.dispose([x, g]);
  });

  it('does not leak', () => {
    const x = tf.ones([2, 3, 3, 2]) as tf.Tensor4D;
    const mask = tf.ones([2, 3, 3]);
    damage(x, { shape: 'mask', mask }).dispose();
    const before = tf.memory().numTensors;
    damage(x, { shape: 'mask', mask }).dispose();
    damage(x, { shape: 'square', top: 0, left: 0, size: 2 }).dispose();
    damage(x, { shape: 'circle', centerY: 0, centerX: 0, radius: 2 }).dispose();
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([x, mask]);
  });

  it('rejects bad input', () => {
    const x = tf.ones([2, 3, 3, 1]) as tf.Tensor4D;
    const x3 = tf.ones([3, 3, 1]);
    const xi = tf.ones([2, 3, 3, 1], 'int32');
    const mBatch = tf.ones([3, 3, 3]);
    const mSize = tf.ones([3, 4]);
    const mStr = tf.tensor(['a']);
    const sq: DamageRegion = { shape: 'square', top: 0, left: 0, size: 1 };
    const bad = (r: unknown) => () => damage(x, r as DamageRegion);
    expect(() => damage(x3 as tf.Tensor4D, sq)).toThrowError(/Error in damage: state must be rank 4.*got rank 3/);
    expect(() => damage(xi as tf.Tensor4D, sq)).toThrowError(/Error in damage: state must be float32, but got int32/);
    expect(bad(null)).toThrowError(/Error in damage: region must be an object with shape 'square', 'circle' or 'mask', but got null/);
    expect(bad({ shape: 'triangle' })).toThrowError(/Error in damage: region.shape must be one of 'square', 'circle', 'mask', but got "triangle"/);
    expect(bad({ shape: 'square', top: 0.5, left: 0, size: 1 })).toThrowError(/Error in damage: region.top must be an integer, but got 0.5/);
    expect(bad({ shape: 'square', top: 0, left: 'a', size: 1 })).toThrowError(/Error in damage: region.left must be an integer.*but got "a"/);
    expect(bad({ shape: 'square', top: 0, left: 0, size: -1 })).toThrowError(/Error in damage: region.size must be an integer >= 0, but got -1/);
    expect(bad({ shape: 'circle', centerY: NaN, centerX: 0, radius: 1 })).toThrowError(/Error in damage: region.centerY must be a finite number, but got NaN/);
    expect(bad({ shape: 'circle', centerY: 0, centerX: 0, radius: -2 })).toThrowError(/Error in damage: region.radius must be a finite number >= 0, but got -2/);
    expect(bad({ shape: 'circle', centerY: 0, radius: 1 })).toThrowError(/Error in damage: region.centerX must be a finite number, but got undefined/);
    expect(bad({ shape: 'mask', mask: [[1]] })).toThrowError(/Error in damage: region.mask must be a tf.Tensor/);
    expect(bad({ shape: 'mask', mask: mBatch })).toThrowError(/Error in damage: region.mask must have shape \[3, 3\], \[3, 3, 1\], \[b, 3, 3\] or \[b, 3, 3, 1\] with b = 2 or 1, but got \[3, 3, 3\]/);
    expect(bad({ shape: 'mask', mask: mSize })).toThrowError(/Error in damage: region.mask must have shape .*but got \[3, 4\]/);
    expect(bad({ shape: 'mask', mask: mStr })).toThrowError(/Error in damage: region.mask must be float32, int32 or bool, but got string/);
    tf.dispose([x, x3, xi, mBatch, mSize, mStr]);
  });
});

describe.each(BACKENDS)('aliveMask on %s', (name) => {
  beforeAll(() => useBackend(name));

  /** [b, 4, 4, 4] state whose alpha (channel 3) is `alpha` and other channels 7. */
  const withAlpha = (alpha: number[], b = 1) => {
    const v: number[] = [];
    for (const a of alpha) v.push(7, 7, 7, a);
    return tf.tensor4d(v, [b, 4, 4, 4]);
  };

  it('is maxpool3x3(alpha) > 0.1 (golden)', () => {
    const alpha = [
      0.5, 0, 0, 0,
      0, 0, 0, 0,
      0, 0, 0, 0,
      0, 0, 0, 0.05,
    ];
    const x = withAlpha(alpha);
    const m = aliveMask(x);
    expect(m.shape).toEqual([1, 4, 4, 1]);
    expect(m.dtype).toBe('float32');
    expect(Array.from(m.dataSync())).toEqual([
      1, 1, 0, 0,
      1, 1, 0, 0,
      0, 0, 0, 0,
      0, 0, 0, 0,
    ]);
    const low = aliveMask(x, { threshold: 0.01 });
    expect(Array.from(low.dataSync())).toEqual([
      1, 1, 0, 0,
      1, 1, 0, 0,
      0, 0, 1, 1,
      0, 0, 1, 1,
    ]);
    tf.dispose([x, m, low]);
  });

  it('reads another channel, handles batches, and ignores cells outside the grid', () => {
    const x = withAlpha([...new Array(16).fill(0), ...new Array(16).fill(-1)], 2);
    // Channel 0 is 7 everywhere: all alive.
    const m0 = aliveMask(x, { channel: 0 });
    expect(Array.from(m0.dataSync())).toEqual(new Array(32).fill(1));
    // Alpha -1 everywhere in batch 1: no border cell sees a padded 0.
    const m = aliveMask(x, { threshold: -0.5 });
    expect(Array.from(m.dataSync())).toEqual([...new Array(16).fill(1), ...new Array(16).fill(0)]);
    tf.dispose([x, m0, m]);
  });

  it('does not leak', () => {
    const x = withAlpha(new Array(16).fill(0.2));
    aliveMask(x).dispose();
    const before = tf.memory().numTensors;
    aliveMask(x, { channel: 1, threshold: 0.5 }).dispose();
    expect(tf.memory().numTensors).toBe(before);
    x.dispose();
  });

  it('rejects bad input', () => {
    const x = withAlpha(new Array(16).fill(0));
    const x3 = tf.ones([4, 4, 4]);
    const xs = tf.ones([1, 4, 4, 3]);
    expect(() => aliveMask(x3 as tf.Tensor4D)).toThrowError(/Error in aliveMask: state must be rank 4.*got rank 3/);
    expect(() => aliveMask(xs as tf.Tensor4D)).toThrowError(/Error in aliveMask: options.channel must be an integer in \[0, 2\], but got 3/);
    expect(() => aliveMask(x, { channel: -1 })).toThrowError(/Error in aliveMask: options.channel must be an integer in \[0, 3\], but got -1/);
    expect(() => aliveMask(x, { threshold: NaN })).toThrowError(/Error in aliveMask: options.threshold must be a finite number, but got NaN/);
    expect(() => aliveMask(x, 3 as unknown as object)).toThrowError(/Error in aliveMask: options must be an object, but got 3/);
    tf.dispose([x, x3, xs]);
  });
});
