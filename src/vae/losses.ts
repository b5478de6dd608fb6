/**
 * VAE objectives: the evidence lower bound (ELBO) used for training, the importance-weighted
 * bound (IWAE) used for evaluation, and conversions between nats and bits per dimension.
 *
 * Sign conventions: log-likelihoods and bounds (`logPx`, `elbo`, `iwae`) are in nats and
 * are "higher is better" (usually negative); losses are "lower is better" (`loss = -mean elbo`).
 */
import * as tf from '@tensorflow/tfjs-core';
import { assertInt, assertNumber, assertRank, assertTensor, describe, VncaError } from '../core/errors.js';

/**
 * The parts of the ELBO for a batch, all in nats. Every tensor belongs to the caller
 * (dispose them, e.g. with `tf.dispose(Object.values(result))`).
 *
 * @category VAE
 */
export interface ElboResult {
  /** Per-example ELBO `logPx - kl`, `[batch]`: a lower bound on log p(x) (higher is better). */
  elbo: tf.Tensor1D;
  /** The training loss, a scalar: `-mean_batch(logPx - beta * kl)` (equals `-mean(elbo)` when `beta = 1`). */
  loss: tf.Scalar;
  /**
   * Per-example reconstruction loss, `[batch]`: the negative log-likelihood `-log p(x|z)`
   * (averaged over the `k` posterior samples when `logPx` is `[k, batch]`), >= 0 for
   * discrete data.
   */
  reconstruction: tf.Tensor1D;
  /** Per-example KL(q(z|x) || p(z)), `[batch]` (a copy of the input). */
  kl: tf.Tensor1D;
}

/**
 * Options of {@link elbo} and {@link elboLoss}.
 * @category VAE
 */
export interface ElboOptions {
  /**
   * Weight of the KL term in `loss` (beta-VAE, KL warm-up). Default 1, the true ELBO.
   * `elbo` in the result always uses weight 1.
   */
  beta?: number;
}

/** Checks `logPx` (`[batch]` or `[k, batch]`) and `kl` (`[batch]`). */
function checkElboInputs(logPx: unknown, kl: unknown, fn: string, options: unknown): number {
  assertTensor(logPx, fn, 'logPx');
  if (logPx.rank !== 1 && logPx.rank !== 2) {
    throw new VncaError(fn, 'logPx', `must be rank 1 [batch] or rank 2 [k, batch], but got rank ${logPx.rank} (shape [${logPx.shape.join(', ')}]).`);
  }
  assertRank(kl, 1, fn, 'kl', '[batch]');
  const b = logPx.shape[logPx.rank - 1]!;
  if (kl.shape[0] !== b) {
    throw new VncaError(fn, 'kl', `must have shape [${b}] to match logPx [${logPx.shape.join(', ')}], but got [${kl.shape.join(', ')}].`);
  }
  if (options === null || typeof options !== 'object') {
    throw new VncaError(fn, 'options', `must be an object, but got ${describe(options)}.`);
  }
  const beta = (options as ElboOptions).beta ?? 1;
  assertNumber(beta, fn, 'options.beta', 0);
  return beta;
}

/** The (sample-averaged) log-likelihood `[batch]`. Must run inside a tidy. */
function meanLogPx(logPx: tf.Tensor): tf.Tensor1D {
  return (logPx.rank === 2 ? tf.mean(logPx, 0) : logPx) as tf.Tensor1D;
}

/**
 * The evidence lower bound and its parts for a batch:
 * `elbo = E_q[log p(x|z)] - KL(q(z|x) || p(z))`, per example, with the expectation
 * estimated by the mean over the `k` posterior samples given.
 *
 * @param logPx Log-likelihood log p(x|z) in nats (e.g. {@link bernoulliLogProb}):
 *   `[batch]` for one posterior sample per example, or `[k, batch]` for `k` samples.
 * @param kl KL(q(z|x) || p(z)) in nats, `[batch]` (e.g. {@link DiagonalGaussian.klToStandardNormal}).
 * @param options `beta`: the weight of the KL term in `loss`.
 * @returns `{ elbo: [batch], loss: scalar, reconstruction: [batch], kl: [batch] }`, see {@link ElboResult}.
 * @example
 * ```ts
 * const { loss, elbo: bound } = elbo(bernoulliLogProb(logits, x), q.klToStandardNormal());
 * ```
 * @category VAE
 */
export function elbo(logPx: tf.Tensor1D | tf.Tensor2D, kl: tf.Tensor1D, options: ElboOptions = {}): ElboResult {
  const beta = checkElboInputs(logPx, kl, 'elbo', options);
  return tf.tidy(() => {
    const lp = meanLogPx(logPx);
    const bound = tf.sub(lp, kl) as tf.Tensor1D;
    const weighted = beta === 1 ? bound : tf.sub(lp, tf.mul(kl, beta));
    return {
      elbo: bound,
      loss: tf.neg(tf.mean(weighted)) as tf.Scalar,
      reconstruction: tf.neg(lp) as tf.Tensor1D,
      kl: tf.clone(kl),
    };
  });
}

/**
 * The training loss alone: `-mean_batch(E_q[log p(x|z)] - beta * KL)`, a scalar to minimise
 * (what `optimizer.minimize` wants). Same inputs as {@link elbo}.
 *
 * @param logPx Log-likelihood log p(x|z) in nats, `[batch]` or `[k, batch]`.
 * @param kl KL(q(z|x) || p(z)) in nats, `[batch]`.
 * @param options `beta`: the weight of the KL term (default 1).
 * @returns The loss, a scalar in nats per example. Owned by the caller.
 * @category VAE
 */
export function elboLoss(logPx: tf.Tensor1D | tf.Tensor2D, kl: tf.Tensor1D, options: ElboOptions = {}): tf.Scalar {
  const beta = checkElboInputs(logPx, kl, 'elboLoss', options);
  return tf.tidy(() => tf.neg(tf.mean(tf.sub(meanLogPx(logPx), tf.mul(kl, beta)))) as tf.Scalar);
}

/**
 * The importance-weighted bound (Burda et al. 2016) on log p(x) from `k` posterior samples
 * per example: `log (1/k) sum_i exp(logPx_i + logPz_i - logQz_i)`, computed stably as
 * `logSumExp(w, axis 0) - log k`. With `k = 1` it equals the single-sample ELBO estimate;
 * it never falls below the mean of the `k` single-sample estimates (Jensen), and tightens as
 * `k` grows. The paper evaluates with `k = 128`.
 *
 * @param logPx log p(x|z_i) in nats, `[k, batch]`.
 * @param logPz log p(z_i) under the prior, `[k, batch]` (e.g. {@link standardNormalLogProb}).
 * @param logQz log q(z_i|x) under the posterior, `[k, batch]` (e.g. {@link DiagonalGaussian.logProb}).
 * @returns `[batch]`: the bound in nats (higher is better). Owned by the caller.
 * @category VAE
 */
export function iwae(logPx: tf.Tensor2D, logPz: tf.Tensor2D, logQz: tf.Tensor2D): tf.Tensor1D {
  const fn = 'iwae';
  assertRank(logPx, 2, fn, 'logPx', '[k, batch]');
  assertRank(logPz, 2, fn, 'logPz', '[k, batch]');
  assertRank(logQz, 2, fn, 'logQz', '[k, batch]');
  for (const [arg, t] of [['logPz', logPz], ['logQz', logQz]] as const) {
    if (!tf.util.arraysEqual(t.shape, logPx.shape)) {
      throw new VncaError(fn, arg, `must have the shape of logPx [${logPx.shape.join(', ')}], but got [${t.shape.join(', ')}].`);
    }
  }
  const k = logPx.shape[0];
  return tf.tidy(() => {
    const logW = tf.sub(tf.add(logPx, logPz), logQz);
    return tf.sub(tf.logSumExp(logW, 0), Math.log(k)) as tf.Tensor1D;
  });
}

/**
 * Converts a log-likelihood in nats to bits per dimension:
 * `bitsPerDim = -nats / (dims * ln 2)`. The sign flips: a log-likelihood (usually negative,
 * higher is better) becomes a positive cost (lower is better), as papers report it.
 *
 * @param nats Log-likelihood log p(x) in nats per example (a number or a tensor of any shape).
 * @param dims The number of dimensions of one example, e.g. `height * width * channels`
 *   (784 for MNIST 28x28, 3072 for 32x32 RGB).
 * @returns Bits per dimension (positive for a negative log-likelihood); a tensor for a tensor input.
 * @category VAE
 */
export function natsToBitsPerDim(nats: number, dims: number): number;
export function natsToBitsPerDim<T extends tf.Tensor>(nats: T, dims: number): T;
export function natsToBitsPerDim(nats: number | tf.Tensor, dims: number): number | tf.Tensor {
  return convert(nats, dims, -1 / (dims * Math.LN2), 'natsToBitsPerDim', 'nats');
}

/**
 * Converts bits per dimension back to a log-likelihood in nats:
 * `nats = -bitsPerDim * dims * ln 2`, the inverse of {@link natsToBitsPerDim} (the sign flips back).
 *
 * @param bits Bits per dimension (a number or a tensor of any shape).
 * @param dims The number of dimensions of one example, e.g. `height * width * channels`.
 * @returns The log-likelihood in nats per example (negative for positive bits/dim).
 * @category VAE
 */
export function bitsPerDimToNats(bits: number, dims: number): number;
export function bitsPerDimToNats<T extends tf.Tensor>(bits: T, dims: number): T;
export function bitsPerDimToNats(bits: number | tf.Tensor, dims: number): number | tf.Tensor {
  return convert(bits, dims, -dims * Math.LN2, 'bitsPerDimToNats', 'bits');
}

function convert(v: number | tf.Tensor, dims: number, factor: number, fn: string, arg: string): number | tf.Tensor {
  assertInt(dims, fn, 'dims', 1);
  if (typeof v === 'number') {
    if (Number.isNaN(v)) throw new VncaError(fn, arg, 'must be a number, but got NaN.');
    return v * factor;
  }
  assertTensor(v, fn, arg);
  return tf.mul(v, factor);
}
