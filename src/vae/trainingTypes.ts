/**
 * The public types of a {@link VNCA}'s training: the options of a step and of `fit`, and
 * what they return.
 * @module
 */
import type * as tf from '@tensorflow/tfjs-core';

/** Plain numbers from one training step. @category VAE */
export interface TrainStepResult {
  /** Negative ELBO, mean over the batch, in nats. */
  loss: number;
  /** Reconstruction term: mean negative log-likelihood -log p(x|z), nats. */
  reconstruction: number;
  /** KL(q(z|x) || N(0, I)), mean over the batch, nats. */
  kl: number;
  /** Global gradient norm before clipping. */
  gradNorm: number;
  /**
   * True when the step's loss or gradient norm was NaN or ±Infinity: nothing was applied (the
   * weights, Adam's moments, the step count and the sample pool are as before the step).
   */
  skipped: boolean;
}

/**
 * Options of {@link VNCA.computeGradients} and {@link VNCA.trainStep}: the randomness of one
 * step, for reproducible steps and for splitting a batch across threads.
 *
 * @category VAE
 */
export interface GradientOptions {
  /**
   * Seed of the noise eps ~ N(0, I) `[batch, zSize]` of the posterior sample
   * z = mean + exp(logStd) * eps (one sample per image), and, when `pUpdate` < 1, of the
   * rollout's update masks (a seed derived from it, so masks and noise are not drawn alike).
   * Default: fresh randomness.
   */
  seed?: number;
  /**
   * The noise eps itself, float32 `[batch, zSize]` (overrides `seed` for the noise; the masks
   * of a `pUpdate` < 1 model still follow `seed`, fresh without one; not disposed). Row `i` is
   * image `i`'s, so the rows of a split batch with the matching rows of one noise tensor give
   * the same per-image terms as the whole batch. `tf.randomNormal([batch, zSize], 0, 1,
   * 'float32', s)` is the noise that `seed: s` draws, for s other than 0 (tfjs reads seed 0
   * as no seed; vnca hands it to tfjs as the string `'0'`, so `seed: 0` is reproducible too).
   */
  noise?: tf.Tensor2D;
  /**
   * Rollout length of a `'fixed'` model (ignored by doubling growth). Default: drawn
   * uniformly from `stepsRange` by the model's own seeded generator.
   */
  steps?: number;
}

/**
 * The gradients of one batch's loss, not yet applied (see {@link VNCA.computeGradients}).
 *
 * @category VAE
 */
export interface Gradients {
  /**
   * d loss / d variable for every trainable variable, keyed by the variable's name
   * (`variable.name`, as `tf.variableGrads` keys them), each of the variable's shape.
   * The caller owns (and disposes) these tensors.
   */
  grads: tf.NamedTensorMap;
  /** Negative ELBO, mean over the batch, in nats. */
  loss: number;
  /** Reconstruction term: mean negative log-likelihood -log p(x|z), nats. */
  reconstruction: number;
  /** KL(q(z|x) || N(0, I)), mean over the batch, nats. */
  kl: number;
}

/** Progress of {@link VNCA.fit}. @category VAE */
export interface FitProgress extends TrainStepResult {
  /** Steps done so far (1-based). */
  step: number;
  /** Total steps of this fit. */
  steps: number;
}

/** Options of {@link VNCA.fit}. @category VAE */
export interface FitOptions {
  /** Training steps. */
  steps: number;
  /** Images per step. Default 32. */
  batchSize?: number;
  /**
   * Seed of the batch sampler and of each step's posterior noise (so a fit is reproducible
   * when the model's `pUpdate` is 1; update masks of training rollouts are not seeded). Default 0. A `fit` with the same data size, `batchSize`,
   * `shuffle` and `seed` as the previous one continues its sampler where it stopped (also
   * after {@link VNCA.load} of a save made with `includeOptimizer`), so `fit` for k steps
   * then for m steps draws the batches of one `fit` for k + m steps.
   */
  seed?: number;
  /**
   * How batches are drawn: `'epoch'` (default, as the reference) shuffles the data once per
   * epoch and walks through it, so every image is seen once an epoch; `'replacement'` draws
   * every image of every batch uniformly at random. Both are seeded by `seed`.
   */
  shuffle?: 'epoch' | 'replacement';
  /**
   * Consecutive skipped steps (non-finite loss or gradient norm, see
   * {@link TrainStepResult.skipped}) after which `fit` stops with a {@link VncaError}. Default 5.
   */
  maxSkippedSteps?: number;
  /** Called after each step. Returning `false` stops training. */
  onProgress?: (p: FitProgress) => void | boolean | Promise<void | boolean>;
}
