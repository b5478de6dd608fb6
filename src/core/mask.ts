import * as tf from '@tensorflow/tfjs-core';
import { VncaError, assertInt, assertNumber, assertState, assertTensor, describe } from './errors.js';
import { tfSeed } from './random.js';

/**
 * Draws the stochastic cell-update mask: one Bernoulli(`pUpdate`) draw per cell,
 * shared by all of the cell's channels (the trailing dimension of size 1 broadcasts).
 *
 * With `pUpdate = 1` every cell updates (the doubling VNCA's setting); the Growing NCA
 * uses 0.5. Passing a `seed` makes the draw reproducible: the same seed and shape give
 * the same mask.
 *
 * @category Cell update
 * @param shape - `[batch, height, width]` of the grid, positive integers.
 * @param pUpdate - Probability that a cell updates, in [0, 1].
 * @param seed - Optional seed for `tf.randomUniform`.
 * @returns float32 `[batch, height, width, 1]` of 0 and 1 (1 = the cell updates).
 */
export function cellMask(shape: [number, number, number], pUpdate: number, seed?: number): tf.Tensor4D {
  const fn = 'cellMask';
  if (!Array.isArray(shape) || shape.length !== 3) {
    throw new VncaError(fn, 'shape', `must be [batch, height, width] (3 positive integers), but got ${describe(shape)}.`);
  }
  shape.forEach((d, i) => assertInt(d, fn, `shape[${i}]`, 1));
  assertNumber(pUpdate, fn, 'pUpdate', 0, 1);
  if (seed !== undefined) assertNumber(seed, fn, 'seed');
  const [b, h, w] = shape;
  if (pUpdate === 1) return tf.ones([b, h, w, 1]);
  if (pUpdate === 0) return tf.zeros([b, h, w, 1]);
  return tf.tidy(() => {
    const u = tf.randomUniform([b, h, w, 1], 0, 1, 'float32', tfSeed(seed));
    return tf.cast(tf.less(u, pUpdate), 'float32') as tf.Tensor4D;
  });
}

/**
 * The stochastic residual update of a cellular automaton: `state + mask * delta`.
 * No `1 / pUpdate` rescaling is applied (as in the Growing NCA and VNCA references).
 *
 * @category Cell update
 * @param state - Cell states, float32 `[batch, height, width, channels]`.
 * @param delta - Proposed update, float32, same shape as `state`.
 * @param mask - Optional float32 `[batch, height, width, 1]` mask (see {@link cellMask}),
 *   broadcast over channels. `null` or omitted: every cell updates (`state + delta`).
 * @returns The new states, float32 `[batch, height, width, channels]`.
 */
export function maskedUpdate(state: tf.Tensor4D, delta: tf.Tensor4D, mask?: tf.Tensor4D | null): tf.Tensor4D {
  const fn = 'maskedUpdate';
  assertState(state, fn, 'state');
  assertState(delta, fn, 'delta');
  const [b, h, w] = state.shape;
  if (!tf.util.arraysEqual(state.shape, delta.shape)) {
    throw new VncaError(fn, 'delta', `must have the shape of state [${state.shape.join(', ')}], but got [${delta.shape.join(', ')}].`);
  }
  if (mask === null || mask === undefined) return tf.add(state, delta);
  assertTensor(mask, fn, 'mask');
  if (mask.dtype !== 'float32') throw new VncaError(fn, 'mask', `must be float32, but got ${mask.dtype}.`);
  if (!tf.util.arraysEqual(mask.shape, [b, h, w, 1])) {
    throw new VncaError(fn, 'mask', `must have shape [${b}, ${h}, ${w}, 1] ([batch, height, width, 1] of state), but got [${mask.shape.join(', ')}].`);
  }
  return tf.tidy(() => tf.add(state, tf.mul(mask, delta)));
}
