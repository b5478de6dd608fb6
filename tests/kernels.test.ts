import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
// tfjs-core registers its gradients when tfjs-layers loads (the package entry imports it);
// these tests load src/core alone, so they import it themselves.
import '@tensorflow/tfjs-layers';
import { BACKENDS, expectClose, useBackend } from './helpers/backends.js';
import { identityKernel, laplacianKernel, sobelXKernel, sobelYKernel } from '../src/core/kernels.js';
import { perceive } from '../src/core/perceive.js';

/** Naive zero-padded cross-correlation of every channel with every kernel, kernel-major output. */
function perceiveRef(x: number[], shape: number[], kernels: number[][][]): number[] {
  const [b, h, w, c] = shape as [number, number, number, number];
  const k = kernels.length, s = kernels[0]!.length, r = (s - 1) / 2;
  const out = new Array<number>(b * h * w * k * c).fill(0);
  for (let n = 0; n < b; n++) for (let y = 0; y < h; y++) for (let xx = 0; xx < w; xx++) {
    for (let q = 0; q < k; q++) for (let ch = 0; ch < c; ch++) {
      let acc = 0;
      for (let i = 0; i < s; i++) for (let j = 0; j < s; j++) {
        const yy = y + i - r, xs = xx + j - r;
        if (yy < 0 || yy >= h || xs < 0 || xs >= w) continue;
        acc += kernels[q]![i]![j]! * x[((n * h + yy) * w + xs) * c + ch]!;
      }
      out[((n * h + y) * w + xx) * k * c + q * c + ch] = acc;
    }
  }
  return out;
}

/** Adjoint of perceiveRef: the gradient of sum(dy * perceive(x)) with respect to x. */
function perceiveGradRef(dy: number[], shape: number[], kernels: number[][][]): number[] {
  const [b, h, w, c] = shape as [number, number, number, number];
  const k = kernels.length, s = kernels[0]!.length, r = (s - 1) / 2;
  const g = new Array<number>(b * h * w * c).fill(0);
  for (let n = 0; n < b; n++) for (let y = 0; y < h; y++) for (let xx = 0; xx < w; xx++) {
    for (let q = 0; q < k; q++) for (let ch = 0; ch < c; ch++) {
      const d = dy[((n * h + y) * w + xx) * k * c + q * c + ch]!;
      for (let i = 0; i < s; i++) for (let j = 0; j < s; j++) {
        const yy = y + i - r, xs = xx + j - r;
        if (yy < 0 || yy >= h || xs < 0 || xs >= w) continue;
        g[((n * h + yy) * w + xs) * c + ch]! += kernels[q]![i]![j]! * d;
      }
    }
  }
  return g;
}

/** Deterministic pseudo-random values in [-1, 1). */
function values(n: number, seed = 1): number[] {
  let s = seed;
  return Array.from({ length: n }, () => {
    s = (s * 1103515245 + 12345) % 2147483648;
    return (s / 2147483648) * 2 - 1;
  });
}

describe('kernels', () => {
  it('are the literal arrays', () => {
    expect(identityKernel()).toEqual([[0, 0, 0], [0, 1, 0], [0, 0, 0]]);
    expect(sobelXKernel()).toEqual([[-0.125, 0, 0.125], [-0.25, 0, 0.25], [-0.125, 0, 0.125]]);
    expect(sobelYKernel()).toEqual([[-0.125, -0.25, -0.125], [0, 0, 0], [0.125, 0.25, 0.125]]);
    expect(laplacianKernel()).toEqual([[0, 1, 0], [1, -4, 1], [0, 1, 0]]);
  });

  it('sobelY is the transpose of sobelX', () => {
    const sx = sobelXKernel(), sy = sobelYKernel();
    for (let i = 0; i < 3; i++) for (let j = 0; j < 3; j++) expect(sy[i]![j]).toBe(sx[j]![i]);
  });

  it('return fresh arrays', () => {
    const a = sobelXKernel();
    a[0]![0] = 42;
    expect(sobelXKernel()[0]![0]).toBe(-0.125);
  });
});

describe.each(BACKENDS)('perceive on %s', (name) => {
  beforeAll(() => useBackend(name));

  const grid = [1, 2, 3, 4, 5, 6, 7, 8, 9]; // [[1,2,3],[4,5,6],[7,8,9]]

  it('matches hand-worked values on a 3x3 grid with the default kernels', () => {
    const x = tf.tensor4d(grid, [1, 3, 3, 1]);
    const p = perceive(x);
    expect(p.shape).toEqual([1, 3, 3, 3]);
    // Worked by hand with zero padding: gradX = sobelX/8 correlated, gradY = its transpose.
    const gx = [9, 6, -9, 20, 8, -20, 21, 6, -21].map((v) => v / 8);
    const gy = [13, 20, 17, 18, 24, 18, -13, -20, -17].map((v) => v / 8);
    const expected = grid.flatMap((v, i) => [v, gx[i]!, gy[i]!]);
    expectClose(p.dataSync(), expected);
    tf.dispose([x, p]);
  });

  it('applies the laplacian', () => {
    const x = tf.tensor4d(grid, [1, 3, 3, 1]);
    const p = perceive(x, [laplacianKernel()]);
    // e.g. centre: 2+4+6+8 - 4*5 = 0; corner (0,0): 2+4 - 4 = 2.
    expectClose(p.dataSync(), [2, 1, -4, -3, 0, -7, -16, -11, -22]);
    tf.dispose([x, p]);
  });

  it('groups the output by kernel over several channels and batch elements', () => {
    const shape = [2, 3, 4, 3];
    const xs = values(2 * 3 * 4 * 3, 7);
    const kernels = [identityKernel(), sobelXKernel(), sobelYKernel(), laplacianKernel()];
    const x = tf.tensor4d(xs, shape as [number, number, number, number]);
    const p = perceive(x, kernels);
    expect(p.shape).toEqual([2, 3, 4, 12]);
    expectClose(p.dataSync(), perceiveRef(xs, shape, kernels), 1e-4, 1e-5);
    // The identity block is the state itself.
    const id = tf.slice(p, [0, 0, 0, 0], [2, 3, 4, 3]);
    expectClose(id.dataSync(), xs);
    tf.dispose([x, p, id]);
  });

  it('accepts 1x1 and 5x5 kernels', () => {
    const x = tf.tensor4d(grid, [1, 3, 3, 1]);
    const p1 = perceive(x, [[[2]]]);
    expectClose(p1.dataSync(), grid.map((v) => 2 * v));
    const k5 = Array.from({ length: 5 }, () => [1, 1, 1, 1, 1]);
    const p5 = perceive(x, [k5]);
    expectClose(p5.dataSync(), new Array(9).fill(45)); // every cell sees the whole grid
    tf.dispose([x, p1, p5]);
  });

  it('has the hand-worked gradient of sum(perceive(x))', () => {
    const x = tf.tensor4d(grid, [1, 3, 3, 1]);
    const only = (k: number[][]) => tf.grad((s: tf.Tensor) => tf.sum(perceive(s as tf.Tensor4D, [k])))(x);
    const gId = only(identityKernel());
    expectClose(gId.dataSync(), new Array(9).fill(1));
    // Border cells miss the taps that fall outside the grid.
    const gX = only(sobelXKernel());
    expectClose(gX.dataSync(), [-3, 0, 3, -4, 0, 4, -3, 0, 3].map((v) => v / 8));
    const gY = only(sobelYKernel());
    expectClose(gY.dataSync(), [-3, -4, -3, 0, 0, 0, 3, 4, 3].map((v) => v / 8));
    const gAll = tf.grad((s: tf.Tensor) => tf.sum(perceive(s as tf.Tensor4D)))(x);
    expectClose(gAll.dataSync(), [0.25, 0.5, 1, 0.5, 1, 1.5, 1, 1.5, 1.75]);
    tf.dispose([x, gId, gX, gY, gAll]);
  });

  it('has the right gradient for a weighted sum at batch 2 with several channels', () => {
    const shape = [2, 3, 3, 2];
    const xs = values(36, 3);
    const kernels = [identityKernel(), sobelXKernel(), sobelYKernel()];
    const dys = values(2 * 3 * 3 * 6, 11);
    const x = tf.tensor4d(xs, shape as [number, number, number, number]);
    const dy = tf.tensor4d(dys, [2, 3, 3, 6]);
    const g = tf.grad((s: tf.Tensor) => tf.sum(tf.mul(perceive(s as tf.Tensor4D, kernels), dy)))(x);
    expectClose(g.dataSync(), perceiveGradRef(dys, shape, kernels), 1e-4, 1e-5);
    tf.dispose([x, dy, g]);
  });

  it('does not leak', () => {
    const x = tf.tensor4d(values(2 * 3 * 3 * 2), [2, 3, 3, 2]);
    perceive(x).dispose();
    const before = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) perceive(x).dispose();
    const g = tf.grad((s: tf.Tensor) => tf.sum(perceive(s as tf.Tensor4D)))(x);
    g.dispose();
    expect(tf.memory().numTensors).toBe(before);
    x.dispose();
  });

  it('rejects bad input', () => {
    const x3 = tf.zeros([3, 3, 1]);
    const xi = tf.zeros([1, 3, 3, 1], 'int32');
    const x = tf.zeros([1, 3, 3, 1]);
    expect(() => perceive(x3 as tf.Tensor4D)).toThrowError(/Error in perceive: state must be rank 4.*got rank 3/);
    expect(() => perceive(xi as tf.Tensor4D)).toThrowError(/Error in perceive: state must be float32, but got int32/);
    expect(() => perceive([1, 2] as unknown as tf.Tensor4D)).toThrowError(/Error in perceive: state must be a tf.Tensor/);
    expect(() => perceive(x as tf.Tensor4D, [])).toThrowError(/Error in perceive: kernels must be a non-empty array/);
    expect(() => perceive(x as tf.Tensor4D, [[[1, 0], [0, 1]]])).toThrowError(/kernels\[0\] must have an odd size, but got 2/);
    expect(() => perceive(x as tf.Tensor4D, [[[0, 0, 0], [0, 1], [0, 0, 0]]])).toThrowError(/kernels\[0\] must be square \(3x3\)/);
    expect(() => perceive(x as tf.Tensor4D, [identityKernel(), [[1]]])).toThrowError(/kernels\[1\] must have the same size as kernels\[0\] \(3x3\), but got 1x1/);
    expect(() => perceive(x as tf.Tensor4D, [[[0, 0, 0], [0, NaN, 0], [0, 0, 0]]])).toThrowError(/kernels\[0\] must hold finite numbers, but entry \[1\]\[1\] is NaN/);
    expect(() => perceive(x as tf.Tensor4D, ['a'] as unknown as number[][][])).toThrowError(/kernels\[0\] must be a non-empty 2D number array/);
    tf.dispose([x3, xi, x]);
  });
});
