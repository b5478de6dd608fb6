/**
 * Decoder likelihoods p(x|z): Bernoulli pixels for binary images and the discretised
 * mixture of logistics (PixelCNN++, Salimans et al. 2017) for 8-bit RGB images.
 *
 * Every log-probability is in nats and summed over all axes but the batch axis, so it is
 * `[batch]`, ready for `elbo` and `iwae` (losses.ts).
 */
import * as tf from '@tensorflow/tfjs-core';
import { assertRank, assertTensor, describe, VncaError } from '../core/errors.js';
import { tfSeed } from '../core/random.js';

/** Throws unless `seed` is undefined or a finite number. */
function assertSeed(seed: unknown, fn: string): asserts seed is number | undefined {
  if (seed !== undefined && (typeof seed !== 'number' || !Number.isFinite(seed))) {
    throw new VncaError(fn, 'seed', `must be a finite number or undefined, but got ${describe(seed)}.`);
  }
}

/** Throws unless `x` is a float32 tensor of rank >= 1. */
function assertFloatBatched(x: unknown, fn: string, arg: string): asserts x is tf.Tensor {
  assertTensor(x, fn, arg);
  if (x.rank < 1) throw new VncaError(fn, arg, 'must have a batch axis (rank >= 1), but got rank 0.');
  if (x.dtype !== 'float32') throw new VncaError(fn, arg, `must be float32, but got ${x.dtype}.`);
}

/** Throws unless two tensors have the same shape. */
function assertSameShape(a: tf.Tensor, b: tf.Tensor, fn: string, argA: string, argB: string): void {
  if (!tf.util.arraysEqual(a.shape, b.shape)) {
    throw new VncaError(fn, argB, `must have the shape of ${argA} [${a.shape.join(', ')}], but got [${b.shape.join(', ')}].`);
  }
}

/** Sums a `[batch, ...]` tensor over every axis but the first, giving `[batch]`. */
function sumAllButBatch(t: tf.Tensor): tf.Tensor1D {
  if (t.rank === 1) return t as tf.Tensor1D;
  return tf.sum(tf.reshape(t, [t.shape[0]!, -1]), 1);
}

// ---------------------------------------------------------------------------------------
// Bernoulli

/**
 * Log-likelihood of binary pixels under independent Bernoulli distributions with the
 * given logits, computed stably as `x * logits - softplus(logits)` (the negative of binary
 * cross-entropy with logits), so `|logits| = 100` is exact and finite.
 *
 * @param logits Bernoulli logits, float32 `[batch, height, width, 1]` (any shape with the
 *   batch axis first works).
 * @param x Targets of the same shape, values in {0, 1} (values in [0, 1] give the
 *   cross-entropy against soft targets).
 * @returns `[batch]`: log p(x|logits) in nats, summed over all axes but the batch axis. Owned by the caller.
 * @category VAE
 */
export function bernoulliLogProb(logits: tf.Tensor, x: tf.Tensor): tf.Tensor1D {
  const fn = 'bernoulliLogProb';
  assertFloatBatched(logits, fn, 'logits');
  assertTensor(x, fn, 'x');
  assertSameShape(logits, x, fn, 'logits', 'x');
  return tf.tidy(() => sumAllButBatch(tf.sub(tf.mul(tf.cast(x, 'float32'), logits), tf.softplus(logits))));
}

/**
 * The mean of the Bernoulli distribution, `sigmoid(logits)`: the probability of each pixel being 1.
 *
 * @param logits Bernoulli logits, `[batch, height, width, 1]` (any shape).
 * @returns Probabilities in [0, 1], same shape as `logits`. Owned by the caller.
 * @category VAE
 */
export function bernoulliMean<T extends tf.Tensor>(logits: T): T {
  assertFloatBatched(logits, 'bernoulliMean', 'logits');
  return tf.sigmoid(logits);
}

/**
 * Draws binary pixels: `x = 1` with probability `sigmoid(logits)`, else `0`.
 *
 * @param logits Bernoulli logits, `[batch, height, width, 1]` (any shape).
 * @param seed Optional seed; the same seed gives the same draws on every backend.
 * @returns float32 values in {0, 1}, same shape as `logits`. Owned by the caller.
 * @category VAE
 */
export function bernoulliSample<T extends tf.Tensor>(logits: T, seed?: number): T {
  const fn = 'bernoulliSample';
  assertFloatBatched(logits, fn, 'logits');
  assertSeed(seed, fn);
  return tf.tidy(() => {
    const u = tf.randomUniform(logits.shape, 0, 1, 'float32', tfSeed(seed));
    return tf.cast(tf.less(u, tf.sigmoid(logits)), 'float32') as T;
  });
}

// ---------------------------------------------------------------------------------------
// Discretised mixture of logistics

/** Lower bound on the log-scales, as in PixelCNN++. */
const MIN_LOG_SCALE = -7;
/** Half the width of one 8-bit bin on [-1, 1]: 1 / 255. */
const HALF_BIN = 1 / 255;

/**
 * The number of mixture components in a discretised-mixture-of-logistics parameter tensor
 * for RGB images with `channels` channels: `channels / 10`.
 *
 * @param channels Channels of the parameter tensor (a positive multiple of 10).
 * @returns The number of mixture components `nMix`.
 * @category VAE
 */
export function nMixFromChannels(channels: number): number {
  if (typeof channels !== 'number' || !Number.isInteger(channels) || channels < 10 || channels % 10 !== 0) {
    throw new VncaError('nMixFromChannels', 'channels', `must be a positive multiple of 10 (10 * nMix for RGB), but got ${describe(channels)}.`);
  }
  return channels / 10;
}

/** One colour channel's parameters of every mixture component: `[batch, height, width, nMix]` each. */
interface ChannelParams {
  means: tf.Tensor4D;
  logScales: tf.Tensor4D;
  coeffs: tf.Tensor4D;
}

/**
 * Unpacks `[b, h, w, 10 nMix]` parameters into mixture logits and per-channel means,
 * clamped log-scales and tanh coefficients, each `[b, h, w, nMix]`. Must run inside a tidy.
 */
function unpackParams(params: tf.Tensor4D, n: number): { logits: tf.Tensor4D; channels: ChannelParams[] } {
  const [b, h, w] = params.shape;
  const logits = tf.slice(params, [0, 0, 0, 0], [b, h, w, n]);
  const channels: ChannelParams[] = [];
  for (let c = 0; c < 3; c++) {
    const off = n + 3 * n * c;
    channels.push({
      means: tf.slice(params, [0, 0, 0, off], [b, h, w, n]),
      logScales: tf.maximum(tf.slice(params, [0, 0, 0, off + n], [b, h, w, n]), MIN_LOG_SCALE),
      coeffs: tf.tanh(tf.slice(params, [0, 0, 0, off + 2 * n], [b, h, w, n])),
    });
  }
  return { logits, channels };
}

/** Checks `params` `[b, h, w, 10 nMix]` and returns `nMix`. */
function checkParams(params: unknown, fn: string): number {
  assertRank(params, 4, fn, 'params', '[batch, height, width, 10 * nMix]');
  if (params.dtype !== 'float32') throw new VncaError(fn, 'params', `must be float32, but got ${params.dtype}.`);
  const c = params.shape[3]!;
  if (c < 10 || c % 10 !== 0) {
    throw new VncaError(fn, 'params', `must have 10 * nMix channels (nMix >= 1), but got shape [${params.shape.join(', ')}].`);
  }
  return c / 10;
}

/**
 * Log-probability of one colour channel's 8-bit value under each logistic component,
 * `[b, h, w, nMix]`, with the PixelCNN++ edge cases: the bin of -1 extends to -infinity,
 * the bin of +1 to +infinity, and a bin whose probability falls below 1e-5 uses the
 * log-density at its centre times the bin width. Must run inside a tidy.
 *
 * @param x The channel's values, `[b, h, w, 1]`, in [-1, 1].
 * @param mean The (channel-autoregressive) means, `[b, h, w, nMix]`.
 * @param logScale The clamped log-scales, `[b, h, w, nMix]`.
 */
function logisticBinLogProb(x: tf.Tensor, mean: tf.Tensor, logScale: tf.Tensor): tf.Tensor {
  const centered = tf.sub(x, mean);
  const invScale = tf.exp(tf.neg(logScale));
  const plusIn = tf.mul(invScale, tf.add(centered, HALF_BIN));
  const minIn = tf.mul(invScale, tf.sub(centered, HALF_BIN));
  // log sigmoid(plusIn): the left edge bin (x = -1) holds all mass below -1 + 1/255.
  const logCdfPlus = tf.sub(plusIn, tf.softplus(plusIn));
  // log(1 - sigmoid(minIn)): the right edge bin (x = +1) holds all mass above 1 - 1/255.
  const logOneMinusCdfMin = tf.neg(tf.softplus(minIn));
  const cdfDelta = tf.sub(tf.sigmoid(plusIn), tf.sigmoid(minIn));
  const midIn = tf.mul(invScale, centered);
  // log of the logistic density at the bin centre; times the bin width 2/255 below.
  const logPdfMid = tf.sub(tf.sub(midIn, logScale), tf.mul(tf.softplus(midIn), 2));
  // Conditions use greaterEqual (tfjs registers no gradient for greater/less, and the
  // condition depends on the parameters). The clamp at 1e-12 is never selected; it keeps
  // the gradient of the unused branch finite (tf.where multiplies it by zero).
  const interior = tf.where(
    tf.greaterEqual(cdfDelta, 1e-5),
    tf.log(tf.maximum(cdfDelta, 1e-12)),
    tf.sub(logPdfMid, Math.log(127.5)),
  );
  const xb = tf.broadcastTo(x, interior.shape);
  const notRightEdge = tf.greaterEqual(tf.neg(xb), -0.999); // x <= 0.999
  const notLeftEdge = tf.greaterEqual(xb, -0.999); // x >= -0.999
  return tf.where(notLeftEdge, tf.where(notRightEdge, interior, logOneMinusCdfMin), logCdfPlus);
}

/**
 * Log-likelihood of 8-bit RGB images under a discretised mixture of logistics with the
 * PixelCNN++ channel-autoregressive means (Salimans et al. 2017), per pixel
 * `p(r, g, b) = sum_k pi_k L(r | mu_r) L(g | mu_g + alpha r) L(b | mu_b + beta r + gamma g)`,
 * where `L` is the logistic probability of the value's 8-bit bin of width 2/255.
 *
 * Layout of the `10 * nMix` parameter channels (the standard PixelCNN++ / reference layout,
 * identical to the PyTorch channel order after moving channels last):
 * - `[0, nMix)`: mixture logits (softmax gives pi);
 * - then one block of `3 * nMix` channels per colour channel c = 0 (red), 1 (green), 2 (blue),
 *   starting at `nMix + 3 * nMix * c`: `nMix` means, `nMix` log-scales (clamped below at -7),
 *   `nMix` raw coefficients (passed through tanh). The coefficients of block 0 are alpha
 *   (green from red), of block 1 beta (blue from red), of block 2 gamma (blue from green).
 *
 * Edge cases as in PixelCNN++: values below -0.999 get the whole left tail, values above
 * 0.999 the whole right tail, and a bin with probability below 1e-5 falls back to the
 * log-density at its centre plus log(2/255).
 *
 * @param params Mixture parameters, float32 `[batch, height, width, 10 * nMix]`.
 * @param x Images, float32 `[batch, height, width, 3]`, 8-bit values scaled to [-1, 1]
 *   (`v / 127.5 - 1` for v in 0..255).
 * @returns `[batch]`: log p(x) in nats, summed over pixels and channels. Owned by the caller.
 * @category VAE
 */
export function discretizedMixLogisticLogProb(params: tf.Tensor4D, x: tf.Tensor4D): tf.Tensor1D {
  const fn = 'discretizedMixLogisticLogProb';
  const n = checkParams(params, fn);
  assertRank(x, 4, fn, 'x', '[batch, height, width, 3]');
  if (x.dtype !== 'float32') throw new VncaError(fn, 'x', `must be float32, but got ${x.dtype}.`);
  const [b, h, w] = params.shape;
  if (x.shape[0] !== b || x.shape[1] !== h || x.shape[2] !== w || x.shape[3] !== 3) {
    throw new VncaError(fn, 'x', `must have shape [${b}, ${h}, ${w}, 3] to match params, but got [${x.shape.join(', ')}].`);
  }
  return tf.tidy(() => {
    const { logits, channels } = unpackParams(params, n);
    const [red, green, blue] = channels as [ChannelParams, ChannelParams, ChannelParams];
    const [x0, x1, x2] = tf.split(x, 3, 3) as [tf.Tensor4D, tf.Tensor4D, tf.Tensor4D];
    const mean0 = red.means;
    const mean1 = tf.add(green.means, tf.mul(red.coeffs, x0));
    const mean2 = tf.add(tf.add(blue.means, tf.mul(green.coeffs, x0)), tf.mul(blue.coeffs, x1));
    const perComponent = tf.addN([
      logisticBinLogProb(x0, mean0, red.logScales),
      logisticBinLogProb(x1, mean1, green.logScales),
      logisticBinLogProb(x2, mean2, blue.logScales),
      tf.logSoftmax(logits),
    ]);
    const perPixel = tf.logSumExp(perComponent, -1); // [b, h, w]
    return tf.sum(perPixel, [1, 2]) as tf.Tensor1D;
  });
}

/**
 * Selects each pixel's parameters of one mixture component: the one-hot `[b, h, w, nMix]`
 * picks from each `[b, h, w, nMix]` tensor, giving `[b, h, w, 1]`. Must run inside a tidy.
 */
function pick(oneHot: tf.Tensor, t: tf.Tensor): tf.Tensor {
  return tf.sum(tf.mul(oneHot, t), -1, true);
}

/**
 * Draws RGB images from a discretised mixture of logistics (layout as in
 * {@link discretizedMixLogisticLogProb}): a component per pixel from softmax(logits) by
 * the Gumbel-max trick, then red, green and blue in turn from their logistics, with green
 * and blue means shifted by the coefficients times the already drawn channels, each clipped
 * to [-1, 1]. As in the reference, values are continuous (not rounded to the 8-bit grid).
 *
 * @param params Mixture parameters, float32 `[batch, height, width, 10 * nMix]`.
 * @param seed Optional seed; the same seed gives the same images on every backend.
 * @returns Images `[batch, height, width, 3]` in [-1, 1]. Owned by the caller.
 * @category VAE
 */
export function discretizedMixLogisticSample(params: tf.Tensor4D, seed?: number): tf.Tensor4D {
  const fn = 'discretizedMixLogisticSample';
  const n = checkParams(params, fn);
  assertSeed(seed, fn);
  return tf.tidy(() => {
    const [b, h, w] = params.shape;
    const { logits, channels } = unpackParams(params, n);
    const eps = 1e-5;
    // Gumbel-max: argmax(logits - log(-log u)) is a draw from softmax(logits).
    const uMix = tf.randomUniform([b, h, w, n], eps, 1 - eps, 'float32', tfSeed(seed)); // drawn even for n = 1, so seeds line up
    const gumbel = tf.neg(tf.log(tf.neg(tf.log(uMix))));
    const oneHot = n === 1
      ? tf.onesLike(logits) // tf.oneHot needs depth >= 2
      : tf.cast(tf.oneHot(tf.argMax(tf.add(logits, gumbel), -1), n), 'float32');
    // Logistic noise for the three channels: log u - log(1 - u).
    const u = tf.randomUniform([b, h, w, 3], eps, 1 - eps, 'float32', tfSeed(seed === undefined ? undefined : seed + 1));
    const noise = tf.sub(tf.log(u), tf.log1p(tf.neg(u)));
    const [n0, n1, n2] = tf.split(noise, 3, 3);
    const draw = (c: ChannelParams, nz: tf.Tensor): { base: tf.Tensor; coeff: tf.Tensor } => ({
      base: tf.add(pick(oneHot, c.means), tf.mul(tf.exp(pick(oneHot, c.logScales)), nz)),
      coeff: pick(oneHot, c.coeffs),
    });
    const [red, green, blue] = channels as [ChannelParams, ChannelParams, ChannelParams];
    const r = draw(red, n0!), g = draw(green, n1!), bl = draw(blue, n2!);
    const x0 = tf.clipByValue(r.base, -1, 1);
    const x1 = tf.clipByValue(tf.add(g.base, tf.mul(r.coeff, x0)), -1, 1);
    const x2 = tf.clipByValue(tf.add(tf.add(bl.base, tf.mul(g.coeff, x0)), tf.mul(bl.coeff, x1)), -1, 1);
    return tf.concat([x0, x1, x2], 3) as tf.Tensor4D;
  });
}

/**
 * A deterministic summary image of a discretised mixture of logistics: the mean of the
 * continuous (unclipped, unbinned) mixture, clipped to [-1, 1]. Per component k the means
 * chain as `r_k = mu_r`, `g_k = mu_g + alpha r_k`, `b_k = mu_b + beta r_k + gamma g_k`; the
 * result is `sum_k pi_k (r_k, g_k, b_k)`. (The reference averages 100 samples instead.)
 *
 * @param params Mixture parameters, float32 `[batch, height, width, 10 * nMix]`.
 * @returns Images `[batch, height, width, 3]` in [-1, 1]. Owned by the caller.
 * @category VAE
 */
export function discretizedMixLogisticMean(params: tf.Tensor4D): tf.Tensor4D {
  const n = checkParams(params, 'discretizedMixLogisticMean');
  return tf.tidy(() => {
    const { logits, channels } = unpackParams(params, n);
    const [red, green, blue] = channels as [ChannelParams, ChannelParams, ChannelParams];
    const pi = tf.softmax(logits);
    const m0 = red.means;
    const m1 = tf.add(green.means, tf.mul(red.coeffs, m0));
    const m2 = tf.add(tf.add(blue.means, tf.mul(green.coeffs, m0)), tf.mul(blue.coeffs, m1));
    const mix = (m: tf.Tensor) => tf.sum(tf.mul(pi, m), -1, true);
    return tf.clipByValue(tf.concat([mix(m0), mix(m1), mix(m2)], 3), -1, 1) as tf.Tensor4D;
  });
}
