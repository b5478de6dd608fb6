/**
 * The VNCA's options, their defaults (the paper's doubling MNIST model), the non-doubling
 * preset and {@link resolveConfig}, which checks and completes them.
 * @module
 */
import {
  assertInt, assertNumber, assertOneOf, describe, VncaError,
} from '../core/errors.js';
import type { UpdateRule } from '../layers/UpdateRule.js';
import { LIKELIHOODS } from './likelihood.js';

/**
 * Options of a {@link VNCA}. Every default is the paper's doubling VNCA on MNIST
 * (Palm et al. 2022): 6,585,088 parameters.
 *
 * @category VAE
 */
export interface VNCAOptions {
  /** Size of the latent z and number of channels of each cell's state. Default 256. */
  zSize?: number;
  /** Channels inside the residual blocks of the update rule. Default 256. */
  hidden?: number;
  /** Residual blocks of the update rule. Default 4. */
  nBlocks?: number;
  /** Activation after the rule's first convolution: 'linear' (doubling model, default) or 'elu' (non-doubling). */
  inActivation?: 'linear' | 'elu';
  /** Whether the rule's last convolution has a bias. Default true (the non-doubling model's has none). */
  outBias?: boolean;
  /** Update steps before the first doubling and after each (doubling growth). Default 8. */
  stepsPerDoubling?: number;
  /** Number of 2x2 cell divisions (doubling growth). Default 4: 2x2 → 32x32. */
  nDoublings?: number;
  /** Probability that a cell updates in a step. Default 1 (the paper's doubling model). */
  pUpdate?: number;
  /** Image height and width. Default 32 (MNIST padded by 2). */
  imageSize?: number;
  /** Image channels: 1 (binary images) or 3 (8-bit colour). Default 1. */
  imageChannels?: number;
  /** Output channels of the encoder's convolutions. Default [32, 64, 128, 256, 512]. */
  encoderChannels?: number[];
  /**
   * Likelihood p(x|z) read from the first channels of the final state: `'bernoulli'`
   * (channel 0 holds the logit; binary images) or `'dmol'` (discretised mixture of
   * logistics, 10 channels per component; colour images). Default `'bernoulli'`.
   */
  likelihood?: 'bernoulli' | 'dmol';
  /** Mixture components of the `'dmol'` likelihood. Default 1. */
  nMix?: number;
  /**
   * `'doubling'` (the paper's headline model: z seeds a small grid that divides) or
   * `'fixed'` (the non-doubling VNCA: z in every cell of the full grid, a random number of
   * steps in `stepsRange`). Default `'doubling'`.
   */
  growth?: 'doubling' | 'fixed';
  /** Inclusive range of the number of steps of a `'fixed'` rollout. Default [32, 64]. */
  stepsRange?: [number, number];
  /**
   * Sample-pool training of a `'fixed'` model (the paper's non-doubling VNCA: 1024): the final
   * states of earlier batches, with their images, are kept in a {@link SamplePool}; a part of each
   * batch starts from pooled states instead of the seed, and some of those are damaged first, so
   * the automaton learns to persist and to regenerate. 0 (default) turns it off.
   */
  poolSize?: number;
  /** Fraction of each batch drawn from the pool once it is full. Default 0.5. */
  poolFraction?: number;
  /** Fraction of each batch (taken from the pooled part) that gets a square of cells zeroed. Default 0.25. */
  damageFraction?: number;
  /** Side of the damaged square in cells. Default 14 (the paper, on 28x28). */
  damageSize?: number;
  /** Adam learning rate. Default 1e-4. */
  learningRate?: number;
  /**
   * Adam's epsilon. Default `'auto'`: 1e-8 (PyTorch's default, the reference's), unless the
   * backend's own epsilon (`tf.backend().epsilon()`) is larger than 1e-7, as on WebGL with
   * 16-bit floats (1e-4), where 1e-8 would round to 0: then the backend's.
   */
  adamEpsilon?: number | 'auto';
  /** Adam's decay rate of the first moment. Default 0.9. */
  adamBeta1?: number;
  /** Adam's decay rate of the second moment. Default 0.999. */
  adamBeta2?: number;
  /** Global-norm gradient clip; 0 disables. Default 10. */
  clipNorm?: number;
  /**
   * Keeps the cell states of training rollouts bounded (an overflow loss, as in the
   * self-organising texture NCAs): values of the final state beyond ±`stateBound` add their
   * excess, summed per image and averaged over the batch, to the loss, and states written back
   * to the sample pool are clipped to ±`stateBound`. Without it the states of long pooled
   * rollouts can grow without limit until training diverges. 0 (default) turns it off; the
   * shipped `mnist-regen` model was trained with 10.
   */
  stateBound?: number;
  /**
   * Gradient checkpointing of rollouts in training (see {@link RunOptions.checkpoint}). Default
   * `'auto'`: on when the rollout's activations would pass 1 GiB (the paper's model from batch 8 on).
   */
  checkpoint?: boolean | number | 'auto';
  /**
   * A custom update rule (an {@link UpdateRule} subclass instance) mapping `[b,h,w,zSize]`
   * to a delta of the same shape. Default: the paper's {@link ResidualUpdateRule}.
   */
  updateRule?: UpdateRule;
}

/**
 * The paper's second model, the non-doubling VNCA on MNIST (28x28): z written into every cell
 * of the full grid, update rule conv3x3 ; ELU ; conv1x1 (no bias, zero-initialised), a random
 * number of steps in [32, 64] per rollout, a pool of 1024 earlier final states (half of each
 * batch drawn from it, a quarter damaged with a 14x14 square), global-norm clip 1, batch 128.
 * Use as `new VNCA(NON_DOUBLING_MNIST)`; any option can be overridden.
 *
 * @category VAE
 */
export const NON_DOUBLING_MNIST: Readonly<VNCAOptions> = Object.freeze({
  growth: 'fixed',
  imageSize: 28,
  zSize: 128,
  hidden: 128,
  nBlocks: 0,
  inActivation: 'elu',
  outBias: false,
  stepsRange: [32, 64] as [number, number],
  poolSize: 1024,
  poolFraction: 0.5,
  damageFraction: 0.25,
  damageSize: 14,
  clipNorm: 1,
  encoderChannels: [32, 64, 128, 256, 512],
});

/** The resolved options (everything but the rule). @category VAE */
export type VNCAConfig = Required<Omit<VNCAOptions, 'updateRule'>>;

const DEFAULTS: VNCAConfig = {
  zSize: 256,
  hidden: 256,
  nBlocks: 4,
  inActivation: 'linear',
  outBias: true,
  stepsPerDoubling: 8,
  nDoublings: 4,
  pUpdate: 1,
  imageSize: 32,
  imageChannels: 1,
  encoderChannels: [32, 64, 128, 256, 512],
  likelihood: 'bernoulli',
  nMix: 1,
  growth: 'doubling',
  stepsRange: [32, 64],
  poolSize: 0,
  poolFraction: 0.5,
  damageFraction: 0.25,
  damageSize: 14,
  learningRate: 1e-4,
  adamEpsilon: 'auto',
  adamBeta1: 0.9,
  adamBeta2: 0.999,
  clipNorm: 10,
  stateBound: 0,
  checkpoint: 'auto',
};

/** Validates and fills in options. @internal */
export function resolveConfig(options: VNCAOptions, fn: string): VNCAConfig {
  if (typeof options !== 'object' || options === null) {
    throw new VncaError(fn, 'options', `must be an object, but got ${describe(options)}.`);
  }
  const known = new Set([...Object.keys(DEFAULTS), 'updateRule']);
  for (const key of Object.keys(options)) {
    if (!known.has(key)) throw new VncaError(fn, `options.${key}`, `is not a VNCA option (known: ${[...known].join(', ')}).`);
  }
  const { updateRule: _rule, ...rest } = options;
  const c: VNCAConfig = { ...DEFAULTS, ...(rest as Partial<VNCAConfig>) };
  assertInt(c.zSize, fn, 'options.zSize', 1);
  assertInt(c.hidden, fn, 'options.hidden', 1);
  assertInt(c.nBlocks, fn, 'options.nBlocks', 0);
  assertInt(c.stepsPerDoubling, fn, 'options.stepsPerDoubling', 0);
  assertInt(c.nDoublings, fn, 'options.nDoublings', 0, 12);
  assertNumber(c.pUpdate, fn, 'options.pUpdate', 0, 1, { min: true });
  assertInt(c.imageSize, fn, 'options.imageSize', 1);
  assertInt(c.imageChannels, fn, 'options.imageChannels', 1);
  assertOneOf(c.likelihood, ['bernoulli', 'dmol'] as const, fn, 'options.likelihood');
  assertOneOf(c.inActivation, ['linear', 'elu'] as const, fn, 'options.inActivation');
  if (typeof c.outBias !== 'boolean') throw new VncaError(fn, 'options.outBias', `must be a boolean, but got ${describe(c.outBias)}.`);
  assertInt(c.nMix, fn, 'options.nMix', 1);
  assertOneOf(c.growth, ['doubling', 'fixed'] as const, fn, 'options.growth');
  assertNumber(c.learningRate, fn, 'options.learningRate', 0, Infinity, { min: true });
  assertNumber(c.clipNorm, fn, 'options.clipNorm', 0);
  assertNumber(c.stateBound, fn, 'options.stateBound', 0);
  if (c.adamEpsilon !== 'auto') assertNumber(c.adamEpsilon, fn, 'options.adamEpsilon', 0, Infinity, { min: true });
  assertNumber(c.adamBeta1, fn, 'options.adamBeta1', 0, 1, { max: true });
  assertNumber(c.adamBeta2, fn, 'options.adamBeta2', 0, 1, { max: true });
  if (typeof c.checkpoint !== 'boolean' && c.checkpoint !== 'auto') assertInt(c.checkpoint, fn, 'options.checkpoint', 1);
  if (!Array.isArray(c.encoderChannels) || c.encoderChannels.length < 1) {
    throw new VncaError(fn, 'options.encoderChannels', `must be a non-empty array of positive integers, but got ${describe(c.encoderChannels)}.`);
  }
  c.encoderChannels.forEach((v, i) => assertInt(v, fn, `options.encoderChannels[${i}]`, 1));
  if (!Array.isArray(c.stepsRange) || c.stepsRange.length !== 2) {
    throw new VncaError(fn, 'options.stepsRange', `must be [min, max], but got ${describe(c.stepsRange)}.`);
  }
  assertInt(c.stepsRange[0], fn, 'options.stepsRange[0]', 0);
  assertInt(c.stepsRange[1], fn, 'options.stepsRange[1]', c.stepsRange[0]);
  assertInt(c.poolSize, fn, 'options.poolSize', 0);
  assertNumber(c.poolFraction, fn, 'options.poolFraction', 0, 1);
  assertNumber(c.damageFraction, fn, 'options.damageFraction', 0, c.poolFraction);
  assertInt(c.damageSize, fn, 'options.damageSize', 0, c.poolSize > 0 ? c.imageSize : Infinity);
  if (c.poolSize > 0 && c.growth !== 'fixed') {
    throw new VncaError(fn, 'options.poolSize', `needs growth 'fixed' (pooled states are full-size grids), but growth is '${c.growth}'.`);
  }
  if (c.growth === 'doubling') {
    const seed = c.imageSize / 2 ** c.nDoublings;
    if (!Number.isInteger(seed)) {
      throw new VncaError(fn, 'options.imageSize', `must be divisible by 2^nDoublings = ${2 ** c.nDoublings} for doubling growth, but got ${c.imageSize}.`);
    }
  }
  const likelihood = LIKELIHOODS[c.likelihood];
  if (c.imageChannels !== likelihood.imageChannels) {
    throw new VncaError(fn, 'options.imageChannels', `must be ${likelihood.imageChannels} with the '${c.likelihood}' likelihood, but got ${c.imageChannels}.`);
  }
  const needed = likelihood.stateChannels(c.nMix);
  if (c.zSize < needed) {
    throw new VncaError(fn, 'options.zSize', `must be at least ${needed} (the likelihood's channels), but got ${c.zSize}.`);
  }
  return { ...c, encoderChannels: [...c.encoderChannels], stepsRange: [c.stepsRange[0], c.stepsRange[1]] };
}

/** A class of update rule that {@link VNCA.load} can rebuild from its config. @category VAE */
export type UpdateRuleClass = (new (config: never) => UpdateRule) & { className: string };
