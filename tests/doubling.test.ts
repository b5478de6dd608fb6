import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
// tfjs-core registers its gradients when tfjs-layers loads (the package entry imports it);
// these tests load src/core alone, so they import it themselves.
import '@tensorflow/tfjs-layers';
import { BACKENDS, expectClose, useBackend } from './helpers/backends.js';
import { doubleCells } from '../src/core/doubling.js';

/** out[n, 2y + i, 2x + j, k] = x[n, y, x, k]. */
function doubleRef(x: number[], [b, h, w, c]: number[]): number[] {
  const out: number[] = [];
  for (let n = 0; n < b!; n++) for (let y = 0; y < 2 * h!; y++) for (let xx = 0; xx < 2 * w!; xx++) {
    for (let k = 0; k < c!; k++) out.push(x[((n * h! + (y >> 1)) * w! + (xx >> 1)) * c! + k]!);
  }
  return out;
}

/** Sum of dy over each 2x2 block. */
function blockSumRef(dy: number[], [b, h, w, c]: number[]): number[] {
  const out = new Array<number>(b! * h! * w! * c!).fill(0);
  for (let n = 0; n < b!; n++) for (let y = 0; y < 2 * h!; y++) for (let xx = 0; xx < 2 * w!; xx++) {
    for (let k = 0; k < c!; k++) {
      out[((n * h! + (y >> 1)) * w! + (xx >> 1)) * c! + k]! += dy[((n * 2 * h! + y) * 2 * w! + xx) * c! + k]!;
    }
  }
  return out;
}

const arange = (n: number) => Array.from({ length: n }, (_, i) => i);

describe.each(BACKENDS)('doubleCells on %s', (name) => {
  beforeAll(() => useBackend(name));

  it('copies each cell into a 2x2 block (golden)', () => {
    const x = tf.tensor4d([1, 2, 3, 4], [1, 2, 2, 1]);
    const y = doubleCells(x);
    expect(y.shape).toEqual([1, 4, 4, 1]);
    expect(y.dtype).toBe('float32');
    expect(tf.squeeze(y).arraySync()).toEqual([
      [1, 1, 2, 2],
      [1, 1, 2, 2],
      [3, 3, 4, 4],
      [3, 3, 4, 4],
    ]);
    tf.dispose([x, y]);
  });

  it('handles batch 2, several channels and a non-square grid', () => {
    const shape = [2, 2, 3, 3];
    const xs = arange(36).map((v) => v * 0.5 - 3);
    const x = tf.tensor4d(xs, shape as [number, number, number, number]);
    const y = doubleCells(x);
    expect(y.shape).toEqual([2, 4, 6, 3]);
    expect(Array.from(y.dataSync())).toEqual(doubleRef(xs, shape));
    tf.dispose([x, y]);
  });

  it('doubles a 1x1 grid and chains (2 -> 4 -> 8)', () => {
    const x = tf.tensor4d([5, -1], [1, 1, 1, 2]);
    const y = doubleCells(x);
    expect(Array.from(y.dataSync())).toEqual([5, -1, 5, -1, 5, -1, 5, -1]);
    const s = tf.tensor4d(arange(8), [2, 2, 1, 2]);
    const s4 = doubleCells(doubleCells(s));
    expect(s4.shape).toEqual([2, 8, 4, 2]);
    expect(Array.from(s4.dataSync())).toEqual(doubleRef(doubleRef(arange(8), [2, 2, 1, 2]), [2, 4, 2, 2]));
    tf.dispose([x, y, s, s4]);
  });

  it('has the block-sum gradient at batch 2 (hand values)', () => {
    const x = tf.zeros([2, 1, 2, 1]) as tf.Tensor4D;
    const dy = tf.tensor4d(arange(16), [2, 2, 4, 1]);
    const g = tf.grad((s: tf.Tensor) => tf.sum(tf.mul(doubleCells(s as tf.Tensor4D), dy)))(x);
    // batch 0: rows [0 1 2 3], [4 5 6 7] -> 0+1+4+5, 2+3+6+7; batch 1: rows [8..11], [12..15].
    expect(Array.from(g.dataSync())).toEqual([10, 18, 42, 50]);
    tf.dispose([x, dy, g]);
  });

  it('has the block-sum gradient at batch 3 with several channels', () => {
    const shape: [number, number, number, number] = [3, 2, 3, 2];
    const n = 3 * 4 * 6 * 2;
    const x = tf.ones(shape) as tf.Tensor4D;
    const dys = arange(n).map((v) => (v % 7) - 2.5);
    const dy = tf.tensor4d(dys, [3, 4, 6, 2]);
    const g = tf.grad((s: tf.Tensor) => tf.sum(tf.mul(doubleCells(s as tf.Tensor4D), dy)))(x);
    expect(g.shape).toEqual(shape);
    expectClose(g.dataSync(), blockSumRef(dys, shape));
    // The gradient of sum(doubleCells(x)) is 4 everywhere.
    const g4 = tf.grad((s: tf.Tensor) => tf.sum(doubleCells(s as tf.Tensor4D)))(x);
    expect(Array.from(g4.dataSync())).toEqual(new Array(12 * 3).fill(4));
    tf.dispose([x, dy, g, g4]);
  });

  it('does not leak', () => {
    const x = tf.ones([2, 2, 2, 3]) as tf.Tensor4D;
    doubleCells(x).dispose();
    const before = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) doubleCells(x).dispose();
    tf.grad((s: tf.Tensor) => tf.sum(doubleCells(s as tf.Tensor4D)))(x).dispose();
    expect(tf.memory().numTensors).toBe(before);
    x.dispose();
  });

  it('rejects bad input', () => {
    const x3 = tf.zeros([2, 2, 1]);
    const xi = tf.zeros([1, 2, 2, 1], 'int32');
    expect(() => doubleCells(x3 as tf.Tensor4D)).toThrowError(/Error in doubleCells: state must be rank 4 \[batch, height, width, channels\], but got rank 3/);
    expect(() => doubleCells(xi as tf.Tensor4D)).toThrowError(/Error in doubleCells: state must be float32, but got int32/);
    expect(() => doubleCells(null as unknown as tf.Tensor4D)).toThrowError(/Error in doubleCells: state must be a tf.Tensor, but got null/);
    const d = tf.zeros([1, 1, 1, 1]);
    d.dispose();
    expect(() => doubleCells(d as tf.Tensor4D)).toThrowError(/Error in doubleCells: state must be a live tensor/);
    tf.dispose([x3, xi]);
  });
});
