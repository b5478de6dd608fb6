/**
 * Checks at the public boundary of training: the options of one step and the training
 * images, before any work is done.
 * @module
 */
import * as tf from '@tensorflow/tfjs-core';
import { assertInt, assertRank, describe, VncaError } from '../core/errors.js';
import { checkImages } from './checks.js';
import type { VNCAConfig } from './config.js';
import type { GradientOptions } from './training.js';
import { describeLimit, formatBytes, memoryHeadroom, trainStepBytes } from './memory.js';

/**
 * Checks the {@link GradientOptions} of one step of a batch of `batch` images: `seed` and
 * `steps` integers, `noise` float32 `[batch, zSize]` and finite. @internal
 */
export function checkGradientOptions(options: GradientOptions, batch: number, zSize: number, fn: string): void {
  if (typeof options !== 'object' || options === null) {
    throw new VncaError(fn, 'options', `must be an object, but got ${describe(options)}.`);
  }
  if (options.seed !== undefined) assertInt(options.seed, fn, 'options.seed');
  if (options.steps !== undefined) assertInt(options.steps, fn, 'options.steps', 0);
  if (options.noise !== undefined) {
    assertRank(options.noise, 2, fn, 'options.noise', '[batch, zSize]');
    const [nb, nz] = options.noise.shape;
    if (options.noise.dtype !== 'float32' || nb !== batch || nz !== zSize) {
      throw new VncaError(fn, 'options.noise', `must be a float32 tensor of shape [${batch}, ${zSize}], but got ${describe(options.noise)}.`);
    }
    const sum = tf.tidy(() => tf.sum(options.noise!));
    const value = sum.dataSync()[0]!;
    sum.dispose();
    // The sum of a tensor is NaN or ±Infinity when any value is (for noise of normal size).
    if (!Number.isFinite(value)) throw new VncaError(fn, 'options.noise', `must be finite, but it holds NaN or ±Infinity (its sum is ${value}).`);
  }
}

/**
 * Training images are checked at the public boundary before any work: at least one image, and
 * every value finite and in [0, 1] (binary for `'bernoulli'`, k/255 for `'dmol'`). One read of
 * three reductions (min, max, sum: sum catches NaN where a backend's min/max skips it), no
 * copy of the batch. @internal
 */
export function checkTrainingImages(x: tf.Tensor, fn: string, arg: string): void {
  if (x.shape[0] === 0) throw new VncaError(fn, arg, 'must hold at least one image, but got a batch of 0.');
  const stats = tf.tidy(() => tf.stack([tf.min(x), tf.max(x), tf.sum(x)]));
  const [lo, hi, sum] = stats.dataSync() as Float32Array;
  stats.dispose();
  if (lo! < 0 || hi! > 1) {
    throw new VncaError(fn, arg, `must hold values in [0, 1], but its values range over [${lo}, ${hi}].`);
  }
  if (!Number.isFinite(sum!) || Number.isNaN(lo!) || Number.isNaN(hi!)) {
    throw new VncaError(fn, arg, 'must hold finite values in [0, 1], but it holds NaN.');
  }
}

/**
 * Refuses, before anything is allocated, a training step of `batch` images whose estimated
 * memory (see memory.ts) exceeds what the backend has left, where the backend's memory is
 * known to be limited (wasm: 4 GiB); running it would kill the backend. `steps`: a fixed
 * model's rollout length (default: the longest of `stepsRange`). @internal
 */
export function checkTrainingMemory(c: VNCAConfig, batch: number, steps: number | undefined, fn: string): void {
  const room = memoryHeadroom();
  if (room === Infinity) return;
  const { perSample, fixed, checkpointed } = trainStepBytes(c, steps, batch);
  const need = batch * perSample + fixed;
  if (need <= room) return;
  const most = Math.max(0, Math.floor((room - fixed) / perSample));
  const kept = checkpointed ? 'keeps about' : 'keeps every step\'s activations for the backward pass, about';
  const fix = checkpointed
    ? 'Use a smaller batch, or split it (computeGradients on parts, or ParallelVNCA from vnca/node).'
    : `Use checkpoint: ${c.checkpoint === 'auto' ? 'true' : "'auto' or true"} (about ${formatBytes(trainStepBytes({ ...c, checkpoint: true }, steps).perSample)} per image), or a smaller batch.`;
  throw new VncaError(fn, 'batch', `must hold at most ${most} images here, but got ${batch}: with checkpoint ${JSON.stringify(c.checkpoint)} a training step ${kept} ${formatBytes(perSample)} per image (${formatBytes(need)} in all), and ${describeLimit()} has ${formatBytes(room)} free. ${fix}`);
}

/**
 * The checks of {@link VNCA.computeGradients} and {@link VNCA.trainStep}: the batch's shape,
 * its values ({@link checkTrainingImages}), the step's options and its memory
 * ({@link checkTrainingMemory}). @internal
 */
export function checkTrainingBatch(c: VNCAConfig, batch: tf.Tensor4D, options: GradientOptions, fn: string): void {
  checkImages(c, batch, fn, 'batch');
  checkTrainingImages(batch, fn, 'batch');
  checkGradientOptions(options, batch.shape[0], c.zSize, fn);
  checkTrainingMemory(c, batch.shape[0], options.steps, fn);
}
