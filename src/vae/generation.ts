/**
 * What a {@link VNCA} grows: cell states decoded from latents, images sampled from the prior,
 * reconstructions, latent interpolations, and states regrown after damage. The model's
 * methods check that it is not disposed and hand over here.
 * @module
 */
import * as tf from '@tensorflow/tfjs-core';
import { assertInt, VncaError } from '../core/errors.js';
import { damage, type DamageRegion } from '../core/damage.js';
import { tfSeed } from '../core/random.js';
import { runSteps, type GrowResult } from '../growth/grow.js';
import { checkImages, checkLatents, checkStates, asSingleImage } from './checks.js';
import type { VNCA } from './VNCA.js';
import type { VNCAConfig } from './config.js';
import { cellStepsPerSample, decodeBytesPerSample, decodeChunk, describeLimit, formatBytes, memoryHeadroom } from './memory.js';

/**
 * {@link VNCA.decode}. Where the backend's memory is limited (wasm) and the estimated decode of
 * the whole batch does not fit, the batch is decoded in chunks that do (see memory.ts): the
 * same states when pUpdate is 1; with pUpdate < 1 each chunk draws its update masks from
 * `seed` anew. A batch whose output alone does not fit is refused. @internal
 */
export function decodeLatents(
  model: VNCA, z: tf.Tensor2D, options: { returnStates?: boolean; steps?: number; seed?: number }, fn: string,
): tf.Tensor4D | Required<GrowResult> {
  checkLatents(model.config, z, fn);
  if (options.steps !== undefined) assertInt(options.steps, fn, 'options.steps', 0);
  const c = model.config;
  const n = z.shape[0];
  // What must stay: the final states, or with returnStates every state of the rollout.
  const keptPerSample = 4 * c.zSize * (options.returnStates ? cellStepsPerSample(c, options.steps) + c.imageSize ** 2 : c.imageSize ** 2);
  const chunk = decodeChunk(c, n, n * keptPerSample);
  // With returnStates the batch cannot be split: every latent's states and decode at once.
  if (chunk === 0 || (options.returnStates && chunk < n)) refuse(c, n, keptPerSample, 'z', 'latents', fn, !options.returnStates);
  const run = (zc: tf.Tensor2D) => {
    const seed = model.seedGrid(zc);
    try {
      return model.rollout(seed, { returnStates: options.returnStates, steps: options.steps, seed: options.seed });
    } finally {
      seed.dispose();
    }
  };
  if (chunk >= n) {
    const res = run(z);
    return options.returnStates ? (res as Required<GrowResult>) : res.state;
  }
  return inChunks(n, chunk, (start, size) => run(tf.slice(z, start, size) as tf.Tensor2D).state);
}

/** `f` of each chunk `[start, start + size)` of `n`, concatenated; the parts are freed. */
function inChunks(n: number, chunk: number, f: (start: number, size: number) => tf.Tensor4D): tf.Tensor4D {
  const parts: tf.Tensor4D[] = [];
  try {
    for (let start = 0; start < n; start += chunk) parts.push(tf.tidy(() => f(start, Math.min(chunk, n - start))));
    return tf.concat(parts) as tf.Tensor4D;
  } finally {
    tf.dispose(parts);
  }
}

/**
 * Throws the error of a call whose kept output (`perSample` bytes each) cannot fit: beside one
 * chunk's decode when `chunked`, else (all decoded at once) beside every sample's decode.
 */
function refuse(c: VNCAConfig, n: number, perSample: number, arg: string, what: string, fn: string, chunked = true): never {
  const room = memoryHeadroom();
  const decode = decodeBytesPerSample(c);
  const most = Math.max(0, Math.floor(chunked ? (room - decode) / perSample : room / (perSample + decode)));
  const one = what.replace(/s$/, '');
  const takes = chunked
    ? `the result alone takes ${formatBytes(perSample)} per ${one} (${formatBytes(n * perSample)})`
    : `the result and its decode, all at once, take ${formatBytes(perSample + decode)} per ${one} (${formatBytes(n * (perSample + decode))})`;
  throw new VncaError(fn, arg, `must hold at most ${most} ${what} here, but got ${n}: ${takes}, and ${describeLimit()} has ${formatBytes(room)} free. Split the call.`);
}

/**
 * {@link VNCA.sample}. Where the backend's memory is limited (wasm) and the images do not fit
 * decoded at once, they are decoded and rendered in chunks (z is drawn at once, so the images
 * are the same when pUpdate is 1); `n` whose images alone do not fit is refused. @internal
 */
export function sampleImages(model: VNCA, n: number, options: { seed?: number }, fn: string): tf.Tensor4D {
  assertInt(n, fn, 'n', 1);
  if (options.seed !== undefined) assertInt(options.seed, fn, 'options.seed');
  const c = model.config;
  const keptPerSample = 4 * (c.imageSize ** 2 * c.imageChannels + c.zSize);
  const chunk = decodeChunk(c, n, n * keptPerSample);
  if (chunk === 0) refuse(c, n, keptPerSample, 'n', 'images', fn);
  const z = tf.randomNormal([n, c.zSize], 0, 1, 'float32', tfSeed(options.seed)) as tf.Tensor2D;
  try {
    if (chunk >= n) return tf.tidy(() => model.render(model.decode(z, { seed: options.seed })));
    return inChunks(n, chunk, (start, size) => model.render(model.decode(tf.slice(z, start, size) as tf.Tensor2D, { seed: options.seed })));
  } finally {
    z.dispose();
  }
}

/** {@link VNCA.reconstruct}. @internal */
export function reconstructImages(model: VNCA, x: tf.Tensor4D, fn: string): tf.Tensor4D {
  checkImages(model.config, x, fn);
  const q = model.encode(x);
  try {
    return tf.tidy(() => model.render(model.decode(q.mean as tf.Tensor2D)));
  } finally {
    q.dispose();
  }
}

/** {@link VNCA.interpolate}. @internal */
export function interpolateImages(model: VNCA, x1: tf.Tensor, x2: tf.Tensor, n: number, fn: string): tf.Tensor4D {
  assertInt(n, fn, 'n', 2);
  const a = asSingleImage(model.config, x1, fn, 'x1');
  const b = asSingleImage(model.config, x2, fn, 'x2');
  try {
    const pair = tf.concat([a, b]) as tf.Tensor4D;
    const q = model.encode(pair);
    pair.dispose();
    try {
      return tf.tidy(() => {
        const [m1, m2] = tf.split(q.mean, 2);
        const t = tf.reshape(tf.linspace(0, 1, n), [n, 1]);
        const z = tf.add(tf.mul(tf.sub(1, t), m1!), tf.mul(t, m2!)) as tf.Tensor2D;
        return model.render(model.decode(z));
      });
    } finally {
      q.dispose();
    }
  } finally {
    a.dispose();
    b.dispose();
  }
}

/** {@link VNCA.regenerate}. @internal */
export function regenerateStates(
  model: VNCA, state: tf.Tensor4D, region: DamageRegion, options: { steps?: number; returnStates?: boolean; seed?: number }, fn: string,
): GrowResult {
  checkStates(model.config, state, fn);
  const c = model.config;
  const steps = options.steps ?? model.growthPlan.regrowthSteps(c);
  assertInt(steps, fn, 'options.steps', 0);
  const damaged = damage(state, region);
  try {
    return runSteps(model.rule, damaged, { steps, pUpdate: c.pUpdate, returnStates: options.returnStates, seed: options.seed });
  } finally {
    damaged.dispose();
  }
}
