/**
 * Inpainting with a {@link VNCA}, as the paper's authors suggest: encode the image (its
 * unknown pixels zeroed), grow it, damage the cells of the unknown region and let the
 * automaton grow new content there while the known cells are held at their grown values.
 * @module
 */
import * as tf from '@tensorflow/tfjs-core';
import { assertInt, assertTensor, VncaError } from '../core/errors.js';
import { runSteps } from '../growth/grow.js';
import type { UpdateRule } from '../layers/UpdateRule.js';
import { checkImages } from './checks.js';
import type { DiagonalGaussian } from './distributions.js';
import type { GrowthPlan } from './growthPlan.js';
import type { VNCAConfig } from './config.js';

/** Options of {@link VNCA.inpaint}. @category VAE */
export interface InpaintOptions {
  /** Steps of regrowth. Default `2 * stepsPerDoubling`, or `stepsRange[0]` for a fixed model. */
  steps?: number;
  /** Seed of the decoding and of the update masks. */
  seed?: number;
  /** Zero the region's cells before regrowing them. Default true. */
  damage?: boolean;
}

/** What {@link inpaint} needs of its model. @internal */
export interface InpaintingModel {
  readonly config: VNCAConfig;
  readonly rule: UpdateRule;
  readonly growthPlan: GrowthPlan;
  encode(x: tf.Tensor4D): DiagonalGaussian;
  decode(z: tf.Tensor2D, options: { seed?: number }): tf.Tensor4D;
  render(state: tf.Tensor4D): tf.Tensor4D;
}

/** {@link VNCA.inpaint}; errors name `fn`. @internal */
export function inpaint(model: InpaintingModel, x: tf.Tensor4D, mask: tf.Tensor, options: InpaintOptions, fn: string): tf.Tensor4D {
checkImages(model.config, x, fn);
assertTensor(mask, fn, 'mask');
const c = model.config;
const [b, h, w] = x.shape;
const okShape = (mask.rank === 2 && mask.shape[0] === h && mask.shape[1] === w)
  || (mask.rank === 3 && mask.shape[0] === b && mask.shape[1] === h && mask.shape[2] === w)
  || (mask.rank === 4 && mask.shape[0] === b && mask.shape[1] === h && mask.shape[2] === w && mask.shape[3] === 1);
if (!okShape) {
  throw new VncaError(fn, 'mask', `must have shape [${h}, ${w}], [${b}, ${h}, ${w}] or [${b}, ${h}, ${w}, 1], but got [${mask.shape.join(', ')}].`);
}
const steps = options.steps ?? model.growthPlan.inpaintSteps(c);
assertInt(steps, fn, 'options.steps', 0);
const m = tf.tidy(() => tf.broadcastTo(tf.reshape(tf.cast(mask, 'float32'), [mask.rank === 2 ? 1 : b, h, w, 1]), [b, h, w, 1]) as tf.Tensor4D);
try {
  const known = tf.tidy(() => tf.mul(x, tf.sub(1, m)) as tf.Tensor4D);
  const q = model.encode(known);
  known.dispose();
  let grown: tf.Tensor4D;
  try {
    grown = model.decode(q.mean as tf.Tensor2D, { seed: options.seed });
  } finally {
    q.dispose();
  }
  const keep = tf.tidy(() => tf.sub(1, m));
  let cur = options.damage === false ? tf.clone(grown) : tf.tidy(() => tf.mul(grown, keep) as tf.Tensor4D);
  for (let i = 0; i < steps; i++) {
    const next = tf.tidy(() => {
      const stepped = runSteps(model.rule, cur, {
        steps: 1, pUpdate: c.pUpdate, seed: options.seed === undefined ? undefined : options.seed + i,
      }).state;
      // Known cells are held at their grown values; only the region evolves.
      return tf.add(tf.mul(stepped, m), tf.mul(grown, keep)) as tf.Tensor4D;
    });
    cur.dispose();
    cur = next;
  }
  const out = tf.tidy(() => tf.add(tf.mul(x, keep), tf.mul(model.render(cur), m)) as tf.Tensor4D);
  tf.dispose([cur, grown, keep]);
  return out;
} finally {
  m.dispose();
}
}
