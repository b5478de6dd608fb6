import * as tf from '@tensorflow/tfjs-core';
import { VncaError, assertState, describe } from './errors.js';
import { identityKernel, sobelXKernel, sobelYKernel } from './kernels.js';

const FN = 'perceive';

/**
 * Checks the kernel list and returns the common kernel size. @internal
 */
function checkKernels(kernels: unknown): number {
  if (!Array.isArray(kernels) || kernels.length === 0) {
    throw new VncaError(FN, 'kernels', `must be a non-empty array of square 2D number arrays, but got ${describe(kernels)}.`);
  }
  let size = -1;
  kernels.forEach((kernel: unknown, n: number) => {
    const arg = `kernels[${n}]`;
    if (!Array.isArray(kernel) || kernel.length === 0) {
      throw new VncaError(FN, arg, `must be a non-empty 2D number array, but got ${describe(kernel)}.`);
    }
    const s = kernel.length;
    if (s % 2 !== 1) throw new VncaError(FN, arg, `must have an odd size, but got ${s} rows.`);
    kernel.forEach((row: unknown, i: number) => {
      if (!Array.isArray(row) || row.length !== s) {
        throw new VncaError(FN, arg, `must be square (${s}x${s}), but row ${i} is ${describe(row)}.`);
      }
      row.forEach((v: unknown, j: number) => {
        if (typeof v !== 'number' || !Number.isFinite(v)) {
          throw new VncaError(FN, arg, `must hold finite numbers, but entry [${i}][${j}] is ${describe(v)}.`);
        }
      });
    });
    if (size === -1) size = s;
    else if (s !== size) {
      throw new VncaError(FN, arg, `must have the same size as kernels[0] (${size}x${size}), but got ${s}x${s}.`);
    }
  });
  return size;
}

/**
 * Applies fixed perception kernels to every channel of every cell (a depthwise
 * convolution with the same kernels for every channel), with zero padding so the grid
 * keeps its size.
 *
 * The output is grouped by kernel: channels `[0, c)` are `kernels[0]` applied to
 * channels `0..c-1`, channels `[c, 2c)` are `kernels[1]` applied to them, and so on.
 * With the default kernels that is `[state, gradX, gradY]`, the perception of the
 * Growing NCA (Mordvintsev et al., 2020). Kernels are applied as cross-correlations,
 * row = y and column = x (see {@link sobelXKernel}).
 *
 * Differentiable with respect to `state` on every backend: it is computed with a plain
 * `conv2d` (channels folded into the batch), whose input gradient exists on cpu, wasm
 * and webgl, instead of a depthwise convolution (tfjs-backend-wasm 4.22 lacks the
 * depthwise input gradient).
 *
 * @category Perception
 * @param state - Cell states, float32 `[batch, height, width, channels]`.
 * @param kernels - Non-empty list of square kernels, all of the same odd size
 *   (default `[identityKernel(), sobelXKernel(), sobelYKernel()]`).
 * @returns Perception vectors, float32 `[batch, height, width, channels * kernels.length]`.
 * @example
 * ```ts
 * const p = perceive(state); // [b, h, w, 3c] = [state, gradX, gradY]
 * ```
 */
export function perceive(
  state: tf.Tensor4D,
  kernels: number[][][] = [identityKernel(), sobelXKernel(), sobelYKernel()],
): tf.Tensor4D {
  assertState(state, FN);
  const size = checkKernels(kernels);
  const [b, h, w, c] = state.shape;
  const k = kernels.length;
  // filter[i][j][0][n] = kernels[n][i][j]
  const values = new Float32Array(size * size * k);
  for (let i = 0; i < size; i++) {
    for (let j = 0; j < size; j++) {
      for (let n = 0; n < k; n++) values[(i * size + j) * k + n] = kernels[n]![i]![j]!;
    }
  }
  return tf.tidy(() => {
    const filter = tf.tensor4d(values, [size, size, 1, k]);
    // [b, h, w, c] -> [b, c, h, w] -> [b*c, h, w, 1]: every channel is its own image.
    const planes = tf.reshape(tf.transpose(state, [0, 3, 1, 2]), [b * c, h, w, 1]);
    const filtered = tf.conv2d(planes as tf.Tensor4D, filter, 1, 'same'); // [b*c, h, w, k]
    // [b*c, h, w, k] -> [b, c, h*w, k] -> [b, h*w, k, c] -> [b, h, w, k*c] (kernel-major).
    const grouped = tf.transpose(tf.reshape(filtered, [b, c, h * w, k]), [0, 2, 3, 1]);
    return tf.reshape(grouped, [b, h, w, k * c]) as tf.Tensor4D;
  });
}
