/**
 * The options of a {@link GrowingNCA}, their defaults and checks: the resolved config and the
 * target's checks, before a model is built.
 * @module
 */
import * as tf from '@tensorflow/tfjs-core';
import { VncaError, assertInt, assertNumber, assertRank, describe } from '../core/errors.js';

/**
 * Options of a {@link GrowingNCA}. Every default is the Distill article's
 * (Mordvintsev et al., "Growing Neural Cellular Automata", 2020), experiment 3
 * ("regenerating": sample pool and damage).
 *
 * @category Growing NCA
 */
export interface GrowingNCAOptions {
  /**
   * The pattern to grow: float32 `[height, width, 4]`, RGBA with premultiplied colour
   * (`rgb * alpha`), values in [0, 1]. Leave a transparent border of a few cells: the
   * grid has the target's size. The model keeps a copy.
   */
  target: tf.Tensor3D;
  /** Channels of a cell: RGBA + hidden. Default 16. */
  channels?: number;
  /** Units of the update rule's hidden layer. Default 128. */
  hidden?: number;
  /** Probability that a cell updates in a step. Default 0.5. */
  pUpdate?: number;
  /** States kept in the sample pool. Default 1024. */
  poolSize?: number;
  /** States drawn from the pool per training step. Default 8. */
  batchSize?: number;
  /** Inclusive range of the number of steps of a training rollout. Default [64, 96]. */
  stepsRange?: [number, number];
  /** Best states of each batch that get a random circle zeroed (regeneration training); 0 disables. Default 3. */
  damageCount?: number;
  /**
   * Training steps without damage before `damageCount` applies (the pool first learns to
   * grow, then to regrow, as in the article's demos). Default 0: damage from the start.
   */
  damageAfter?: number;
  /** Adam learning rate. Default 2e-3. */
  learningRate?: number;
  /**
   * Training steps after which the learning rate drops to `learningRate * decayFactor`
   * (the article's piecewise-constant schedule: 2e-3, then 2e-4 after 2000 steps).
   * Default 2000; 0 never decays.
   */
  decaySteps?: number;
  /** Factor applied to the learning rate after `decaySteps` training steps. Default 0.1. */
  decayFactor?: number;
  /** A cell is alive when some cell of its 3x3 neighbourhood has alpha above this. Default 0.1. */
  aliveThreshold?: number;
  /** Gradient checkpointing of training rollouts (see `RunOptions.checkpoint`). Default `'auto'`. */
  checkpoint?: boolean | number | 'auto';
  /**
   * Seed of the pool draws, rollout lengths, damage and update masks of training. Default:
   * random. (The rule's initial weights come from the tfjs initialisers.)
   */
  seed?: number;
}

/** The resolved options, without the target. @category Growing NCA */
export type GrowingNCAConfig = Required<Omit<GrowingNCAOptions, 'target' | 'seed'>> & { seed: number | null };

/** Options of {@link GrowingNCA.grow} and {@link GrowingNCA.regenerate}. @category Growing NCA */
export interface GrowingRunOptions {
  /** Also return every state along the way (the initial one first). Default false. */
  returnStates?: boolean;
  /** Seed of the update masks; without one they are random. */
  seed?: number;
}

/** The Distill article's settings. */
const DEFAULTS: Omit<GrowingNCAConfig, 'seed'> = {
  channels: 16,
  hidden: 128,
  pUpdate: 0.5,
  poolSize: 1024,
  batchSize: 8,
  stepsRange: [64, 96],
  damageCount: 3,
  damageAfter: 0,
  learningRate: 2e-3,
  decaySteps: 2000,
  decayFactor: 0.1,
  aliveThreshold: 0.1,
  checkpoint: 'auto',
};

/** Options with defaults filled in and checked; errors name `fn`. @internal */
export function resolveConfig(options: GrowingNCAOptions, fn: string): GrowingNCAConfig {
  const c = { ...DEFAULTS, ...options, seed: options.seed ?? null };
  assertInt(c.channels, fn, 'options.channels', 4);
  assertInt(c.hidden, fn, 'options.hidden', 1);
  assertNumber(c.pUpdate, fn, 'options.pUpdate', 0, 1, { min: true });
  assertInt(c.poolSize, fn, 'options.poolSize', 1);
  assertInt(c.batchSize, fn, 'options.batchSize', 1, c.poolSize);
  if (!Array.isArray(c.stepsRange) || c.stepsRange.length !== 2) {
    throw new VncaError(fn, 'options.stepsRange', `must be [min, max], but got ${describe(c.stepsRange)}.`);
  }
  assertInt(c.stepsRange[0], fn, 'options.stepsRange[0]', 1);
  assertInt(c.stepsRange[1], fn, 'options.stepsRange[1]', c.stepsRange[0]);
  // The worst state of a batch becomes the seed; damage goes to the others.
  assertInt(c.damageCount, fn, 'options.damageCount', 0, c.batchSize - 1);
  assertInt(c.damageAfter, fn, 'options.damageAfter', 0);
  assertNumber(c.learningRate, fn, 'options.learningRate', 0, Infinity, { min: true });
  assertInt(c.decaySteps, fn, 'options.decaySteps', 0);
  assertNumber(c.decayFactor, fn, 'options.decayFactor', 0, Infinity, { min: true });
  assertNumber(c.aliveThreshold, fn, 'options.aliveThreshold', 0);
  if (typeof c.checkpoint !== 'boolean' && c.checkpoint !== 'auto') assertInt(c.checkpoint, fn, 'options.checkpoint', 1);
  if (c.seed !== null) assertInt(c.seed, fn, 'options.seed');
  const { target: _target, ...config } = c as typeof c & { target?: unknown };
  return { ...config, stepsRange: [c.stepsRange[0], c.stepsRange[1]] };
}

/** Checks the target: float32 `[h >= 3, w >= 3, 4]`, finite. @internal */
export function checkTarget(target: unknown, fn: string): asserts target is tf.Tensor3D {
  assertRank(target, 3, fn, 'options.target', '[height, width, 4]');
  if (target.dtype !== 'float32') throw new VncaError(fn, 'options.target', `must be float32, but got ${target.dtype}.`);
  const [h, w, c] = target.shape;
  if (c !== 4 || h < 3 || w < 3) {
    throw new VncaError(fn, 'options.target', `must have shape [height, width, 4] with height and width >= 3, but got [${target.shape.join(', ')}].`);
  }
  // One reduction: the sum is NaN or ±Infinity when any value is.
  const sum = tf.tidy(() => tf.sum(target));
  const total = sum.dataSync()[0]!;
  sum.dispose();
  if (!Number.isFinite(total)) throw new VncaError(fn, 'options.target', `must be finite, but it holds NaN or ±Infinity (its sum is ${total}).`);
}
