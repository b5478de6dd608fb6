/**
 * Inpainting with a {@link VNCA}: the paper's authors' suggestion (encode the image with its
 * unknown pixels zeroed, grow it, damage the cells of the unknown region and let the automaton
 * grow new content there while the known cells are held at their grown values), followed by
 * rounds of iterated conditional completion, as is usual for VAEs: encode the completed image,
 * decode its posterior mean, take the region from that decode, repeat.
 * @module
 */
import * as tf from '@tensorflow/tfjs-core';
import { assertInt, assertTensor, describe, VncaError } from '../core/errors.js';
import { runSteps } from '../growth/grow.js';
import type { UpdateRule } from '../layers/UpdateRule.js';
import { checkImages } from './checks.js';
import type { DiagonalGaussian } from './distributions.js';
import type { GrowthPlan } from './growthPlan.js';
import type { VNCAConfig } from './config.js';

/** Options of {@link VNCA.inpaint}. @category VAE */
export interface InpaintOptions {
  /**
   * Steps of regrowth in the first round. Default `2 * stepsPerDoubling` for a doubling model;
   * 0 for a fixed (non-doubling) one, whose round 1 is then the posterior-mean decode itself
   * (measured with `measureInpainting`: the damage-trained fixed model's regrowth fills a hole
   * with blobs that later rounds turn into wrong shapes).
   */
  steps?: number;
  /** Seed of the decoding and of the update masks. */
  seed?: number;
  /** Zero the region's cells before the first round regrows them. Default: `steps > 0`. */
  damage?: boolean;
  /**
   * Rounds of completion, at least 1. Round 1 grows the region as described above; each
   * further round encodes the completed image (the known pixels, the region filled with the
   * previous round's pixel means), decodes its posterior mean and takes the region from it.
   * The result's region is the mean of rounds 2 to `iterations` (round 1's when 1), so more
   * rounds hedge rather than drift. Default 2 for a doubling model, 3 for a fixed one, chosen by
   * `measureInpainting` on held-out digits with the shipped models (docs/pretrained.md);
   * 1 is round 1 alone, the earlier behaviour.
   */
  iterations?: number;
}

/** Seeds of round r > 1 are the first round's plus r times this. */
const ROUND_SEED_STRIDE = 1000;

/** What {@link inpaint} needs of its model. @internal */
export interface InpaintingModel {
  readonly config: VNCAConfig;
  readonly rule: UpdateRule;
  readonly growthPlan: GrowthPlan;
  encode(x: tf.Tensor4D): DiagonalGaussian;
  decode(z: tf.Tensor2D, options: { seed?: number }): tf.Tensor4D;
  render(state: tf.Tensor4D): tf.Tensor4D;
}

/** Decodes the posterior mean of `x`: grown cell states `[batch, imageSize, imageSize, zSize]`. */
function decodePosteriorMean(model: InpaintingModel, x: tf.Tensor4D, seed: number | undefined): tf.Tensor4D {
  const q = model.encode(x);
  try {
    return model.decode(q.mean as tf.Tensor2D, { seed });
  } finally {
    q.dispose();
  }
}

/**
 * Round 1: decode the posterior mean of the known pixels, (damage and) regrow the region's
 * cells for `steps` steps with the known cells held at their grown values. Returns the
 * regrown state's pixel means `[batch, imageSize, imageSize, imageChannels]`.
 */
function regrowRegion(
  model: InpaintingModel, known: tf.Tensor4D, m: tf.Tensor4D, keep: tf.Tensor4D,
  steps: number, damage: boolean, seed: number | undefined,
): tf.Tensor4D {
  const c = model.config;
  const grown = decodePosteriorMean(model, known, seed);
  let cur = damage ? tf.tidy(() => tf.mul(grown, keep) as tf.Tensor4D) : tf.clone(grown);
  try {
    for (let i = 0; i < steps; i++) {
      const next = tf.tidy(() => {
        const stepped = runSteps(model.rule, cur, {
          steps: 1, pUpdate: c.pUpdate, seed: seed === undefined ? undefined : seed + i,
        }).state;
        // Known cells are held at their grown values; only the region evolves.
        return tf.add(tf.mul(stepped, m), tf.mul(grown, keep)) as tf.Tensor4D;
      });
      cur.dispose();
      cur = next;
    }
    return model.render(cur);
  } finally {
    tf.dispose([cur, grown]); // also when a step throws (a custom rule's error)
  }
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
  if (typeof options !== 'object' || options === null) throw new VncaError(fn, 'options', `must be an object, but got ${describe(options)}.`);
  const steps = options.steps ?? model.growthPlan.inpaintSteps(c);
  assertInt(steps, fn, 'options.steps', 0);
  const iterations = options.iterations ?? model.growthPlan.inpaintIterations(c);
  assertInt(iterations, fn, 'options.iterations', 1);
  if (options.damage !== undefined && typeof options.damage !== 'boolean') {
    throw new VncaError(fn, 'options.damage', `must be a boolean, but got ${describe(options.damage)}.`);
  }
  const { seed } = options;
  if (seed !== undefined) assertInt(seed, fn, 'options.seed');
  const roundSeed = (r: number) => (seed === undefined ? undefined : seed + r * ROUND_SEED_STRIDE);

  const m = tf.tidy(() => tf.broadcastTo(tf.reshape(tf.cast(mask, 'float32'), [mask.rank === 2 ? 1 : b, h, w, 1]), [b, h, w, 1]) as tf.Tensor4D);
  const keep = tf.tidy(() => tf.sub(1, m) as tf.Tensor4D);
  const known = tf.tidy(() => tf.mul(x, keep) as tf.Tensor4D);
  // The region's pixel means: round 1's, then the running sum of rounds 2.. .
  let p: tf.Tensor4D | undefined;
  let sum: tf.Tensor4D | undefined;
  try {
    p = regrowRegion(model, known, m, keep, steps, options.damage ?? steps > 0, roundSeed(0));
    for (let r = 1; r < iterations; r++) {
      const next = tf.tidy(() => {
        const completed = tf.add(known, tf.mul(p!, m)) as tf.Tensor4D;
        return model.render(decodePosteriorMean(model, completed, roundSeed(r)));
      });
      p.dispose();
      p = next;
      const s = sum === undefined ? tf.clone(p) : tf.add(sum, p) as tf.Tensor4D;
      sum?.dispose();
      sum = s;
    }
    const region = sum ?? p;
    return tf.tidy(() => tf.add(known, tf.mul(iterations > 1 ? tf.div(region, iterations - 1) : region, m)) as tf.Tensor4D);
  } finally {
    tf.dispose([m, keep, known]);
    if (p) p.dispose();
    if (sum) sum.dispose();
  }
}
