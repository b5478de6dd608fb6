import * as tf from '@tensorflow/tfjs-core';
import { assertNumber, VncaError, describe } from '../core/errors.js';

/**
 * Scales a set of gradients so that their global L2 norm is at most `maxNorm`
 * (like PyTorch's `clip_grad_norm_`): g <- g * min(1, maxNorm / ||g||).
 *
 * @param grads Gradients by variable name (not disposed).
 * @param maxNorm The largest allowed global norm (> 0).
 * @returns `{ grads, norm }`: new gradient tensors (the caller owns them) and the global norm before clipping.
 * @category VAE
 */
export function clipByGlobalNorm(grads: tf.NamedTensorMap, maxNorm: number): { grads: tf.NamedTensorMap; norm: number } {
  const fn = 'clipByGlobalNorm';
  if (typeof grads !== 'object' || grads === null) throw new VncaError(fn, 'grads', `must be a name → tensor map, but got ${describe(grads)}.`);
  assertNumber(maxNorm, fn, 'maxNorm', 0, Infinity, { min: true });
  const norm = globalNorm(grads);
  const scale = norm > maxNorm ? maxNorm / norm : 1;
  const out: tf.NamedTensorMap = {};
  for (const [k, g] of Object.entries(grads)) out[k] = scale === 1 ? tf.clone(g) : tf.mul(g, scale);
  return { grads: out, norm };
}

/**
 * The global L2 norm of a set of gradients: sqrt of the sum of every element squared.
 *
 * @param grads Gradients by variable name.
 * @returns The norm as a number (0 for no gradients).
 * @category VAE
 */
export function globalNorm(grads: tf.NamedTensorMap): number {
  const values = Object.values(grads);
  if (values.length === 0) return 0;
  const norm = tf.tidy(() => tf.sqrt(tf.addN(values.map((g) => tf.sum(tf.square(g))))));
  const value = norm.dataSync()[0]!;
  norm.dispose();
  return value;
}
