import * as tf from '@tensorflow/tfjs-core';
import { assertState } from './errors.js';

/**
 * Copies every cell into a 2x2 block: `[b, h, w, c]` -> `[b, 2h, 2w, c]`. Nearest-neighbour
 * resizing by exactly 2 with `alignCorners = false` and `halfPixelCenters = false` reads
 * source cell `floor(dst / 2)`, an exact copy (and faster on wasm and cpu than tiling). @internal
 */
function duplicate(x: tf.Tensor4D): tf.Tensor4D {
  const [, h, w] = x.shape;
  return tf.image.resizeNearestNeighbor(x, [2 * h, 2 * w], false, false);
}

/**
 * Sums every 2x2 block: `[b, 2h, 2w, c]` -> `[b, h, w, c]` (the adjoint of
 * {@link duplicate}): the 2x2 average times 4, exact in float32 up to summation order. @internal
 */
function sumBlocks(dy: tf.Tensor4D): tf.Tensor4D {
  return tf.mul(tf.avgPool(dy, 2, 2, 'valid'), 4);
}

/** `duplicate` with `sumBlocks` as its gradient (built per call: no module side effects). @internal */
function doubleWithGrad(x: tf.Tensor4D): tf.Tensor4D {
  const f = tf.customGrad((input) => ({
    value: duplicate(input as tf.Tensor4D),
    gradFunc: (dy: tf.Tensor) => sumBlocks(dy as tf.Tensor4D),
  }));
  return f(x) as tf.Tensor4D;
}

/**
 * Cell division of the doubling VNCA: every cell is copied into a 2x2 block, so the
 * grid doubles in height and width (nearest-neighbour upsampling by 2):
 * `out[n, 2y + i, 2x + j, k] = state[n, y, x, k]` for `i, j` in {0, 1}.
 *
 * Its gradient (the sum of the upstream gradient over each 2x2 block) is written by
 * hand with `tf.customGrad`, so it is exact on every backend and batch size (it does
 * not rely on `ResizeNearestNeighborGrad`, wrong on tfjs-backend-cpu 4.22 for batch > 1).
 *
 * @category Growth
 * @param state - Cell states, float32 `[batch, height, width, channels]`.
 * @returns The divided cells, float32 `[batch, 2 * height, 2 * width, channels]`.
 * @example
 * ```ts
 * doubleCells(tf.tensor4d([1, 2, 3, 4], [1, 2, 2, 1]));
 * // [[1, 1, 2, 2], [1, 1, 2, 2], [3, 3, 4, 4], [3, 3, 4, 4]] as [1, 4, 4, 1]
 * ```
 */
export function doubleCells(state: tf.Tensor4D): tf.Tensor4D {
  assertState(state, 'doubleCells');
  return tf.tidy(() => doubleWithGrad(state));
}
