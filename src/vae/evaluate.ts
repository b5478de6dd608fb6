/**
 * Measures of a trained {@link VNCA}: the importance-weighted bound on log p(x) (the paper's
 * evaluation). Measures of regrowth live in regeneration.ts.
 * @module
 */
import * as tf from '@tensorflow/tfjs-core';
import { assertInt, VncaError } from '../core/errors.js';
import { decodeBytesPerSample, decodeChunk, describeLimit, formatBytes, memoryHeadroom } from './memory.js';
import { DiagonalGaussian, standardNormalLogProb } from './distributions.js';
import { iwae, natsToBitsPerDim } from './losses.js';
import type { VNCAConfig } from './config.js';

/** Result of {@link VNCA.evaluate}. @category VAE */
export interface EvaluateResult {
  /** Mean importance-weighted lower bound on log p(x), nats per image (higher is better). */
  logLikelihood: number;
  /** The same as bits per dimension (positive; lower is better). */
  bitsPerDim: number;
  /** Per-image bounds, nats. */
  perImage: Float32Array;
  /** Importance samples used per image. */
  importanceSamples: number;
}

/** Options of {@link VNCA.evaluate}. @category VAE */
export interface EvaluateOptions {
  /** Importance samples K per image. Default 128 (the paper's). */
  importanceSamples?: number;
  /**
   * Latents decoded at once. Default 32. Where the backend's memory is limited (wasm, 4 GiB)
   * and the estimated decode of this many does not fit, fewer are decoded at once (the bound
   * is the same when pUpdate is 1).
   */
  decodeBatchSize?: number;
  /** Seed of the importance samples (image i uses seed + i). Default: fresh randomness. */
  seed?: number;
}

/** What {@link evaluate} needs of its model. @internal */
export interface EvaluableModel {
  readonly config: VNCAConfig;
  encode(x: tf.Tensor4D): DiagonalGaussian;
  decode(z: tf.Tensor2D): tf.Tensor4D;
  logLikelihood(state: tf.Tensor4D, x: tf.Tensor4D): tf.Tensor1D;
}

/**
 * Importance-weighted lower bound on log p(x) (IWAE, Burda et al.) with K samples per image,
 * the paper's evaluation (K = 128). Decodes the K samples of one image in chunks of
 * `decodeBatchSize`, so K = 128 at 32x32 fits in memory.
 *
 * @param x Images `[n, imageSize, imageSize, imageChannels]`.
 * @param options importanceSamples (default 128), decodeBatchSize (default 32), seed.
 * @returns Mean bound in nats (and bits/dim), and the per-image bounds.
 */
export function evaluate(model: EvaluableModel, x: tf.Tensor4D, options: EvaluateOptions, fn: string): EvaluateResult {
  const k = options.importanceSamples ?? 128;
  assertInt(k, fn, 'options.importanceSamples', 1);
  const wanted = options.decodeBatchSize ?? 32;
  assertInt(wanted, fn, 'options.decodeBatchSize', 1);
  // The K latents and their log-densities stay while the chunks are decoded.
  const chunk = decodeChunk(model.config, Math.min(wanted, k), 4 * k * (model.config.zSize + 4));
  if (chunk === 0) {
    throw new VncaError(fn, 'options.importanceSamples', `must be small enough that one decode fits, but decoding one latent takes about ${formatBytes(decodeBytesPerSample(model.config))} and ${describeLimit()} has ${formatBytes(memoryHeadroom())} free (K = ${k}).`);
  }
  const n = x.shape[0];
  const perImage = new Float32Array(n);
  const q = model.encode(x);
  try {
    for (let i = 0; i < n; i++) {
      const bound = tf.tidy(() => {
        const xi = tf.slice(x, [i, 0, 0, 0], [1, -1, -1, -1]) as tf.Tensor4D;
        const mean = tf.slice(q.mean, [i, 0], [1, -1]);
        const logStd = tf.slice(q.logStd, [i, 0], [1, -1]);
        const qi = new DiagonalGaussian(mean as tf.Tensor2D, logStd as tf.Tensor2D);
        const seed = options.seed === undefined ? undefined : options.seed + i;
        const z = qi.sample(k, seed) as tf.Tensor3D; // [k, 1, d]
        const logQz = qi.logProb(z); // [k, 1]
        const logPz = standardNormalLogProb(z); // [k, 1]
        const zFlat = tf.reshape(z, [k, model.config.zSize]) as tf.Tensor2D;
        const parts: tf.Tensor1D[] = [];
        for (let s = 0; s < k; s += chunk) {
          const m = Math.min(chunk, k - s);
          parts.push(tf.tidy(() => {
            const zc = tf.slice(zFlat, [s, 0], [m, -1]) as tf.Tensor2D;
            const state = model.decode(zc);
            const xs = tf.tile(xi, [m, 1, 1, 1]) as tf.Tensor4D;
            return model.logLikelihood(state, xs);
          }));
        }
        const logPx = tf.reshape(tf.concat(parts), [k, 1]);
        return iwae(logPx as tf.Tensor2D, logPz as tf.Tensor2D, logQz as tf.Tensor2D);
      });
      perImage[i] = bound.dataSync()[0]!;
      bound.dispose();
    }
  } finally {
    q.dispose();
  }
  const logLikelihood = perImage.reduce((a, b) => a + b, 0) / n;
  const dims = model.config.imageSize * model.config.imageSize * model.config.imageChannels;
  return { logLikelihood, bitsPerDim: natsToBitsPerDim(logLikelihood, dims), perImage, importanceSamples: k };
}
