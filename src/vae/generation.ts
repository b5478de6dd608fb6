/**
 * What a {@link VNCA} grows: cell states decoded from latents, images sampled from the prior,
 * reconstructions, latent interpolations, and states regrown after damage. The model's
 * methods check that it is not disposed and hand over here.
 * @module
 */
import * as tf from '@tensorflow/tfjs-core';
import { assertInt } from '../core/errors.js';
import { damage, type DamageRegion } from '../core/damage.js';
import { tfSeed } from '../core/random.js';
import { runSteps, type GrowResult } from '../growth/grow.js';
import { checkImages, checkLatents, checkStates, asSingleImage } from './checks.js';
import type { VNCA } from './VNCA.js';

/** {@link VNCA.decode}. @internal */
export function decodeLatents(
  model: VNCA, z: tf.Tensor2D, options: { returnStates?: boolean; steps?: number; seed?: number }, fn: string,
): tf.Tensor4D | Required<GrowResult> {
  checkLatents(model.config, z, fn);
  if (options.steps !== undefined) assertInt(options.steps, fn, 'options.steps', 0);
  const seed = model.seedGrid(z);
  try {
    const res = model.rollout(seed, { returnStates: options.returnStates, steps: options.steps, seed: options.seed });
    return options.returnStates ? (res as Required<GrowResult>) : res.state;
  } finally {
    seed.dispose();
  }
}

/** {@link VNCA.sample}. @internal */
export function sampleImages(model: VNCA, n: number, options: { seed?: number }, fn: string): tf.Tensor4D {
  assertInt(n, fn, 'n', 1);
  if (options.seed !== undefined) assertInt(options.seed, fn, 'options.seed');
  return tf.tidy(() => {
    const z = tf.randomNormal([n, model.config.zSize], 0, 1, 'float32', tfSeed(options.seed)) as tf.Tensor2D;
    const state = model.decode(z, { seed: options.seed });
    return model.render(state);
  });
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
