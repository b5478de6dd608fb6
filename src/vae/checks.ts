/**
 * Argument checks of the {@link VNCA}'s methods, against its config; errors name the method.
 * @module
 */
import * as tf from '@tensorflow/tfjs-core';
import { assertRank, assertState, assertTensor, VncaError } from '../core/errors.js';
import type { VNCAConfig } from './config.js';

/** `x` is a batch of images of the model's shape `[batch, imageSize, imageSize, imageChannels]`. */
export function checkImages(c: VNCAConfig, x: unknown, fn: string, arg = 'x'): asserts x is tf.Tensor4D {
  assertState(x, fn, arg);
  const [, h, w, ch] = x.shape;
  if (h !== c.imageSize || w !== c.imageSize || ch !== c.imageChannels) {
    throw new VncaError(fn, arg, `must have shape [batch, ${c.imageSize}, ${c.imageSize}, ${c.imageChannels}], but got [${x.shape.join(', ')}].`);
  }
  if (x.shape[0] === 0) throw new VncaError(fn, arg, 'must hold at least one image, but got a batch of 0.');
}


/** `z` is a batch of latents `[batch, zSize]`. */
export function checkLatents(c: VNCAConfig, z: unknown, fn: string): asserts z is tf.Tensor2D {
  assertRank(z, 2, fn, 'z', '[batch, zSize]');
  if (z.shape[1] !== c.zSize) {
    throw new VncaError(fn, 'z', `must have shape [batch, ${c.zSize}], but got [${z.shape.join(', ')}].`);
  }
  if (z.shape[0] === 0) throw new VncaError(fn, 'z', 'must hold at least one latent, but got a batch of 0.');
}

/** `state` is a batch of cell states `[batch, h, w, zSize]` of the model, not empty. */
export function checkStates(c: VNCAConfig, state: unknown, fn: string, arg = 'state'): asserts state is tf.Tensor4D {
  assertState(state, fn, arg);
  if (state.shape[3] !== c.zSize) throw new VncaError(fn, arg, `must have ${c.zSize} channels, but got ${state.shape[3]}.`);
  if (state.shape[0] === 0) throw new VncaError(fn, arg, 'must hold at least one state, but got a batch of 0.');
}


/** `x` (`[1, H, W, C]` or `[H, W, C]`) as a checked batch of one image; the caller disposes it. */
export function asSingleImage(c: VNCAConfig, x: tf.Tensor, fn: string, arg: string): tf.Tensor4D {
  assertTensor(x, fn, arg);
  const x4 = (x.rank === 3 ? tf.expandDims(x, 0) : tf.clone(x)) as tf.Tensor4D;
  try {
    checkImages(c, x4, fn, arg);
    if (x4.shape[0] !== 1) throw new VncaError(fn, arg, `must hold one image, but got a batch of ${x4.shape[0]}.`);
  } catch (e) {
    x4.dispose();
    throw e;
  }
  return x4;
}
