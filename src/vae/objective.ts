/**
 * The training objective of a {@link VNCA}: the negative ELBO of a batch with one posterior
 * sample per image, as batch means, with the rollout's final state (the sample pool keeps it).
 * @module
 */
import * as tf from '@tensorflow/tfjs-core';
import { DiagonalGaussian } from './distributions.js';
import type { GrowResult } from '../growth/grow.js';
import type { Encoder } from './Encoder.js';
import type { VNCAConfig } from './config.js';

/** The loss terms of one batch, each a batch mean in nats, and the final cell states. @internal */
export interface ElboTerms {
  /**
   * Negative ELBO: `reconstruction + kl` (with pooled entries: the fresh entries' KL summed over
   * the batch size), plus the overflow loss of `stateBound` when it is on.
   */
  loss: tf.Scalar;
  /** Mean of -log p(x|z). */
  reconstruction: tf.Scalar;
  /** Mean of KL(q(z|x) || N(0, I)) over the fresh entries (those grown from their posterior). */
  kl: tf.Scalar;
  /** Final cell states `[batch, imageSize, imageSize, zSize]`. */
  state: tf.Tensor4D;
}

/** What {@link elboTerms} needs of its model. @internal */
export interface ObjectiveModel {
  readonly config: VNCAConfig;
  readonly encoder: Encoder;
  toModelInput(x: tf.Tensor4D): tf.Tensor4D;
  seedGrid(z: tf.Tensor2D): tf.Tensor4D;
  rollout(seed: tf.Tensor4D, options: { steps?: number; seed?: number }): GrowResult;
  logLikelihood(state: tf.Tensor4D, x: tf.Tensor4D): tf.Tensor1D;
}

/**
 * The update-mask seed of a training step seeded `seed` (models with pUpdate < 1): a hash of
 * it, so the masks are not drawn from the same stream as the posterior noise. @internal
 */
export function rolloutMaskSeed(seed: number): number {
  return Math.imul(seed ^ 0x68e31da4, 0x2c1b3c6d) >>> 1;
}

/**
 * Batch-mean ELBO terms of `x` with one posterior sample per image (differentiable): `noise`
 * or `seed` fixes the sample, `rolloutSteps` a fixed model's rollout length, and `initial`
 * (pooled states) replaces the seeds of the first entries of the batch.
 * @internal
 */
export function elboTerms(
  model: ObjectiveModel, x: tf.Tensor4D, rolloutSteps?: number, initial?: tf.Tensor4D | null, eps: { noise?: tf.Tensor2D; seed?: number } = {},
): ElboTerms {
  return tf.tidy(() => {
    const out = model.encoder.apply(model.toModelInput(x)) as tf.Tensor2D;
    const q = DiagonalGaussian.fromEncoderOutput(out);
    // The same element-wise ops as q.sample(1, seed), so given noise = the seed's draw gives the same z.
    const z = eps.noise
      ? tf.add(q.mean, tf.mul(tf.exp(q.logStd), eps.noise)) as tf.Tensor2D
      : tf.reshape(q.sample(1, eps.seed), [x.shape[0], model.config.zSize]) as tf.Tensor2D;
    let seed = model.seedGrid(z);
    if (initial) {
      // Pooled states replace the seeds of the first entries of the batch.
      const rest = tf.slice(seed, [initial.shape[0], 0, 0, 0], [-1, -1, -1, -1]);
      seed = tf.concat([initial, rest]) as tf.Tensor4D;
    }
    const { state } = model.rollout(seed, { steps: rolloutSteps, seed: eps.seed === undefined ? undefined : rolloutMaskSeed(eps.seed) });
    const logPx = model.logLikelihood(state, x);
    const kl = q.klToStandardNormal();
    const reconstruction = tf.neg(tf.mean(logPx)) as tf.Scalar;
    // Pooled entries did not start from their images' posteriors, so their KL term has no
    // reconstruction to balance it and would only pull the encoder towards the prior (the
    // reference's code calls pool seeding "wrong" for this gradient). The KL counts for the
    // fresh entries only: loss = (sum of -log p(x|state) + sum of fresh KL) / batch.
    const nPooled = initial ? initial.shape[0] : 0;
    const freshKl = nPooled > 0 ? tf.slice(kl, [nPooled], [-1]) : kl;
    const klMean = (freshKl.shape[0] > 0 ? tf.mean(freshKl) : tf.scalar(0)) as tf.Scalar;
    const klLoss = nPooled > 0 ? tf.div(tf.sum(freshKl), x.shape[0]) as tf.Scalar : klMean;
    let loss = tf.add(reconstruction, klLoss) as tf.Scalar;
    const bound = model.config.stateBound;
    if (bound > 0) {
      // Overflow loss: the excess of the final state beyond ±bound, summed per image, batch mean.
      const excess = tf.sum(tf.abs(tf.sub(state, tf.clipByValue(state, -bound, bound))));
      loss = tf.add(loss, tf.div(excess, x.shape[0])) as tf.Scalar;
    }
    return { loss, reconstruction, kl: klMean, state };
  });
}
