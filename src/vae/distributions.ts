/**
 * Gaussian distributions of the VAE: the diagonal Gaussian posterior q(z|x) and the
 * standard normal prior p(z) = N(0, I).
 *
 * Latents are `[batch, zSize]`; `k` samples per input are stacked in front: `[k, batch, zSize]`.
 */
import * as tf from '@tensorflow/tfjs-core';
import { assertInt, assertRank, assertTensor, describe, VncaError } from '../core/errors.js';
import { tfSeed } from '../core/random.js';

/** log(2π) / 2, the constant of every Gaussian log-density. */
const HALF_LOG_2PI = 0.5 * Math.log(2 * Math.PI);

/** Throws unless `seed` is undefined or a finite number. */
function assertSeed(seed: unknown, fn: string): asserts seed is number | undefined {
  if (seed !== undefined && (typeof seed !== 'number' || !Number.isFinite(seed))) {
    throw new VncaError(fn, 'seed', `must be a finite number or undefined, but got ${describe(seed)}.`);
  }
}

/** Throws unless `z` is a tensor of rank 2 `[batch, zSize]` or rank 3 `[k, batch, zSize]`. */
function assertLatent(z: unknown, fn: string, arg: string): asserts z is tf.Tensor {
  assertTensor(z, fn, arg);
  if (z.rank !== 2 && z.rank !== 3) {
    throw new VncaError(fn, arg, `must be rank 2 [batch, zSize] or rank 3 [k, batch, zSize], but got rank ${z.rank} (shape [${z.shape.join(', ')}]).`);
  }
}

/**
 * A diagonal Gaussian N(mean, exp(logStd)^2) over `[batch, zSize]` latents: the VAE
 * posterior q(z|x). It is parameterised as in the reference implementation, by the mean
 * and the log standard deviation (`scale = exp(logStd)`).
 *
 * Ownership: the distribution holds references to the tensors it was given (it does not
 * copy them). Whoever creates it owns it and frees its tensors with {@link DiagonalGaussian.dispose};
 * tensors returned by its methods belong to the caller. Inside `tf.tidy` the usual tidy
 * rules apply to the held tensors.
 *
 * @example
 * ```ts
 * const q = DiagonalGaussian.fromEncoderOutput(encoder.apply(x) as tf.Tensor2D);
 * const z = q.sample();                    // [1, batch, zSize], reparameterised
 * const kl = q.klToStandardNormal();       // [batch]
 * q.dispose();
 * ```
 * @category VAE
 */
export class DiagonalGaussian {
  /** The mean, `[batch, zSize]`. */
  readonly mean: tf.Tensor2D;
  /** The log standard deviation, `[batch, zSize]` (`std = exp(logStd)`). */
  readonly logStd: tf.Tensor2D;

  /**
   * @param mean The mean, float32 `[batch, zSize]`.
   * @param logStd The log standard deviation, float32 `[batch, zSize]`, same shape as `mean`.
   */
  constructor(mean: tf.Tensor2D, logStd: tf.Tensor2D) {
    const fn = 'DiagonalGaussian';
    assertRank(mean, 2, fn, 'mean', '[batch, zSize]');
    assertRank(logStd, 2, fn, 'logStd', '[batch, zSize]');
    if (mean.dtype !== 'float32') throw new VncaError(fn, 'mean', `must be float32, but got ${mean.dtype}.`);
    if (logStd.dtype !== 'float32') throw new VncaError(fn, 'logStd', `must be float32, but got ${logStd.dtype}.`);
    if (mean.shape[0] !== logStd.shape[0] || mean.shape[1] !== logStd.shape[1]) {
      throw new VncaError(fn, 'logStd', `must have the shape of mean [${mean.shape.join(', ')}], but got [${logStd.shape.join(', ')}].`);
    }
    this.mean = mean;
    this.logStd = logStd;
  }

  /**
   * Splits an encoder output `[batch, 2 * zSize]` into `[mean, logStd]`: the first half of
   * the channels is the mean, the second half the log standard deviation, as in the
   * reference (`loc = q[:, :z], logsigma = q[:, z:]`). The two halves are new tensors owned
   * by the returned distribution; `out` itself stays the caller's.
   *
   * @param out Encoder output, float32 `[batch, 2 * zSize]`.
   * @returns The posterior q(z|x), `[batch, zSize]`.
   */
  static fromEncoderOutput(out: tf.Tensor2D): DiagonalGaussian {
    const fn = 'DiagonalGaussian.fromEncoderOutput';
    assertRank(out, 2, fn, 'out', '[batch, 2 * zSize]');
    const c = out.shape[1];
    if (c % 2 !== 0 || c === 0) throw new VncaError(fn, 'out', `must have an even, positive number of channels [batch, 2 * zSize], but got shape [${out.shape.join(', ')}].`);
    const [mean, logStd] = tf.split(out, 2, 1) as [tf.Tensor2D, tf.Tensor2D];
    return new DiagonalGaussian(mean, logStd);
  }

  /** The batch size. */
  get batchSize(): number {
    return this.mean.shape[0];
  }

  /** The number of latent dimensions, `zSize`. */
  get zSize(): number {
    return this.mean.shape[1];
  }

  /**
   * The standard deviation `exp(logStd)`.
   * @returns `[batch, zSize]`, owned by the caller.
   */
  std(): tf.Tensor2D {
    return tf.exp(this.logStd);
  }

  /**
   * Draws `k` reparameterised samples per input: `z = mean + exp(logStd) * eps` with
   * `eps ~ N(0, I)`. The result is differentiable with respect to `mean` and `logStd`
   * (dz/dmean = 1, dz/dlogStd = exp(logStd) * eps), so it serves as `rsample` too.
   *
   * @param k Samples per input (integer >= 1).
   * @param seed Optional seed for `eps`; the same seed gives the same samples on every backend.
   * @returns `[k, batch, zSize]`: sample `i` of input `j` is `z[i, j]`. Owned by the caller.
   */
  sample(k = 1, seed?: number): tf.Tensor3D {
    const fn = 'DiagonalGaussian.sample';
    assertInt(k, fn, 'k', 1);
    assertSeed(seed, fn);
    this.assertLive(fn);
    return tf.tidy(() => {
      const [b, d] = this.mean.shape;
      const eps = tf.randomNormal([k, b, d], 0, 1, 'float32', tfSeed(seed));
      return tf.add(this.mean, tf.mul(tf.exp(this.logStd), eps)) as tf.Tensor3D;
    });
  }

  /**
   * The log-density of `z`, summed over the latent dimensions:
   * `sum_d [-(z - mean)^2 / (2 std^2) - logStd - log(2π)/2]`.
   *
   * @param z `[batch, zSize]`, or `[k, batch, zSize]` (as returned by {@link DiagonalGaussian.sample}).
   * @returns `[batch]` or `[k, batch]`, in nats. Owned by the caller.
   */
  logProb(z: tf.Tensor2D): tf.Tensor1D;
  logProb(z: tf.Tensor3D): tf.Tensor2D;
  logProb(z: tf.Tensor): tf.Tensor;
  logProb(z: tf.Tensor): tf.Tensor {
    const fn = 'DiagonalGaussian.logProb';
    assertLatent(z, fn, 'z');
    this.assertLive(fn);
    const [b, d] = this.mean.shape;
    const zb = z.shape[z.rank - 2], zd = z.shape[z.rank - 1];
    if (zb !== b || zd !== d) {
      throw new VncaError(fn, 'z', `must end in [batch, zSize] = [${b}, ${d}], but got shape [${z.shape.join(', ')}].`);
    }
    return tf.tidy(() => {
      const u = tf.mul(tf.sub(z, this.mean), tf.exp(tf.neg(this.logStd)));
      const perDim = tf.sub(tf.mul(tf.square(u), -0.5), tf.add(this.logStd, HALF_LOG_2PI));
      return tf.sum(perDim, -1);
    });
  }

  /**
   * The closed-form KL divergence KL(q || N(0, I)) per input:
   * `0.5 * sum_d (mean^2 + std^2 - 1 - 2 logStd)`.
   *
   * @returns `[batch]`, in nats (>= 0). Owned by the caller.
   */
  klToStandardNormal(): tf.Tensor1D {
    this.assertLive('DiagonalGaussian.klToStandardNormal');
    return tf.tidy(() => {
      const twoLogStd = tf.mul(this.logStd, 2);
      const perDim = tf.sub(tf.add(tf.square(this.mean), tf.exp(twoLogStd)), tf.add(twoLogStd, 1));
      return tf.mul(tf.sum(perDim, -1), 0.5) as tf.Tensor1D;
    });
  }

  /** Frees `mean` and `logStd`. Calling it twice is harmless. */
  dispose(): void {
    this.mean.dispose();
    this.logStd.dispose();
  }

  private assertLive(fn: string): void {
    if (this.mean.isDisposed || this.logStd.isDisposed) {
      throw new VncaError(fn, 'this', 'must be a live distribution, but its tensors have been disposed.');
    }
  }
}

/**
 * The log-density of the standard normal prior p(z) = N(0, I), summed over the last axis:
 * `sum_d [-z^2 / 2 - log(2π)/2]`.
 *
 * @param z Latents `[..., zSize]`, e.g. `[batch, zSize]` or `[k, batch, zSize]`.
 * @returns `z.shape` without its last axis (`[batch]` or `[k, batch]`), in nats. Owned by the caller.
 * @category VAE
 */
export function standardNormalLogProb(z: tf.Tensor2D): tf.Tensor1D;
export function standardNormalLogProb(z: tf.Tensor3D): tf.Tensor2D;
export function standardNormalLogProb(z: tf.Tensor): tf.Tensor;
export function standardNormalLogProb(z: tf.Tensor): tf.Tensor {
  const fn = 'standardNormalLogProb';
  assertTensor(z, fn, 'z');
  if (z.rank < 1) throw new VncaError(fn, 'z', 'must have rank >= 1 [..., zSize], but got rank 0.');
  return tf.tidy(() => {
    const d = z.shape[z.rank - 1]!;
    return tf.sub(tf.mul(tf.sum(tf.square(z), -1), -0.5), d * HALF_LOG_2PI);
  });
}

/**
 * Draws from the standard normal prior: `z ~ N(0, I)`.
 *
 * @param shape `[n, zSize]`: number of samples and latent size (positive integers).
 * @param seed Optional seed; the same seed gives the same samples on every backend.
 * @returns `[n, zSize]`, owned by the caller.
 * @category VAE
 */
export function sampleStandardNormal(shape: [number, number], seed?: number): tf.Tensor2D {
  const fn = 'sampleStandardNormal';
  if (!Array.isArray(shape) || shape.length !== 2) {
    throw new VncaError(fn, 'shape', `must be [n, zSize], but got ${describe(shape)}.`);
  }
  assertInt(shape[0], fn, 'shape[0]', 1);
  assertInt(shape[1], fn, 'shape[1]', 1);
  assertSeed(seed, fn);
  return tf.randomNormal(shape, 0, 1, 'float32', tfSeed(seed));
}
