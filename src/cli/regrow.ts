/**
 * Regeneration as pictures, shared by `vnca regrow` and examples/04-regenerate.ts: grow
 * digits, zero a centred square or circle of their cell states, and let the update rule run
 * on, keeping a rendered frame of every step.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { DamageRegion, VNCA } from '../index.js';
import { tfSeed } from '../core/random.js';

/** Options of {@link regrowFrames}. */
export interface RegrowOptions {
  /** Digits to grow and damage. */
  n: number;
  /** Held-out images `[n, size, size, 1]` to grow from their posterior mean; new samples when absent. */
  images?: tf.Tensor4D;
  /** Shape of the damaged region, centred in the grid. */
  shape: 'square' | 'circle';
  /** Side of the square or diameter of the circle, in cells: 1 to the grid's side. */
  size: number;
  /** Update steps after the damage (default: `model.regenerate`'s: `stepsPerDoubling` for a doubling model, `stepsRange[0]` for a fixed one). */
  steps?: number;
  /** Seed of z and of the cell masks. */
  seed: number;
}

/** What {@link regrowFrames} returns; the caller owns the tensors. */
export interface Regrowth {
  /** Rendered images `[n, H, W, 1]`: the grown digits, the damaged ones, then one after each regrowth step. */
  frames: tf.Tensor4D[];
  /** Regrowth steps run. */
  steps: number;
  /** The region that was zeroed. */
  region: DamageRegion;
}

/**
 * Grows `n` digits, damages a centred region of every cell state and runs the update rule
 * `steps` more times (`model.regenerate`).
 *
 * @throws RangeError when `size` does not fit in the model's grid.
 */
export function regrowFrames(model: VNCA, o: RegrowOptions): Regrowth {
  const { zSize, imageSize } = model.config;
  if (!Number.isInteger(o.size) || o.size < 1 || o.size > imageSize) {
    throw new RangeError(`--size must be an integer from 1 to ${imageSize} (the model's grid is ${imageSize}x${imageSize}), but got ${o.size}.`);
  }
  const mid = imageSize / 2;
  const region: DamageRegion = o.shape === 'square'
    ? { shape: 'square', top: Math.round(mid - o.size / 2), left: Math.round(mid - o.size / 2), size: o.size }
    : { shape: 'circle', centerY: mid - 0.5, centerX: mid - 0.5, radius: o.size / 2 };
  const z = o.images
    ? tf.tidy(() => { const q = model.encode(o.images!); const m = q.mean.clone(); q.dispose(); return m as tf.Tensor2D; })
    : tf.randomNormal([o.n, zSize], 0, 1, 'float32', tfSeed(o.seed)) as tf.Tensor2D;
  const grown = model.decode(z, { seed: o.seed });
  // Without o.steps, regenerate runs the model's own default (its growth plan's regrowth steps).
  const { state, states } = model.regenerate(grown, region, { steps: o.steps, returnStates: true, seed: o.seed });
  const steps = states.length - 1;
  // states[0] is the damaged state, states[i] the state after i steps of regrowth.
  const frames = [model.render(grown), ...states.map((s) => model.render(s))];
  tf.dispose([z, grown, state, ...states]);
  return { frames, steps, region };
}
