/**
 * How a {@link VNCA} grows, one object per `growth` option: the seed grid's size, the rollout
 * from it, the default steps of regrowth and inpainting, the rollout length of a training
 * step and whether training draws from a sample pool.
 * @module
 */
import type * as tf from '@tensorflow/tfjs-core';
import { grow, runSteps, type GrowResult, type Rule } from '../growth/grow.js';
import type { Rng } from '../core/random.js';
import type { VNCAConfig } from './config.js';

/** Options of one rollout. */
export interface RolloutOptions {
  returnStates?: boolean;
  /** Length of a fixed rollout (default: the middle of `stepsRange`); a doubling rollout ignores it. */
  steps?: number;
  seed?: number;
  checkpoint?: boolean | number | 'auto';
}

/** One growth scheme of the VNCA's decoder. @internal */
export interface GrowthPlan {
  /** Height and width of the grid z is written into. */
  seedSize(c: VNCAConfig): number;
  /** Grows a seed grid to the image's size. */
  rollout(rule: Rule, seed: tf.Tensor4D, c: VNCAConfig, options: RolloutOptions): GrowResult;
  /** Steps `VNCA.regenerate` runs by default. */
  regrowthSteps(c: VNCAConfig): number;
  /** Steps `VNCA.inpaint` runs by default (in its first round). */
  inpaintSteps(c: VNCAConfig): number;
  /** Rounds of completion `VNCA.inpaint` runs by default. */
  inpaintIterations(c: VNCAConfig): number;
  /** Rollout length of the next training step (`undefined`: the plan's own), drawn with `rng`. */
  trainingSteps(c: VNCAConfig, rng: Rng): number | undefined;
  /** Whether training keeps a sample pool of final states. */
  usesPool(c: VNCAConfig): boolean;
}

const common = (c: VNCAConfig, o: RolloutOptions) => ({ pUpdate: c.pUpdate, returnStates: o.returnStates, seed: o.seed, checkpoint: o.checkpoint ?? c.checkpoint });

/** The paper's headline scheme: update, divide every cell into 2x2, ..., from a small seed grid. */
const DOUBLING: GrowthPlan = {
  seedSize: (c) => c.imageSize / 2 ** c.nDoublings,
  rollout: (rule, seed, c, o) => grow(rule, seed, { ...common(c, o), stepsPerDoubling: c.stepsPerDoubling, nDoublings: c.nDoublings }),
  regrowthSteps: (c) => c.stepsPerDoubling,
  inpaintSteps: (c) => 2 * c.stepsPerDoubling,
  inpaintIterations: () => 2,
  trainingSteps: () => undefined,
  usesPool: () => false,
};

/** The non-doubling scheme: z in every cell of the full grid, a random number of steps in `stepsRange`. */
const FIXED: GrowthPlan = {
  seedSize: (c) => c.imageSize,
  rollout: (rule, seed, c, o) => runSteps(rule, seed, { ...common(c, o), steps: o.steps ?? Math.round((c.stepsRange[0] + c.stepsRange[1]) / 2) }),
  regrowthSteps: (c) => c.stepsRange[0],
  // Measured (docs/pretrained.md): a damage-trained fixed model fills a hole better, and with
  // truer shapes, from its posterior-mean decode refined by rounds of completion than after regrowth.
  inpaintSteps: () => 0,
  inpaintIterations: () => 3,
  trainingSteps: (c, rng) => c.stepsRange[0] + Math.floor(rng() * (c.stepsRange[1] - c.stepsRange[0] + 1)),
  usesPool: (c) => c.poolSize > 0,
};

/** Every growth scheme, by its `growth` option. @internal */
export const GROWTH_PLANS: Readonly<Record<'doubling' | 'fixed', GrowthPlan>> = { doubling: DOUBLING, fixed: FIXED };
