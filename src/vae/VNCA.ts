import * as tf from '@tensorflow/tfjs-core';
import {
  assertInt, assertNumber, assertOneOf, assertRank, assertState, assertTensor, describe, VncaError,
} from '../core/errors.js';
import { damage, type DamageRegion } from '../core/damage.js';
import { SamplePool, damageSubset, type PoolSample } from '../core/SamplePool.js';
import { grow, runSteps, ensureBuilt, type GrowResult } from '../growth/grow.js';
import { UpdateRule } from '../layers/UpdateRule.js';
import { ResidualUpdateRule } from '../layers/ResidualUpdateRule.js';
import { PerceptionUpdateRule } from '../layers/PerceptionUpdateRule.js';
import { enableWasmTraining } from '../backend/wasm/register.js';
import { DiagonalGaussian, standardNormalLogProb } from './distributions.js';
import { bernoulliLogProb, discretizedMixLogisticLogProb, discretizedMixLogisticMean } from './likelihoods.js';
import { iwae, natsToBitsPerDim } from './losses.js';
import { Encoder } from './Encoder.js';
import { mulberry32 } from '../core/random.js';
import { relativeWeightName, resolveHandler, saveArtifacts } from '../core/io.js';
import { clipByGlobalNorm, globalNorm } from './clip.js';
import { parseSafetensors } from './safetensors.js';
import { pytorchSizes, pytorchToNamedWeights } from './pytorch.js';

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
  /** Global-norm gradient clip; 0 disables. Default 10. */
  clipNorm?: number;
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
   * z = mean + exp(logStd) * eps (one sample per image). Default: fresh randomness.
   */
  seed?: number;
  /**
   * The noise eps itself, float32 `[batch, zSize]` (overrides `seed`; not disposed). Row `i` is
   * image `i`'s, so the rows of a split batch with the matching rows of one noise tensor give
   * the same per-image terms as the whole batch. `tf.randomNormal([batch, zSize], 0, 1,
   * 'float32', s)` is the noise that `seed: s` draws.
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
  /** Seed of the batch sampler. Default 0. */
  seed?: number;
  /** Called after each step. Returning `false` stops training. */
  onProgress?: (p: FitProgress) => void | boolean | Promise<void | boolean>;
}

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
  clipNorm: 10,
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
  if (c.likelihood === 'bernoulli' && c.imageChannels !== 1) {
    throw new VncaError(fn, 'options.imageChannels', `must be 1 with the 'bernoulli' likelihood, but got ${c.imageChannels}.`);
  }
  if (c.likelihood === 'dmol' && c.imageChannels !== 3) {
    throw new VncaError(fn, 'options.imageChannels', `must be 3 with the 'dmol' likelihood, but got ${c.imageChannels}.`);
  }
  const needed = c.likelihood === 'bernoulli' ? 1 : 10 * c.nMix;
  if (c.zSize < needed) {
    throw new VncaError(fn, 'options.zSize', `must be at least ${needed} (the likelihood's channels), but got ${c.zSize}.`);
  }
  return { ...c, encoderChannels: [...c.encoderChannels], stepsRange: [c.stepsRange[0], c.stepsRange[1]] };
}


/** A class of update rule that {@link VNCA.load} can rebuild from its config. @category VAE */
export type UpdateRuleClass = (new (config: never) => UpdateRule) & { className: string };

const VNCA_FORMAT = 'vnca';
const VNCA_FORMAT_VERSION = 1;

function buildRule(spec: { className: string; config: tf.serialization.ConfigDict }, classes: UpdateRuleClass[], fn: string): UpdateRule {
  const registry = tf.serialization.SerializationMap.getMap().classNameMap as Record<string, [unknown, unknown]>;
  const builtIn = [ResidualUpdateRule, PerceptionUpdateRule] as unknown as UpdateRuleClass[];
  const cls = [...classes, ...builtIn].find((c) => c.className === spec.className)
    ?? (registry[spec.className]?.[0] as UpdateRuleClass | undefined);
  if (!cls) {
    throw new VncaError(fn, 'updateRule', `'${spec.className}' is not a known update rule class: pass it in options.updateRules or register it with tf.serialization.registerClass.`);
  }
  const rule = new cls(spec.config as never);
  if (!(rule instanceof UpdateRule)) throw new VncaError(fn, 'updateRule', `'${spec.className}' must extend UpdateRule.`);
  return rule;
}

/**
 * The Variational Neural Cellular Automaton (Palm et al., ICLR 2022): a VAE whose decoder is
 * a neural cellular automaton. An {@link Encoder} maps an image to q(z|x) = N(mu, exp(logsigma)^2);
 * z is copied into every cell of a small seed grid (2x2 by default) and the update rule grows
 * it, dividing every cell into 2x2 after each `stepsPerDoubling` steps, until the grid has the
 * image's size. The likelihood p(x|z) is read from the first channels of the final cells.
 *
 * Runs on any tfjs backend. `new VNCA()` is the paper's MNIST model (6,585,088 parameters).
 *
 * @example
 * ```ts
 * import * as tf from '@tensorflow/tfjs-core';
 * import '@tensorflow/tfjs-backend-wasm';
 * import { VNCA } from 'vnca';
 * await tf.setBackend('wasm');
 * const model = new VNCA({ zSize: 64, hidden: 64 });
 * const stats = model.trainStep(batch);        // batch: [32, 32, 32, 1] in {0, 1}
 * const images = model.sample(16);             // [16, 32, 32, 1] pixel probabilities
 * ```
 * @category VAE
 */
export class VNCA {
  /** The resolved configuration. */
  readonly config: VNCAConfig;
  /** The encoder: `[b, H, W, C]` → `[b, 2 * zSize]` = [mu, logsigma]. */
  readonly encoder: Encoder;
  /** The update rule of the decoding automaton: `[b, h, w, zSize]` → delta. */
  readonly rule: UpdateRule;
  private optimizer: tf.Optimizer | null = null;
  private disposed = false;
  private readonly rng = mulberry32(0x5eed);
  private pool: SamplePool | null = null;
  private poolFill: { states: tf.Tensor4D[]; images: tf.Tensor4D[]; count: number } = { states: [], images: [], count: 0 };

  /**
   * @param options Sizes and training settings; every default is the paper's model.
   */
  constructor(options: VNCAOptions = {}) {
    const fn = 'VNCA';
    this.config = resolveConfig(options, fn);
    const c = this.config;
    if (options.updateRule !== undefined && !(options.updateRule instanceof UpdateRule)) {
      throw new VncaError(fn, 'options.updateRule', `must be an UpdateRule instance, but got ${describe(options.updateRule)}.`);
    }
    this.encoder = new Encoder({
      inChannels: c.imageChannels, zSize: c.zSize, channels: c.encoderChannels, inputSize: c.imageSize,
    });
    this.rule = options.updateRule
      ?? new ResidualUpdateRule({
        channels: c.zSize, hidden: c.hidden, nBlocks: c.nBlocks, inActivation: c.inActivation, outBias: c.outBias,
      });
    // Build both now so weights exist (for counting, saving, loading) before any call.
    ensureBuilt(this.encoder as never, [null as never, c.imageSize, c.imageSize, c.imageChannels]);
    const s = this.seedSize;
    ensureBuilt(this.rule as never, [null as never, s, s, c.zSize]);
  }

  /** Entries in the sample pool (0 while it fills or without pooling). */
  get poolSize(): number {
    return this.pool?.size ?? 0;
  }

  /** Height and width of the grid z is written into. */
  get seedSize(): number {
    const c = this.config;
    return c.growth === 'doubling' ? c.imageSize / 2 ** c.nDoublings : c.imageSize;
  }

  /** Total trainable parameters (encoder + update rule). */
  countParams(): number {
    return this.encoder.countParams() + this.rule.countParams();
  }

  /** Every trainable variable, encoder first, then the update rule. */
  get trainableVariables(): tf.Variable[] {
    return [...this.encoder.trainableWeights, ...this.rule.trainableWeights].map((w) => w.read() as tf.Variable);
  }

  private check(fn: string): void {
    if (this.disposed) throw new VncaError(fn, 'this', 'is a disposed VNCA; create or load a new one.');
  }

  private checkImages(x: unknown, fn: string, arg = 'x'): asserts x is tf.Tensor4D {
    assertState(x, fn, arg);
    const c = this.config;
    const [, h, w, ch] = x.shape;
    if (h !== c.imageSize || w !== c.imageSize || ch !== c.imageChannels) {
      throw new VncaError(fn, arg, `must have shape [batch, ${c.imageSize}, ${c.imageSize}, ${c.imageChannels}], but got [${x.shape.join(', ')}].`);
    }
  }

  private checkZ(z: unknown, fn: string): asserts z is tf.Tensor2D {
    assertRank(z, 2, fn, 'z', '[batch, zSize]');
    if (z.shape[1] !== this.config.zSize) {
      throw new VncaError(fn, 'z', `must have shape [batch, ${this.config.zSize}], but got [${z.shape.join(', ')}].`);
    }
  }

  /**
   * The posterior q(z|x) of a batch of images.
   *
   * @param x Images `[batch, imageSize, imageSize, imageChannels]` with values in [0, 1].
   * @returns A {@link DiagonalGaussian} with `mean` and `logStd` `[batch, zSize]`; the caller disposes it.
   */
  encode(x: tf.Tensor4D): DiagonalGaussian {
    const fn = 'VNCA.encode';
    this.check(fn);
    this.checkImages(x, fn);
    const out = tf.tidy(() => this.encoder.apply(this.toModelInput(x)) as tf.Tensor2D);
    const q = DiagonalGaussian.fromEncoderOutput(out);
    out.dispose();
    return q;
  }

  /** Images in [0,1] as the encoder and likelihood see them. @internal */
  private toModelInput(x: tf.Tensor4D): tf.Tensor4D {
    // Binary images stay in {0,1}; colour images are mapped to [-1, 1] as PixelCNN++ does.
    return this.config.likelihood === 'dmol' ? (tf.sub(tf.mul(x, 2), 1) as tf.Tensor4D) : x;
  }

  /** The seed grid: z copied into every cell. @internal */
  seedGrid(z: tf.Tensor2D): tf.Tensor4D {
    const s = this.seedSize;
    return tf.tidy(() => tf.tile(tf.reshape(z, [z.shape[0], 1, 1, this.config.zSize]), [1, s, s, 1]) as tf.Tensor4D);
  }

  /** Rollout from a seed grid (doubling or fixed), `steps` overriding a fixed rollout's length. @internal */
  private rollout(
    seed: tf.Tensor4D, o: { returnStates?: boolean; steps?: number; seed?: number; checkpoint?: boolean | number | 'auto' },
  ): GrowResult {
    const c = this.config;
    const common = { pUpdate: c.pUpdate, returnStates: o.returnStates, seed: o.seed, checkpoint: o.checkpoint ?? c.checkpoint };
    if (c.growth === 'doubling') {
      return grow(this.rule, seed, { ...common, stepsPerDoubling: c.stepsPerDoubling, nDoublings: c.nDoublings });
    }
    const steps = o.steps ?? Math.round((c.stepsRange[0] + c.stepsRange[1]) / 2);
    return runSteps(this.rule, seed, { ...common, steps });
  }

  /**
   * Grows cell states from latents.
   *
   * @param z Latents `[batch, zSize]`.
   * @param options `returnStates` to get every intermediate state too; `steps` for a fixed-grid
   *   model (default: the middle of `stepsRange`); `seed` for the update masks when pUpdate < 1.
   * @returns The final cell states `[batch, imageSize, imageSize, zSize]` (channel 0 holds the
   *   Bernoulli logits), or with `returnStates` `{ state, states }` where `states` runs from the
   *   seed grid through every step and doubling. The caller owns every tensor.
   */
  decode(z: tf.Tensor2D, options?: { returnStates?: false; steps?: number; seed?: number }): tf.Tensor4D;
  decode(z: tf.Tensor2D, options: { returnStates: true; steps?: number; seed?: number }): Required<GrowResult>;
  decode(z: tf.Tensor2D, options: { returnStates?: boolean; steps?: number; seed?: number } = {}): tf.Tensor4D | Required<GrowResult> {
    const fn = 'VNCA.decode';
    this.check(fn);
    this.checkZ(z, fn);
    if (options.steps !== undefined) assertInt(options.steps, fn, 'options.steps', 0);
    const seed = this.seedGrid(z);
    try {
      const res = this.rollout(seed, { returnStates: options.returnStates, steps: options.steps, seed: options.seed });
      return options.returnStates ? (res as Required<GrowResult>) : res.state;
    } finally {
      seed.dispose();
    }
  }

  /**
   * The image a state shows: the likelihood's mean read from its first channels
   * (sigmoid of channel 0 for binary images; the mixture mean for colour).
   *
   * @param state Cell states `[batch, h, w, zSize]` (any grid size, e.g. an intermediate state).
   * @returns Images `[batch, h, w, imageChannels]` in [0, 1].
   */
  render(state: tf.Tensor4D): tf.Tensor4D {
    const fn = 'VNCA.render';
    this.check(fn);
    assertState(state, fn);
    if (state.shape[3] !== this.config.zSize) {
      throw new VncaError(fn, 'state', `must have ${this.config.zSize} channels, but got ${state.shape[3]}.`);
    }
    return tf.tidy(() => {
      if (this.config.likelihood === 'bernoulli') {
        return tf.sigmoid(tf.slice(state, [0, 0, 0, 0], [-1, -1, -1, 1])) as tf.Tensor4D;
      }
      const params = tf.slice(state, [0, 0, 0, 0], [-1, -1, -1, 10 * this.config.nMix]) as tf.Tensor4D;
      const mean = discretizedMixLogisticMean(params);
      return tf.clipByValue(tf.div(tf.add(mean, 1), 2), 0, 1) as tf.Tensor4D;
    });
  }

  /** log p(x | state) per image `[batch]`. @internal */
  logLikelihood(state: tf.Tensor4D, x: tf.Tensor4D): tf.Tensor1D {
    return tf.tidy(() => {
      if (this.config.likelihood === 'bernoulli') {
        const logits = tf.slice(state, [0, 0, 0, 0], [-1, -1, -1, 1]) as tf.Tensor4D;
        return bernoulliLogProb(logits, x);
      }
      const params = tf.slice(state, [0, 0, 0, 0], [-1, -1, -1, 10 * this.config.nMix]) as tf.Tensor4D;
      return discretizedMixLogisticLogProb(params, this.toModelInput(x));
    });
  }

  /**
   * New images from the prior: z ~ N(0, I), grow, read the likelihood's mean.
   *
   * @param n Number of images.
   * @param options `seed` for z (and the update masks).
   * @returns Images `[n, imageSize, imageSize, imageChannels]` in [0, 1] (pixel probabilities for binary images).
   */
  sample(n: number, options: { seed?: number } = {}): tf.Tensor4D {
    const fn = 'VNCA.sample';
    this.check(fn);
    assertInt(n, fn, 'n', 1);
    if (options.seed !== undefined) assertInt(options.seed, fn, 'options.seed');
    return tf.tidy(() => {
      const z = tf.randomNormal([n, this.config.zSize], 0, 1, 'float32', options.seed) as tf.Tensor2D;
      const state = this.decode(z, { seed: options.seed });
      return this.render(state);
    });
  }

  /**
   * Reconstructions: encode, decode the posterior mean, read the likelihood's mean.
   *
   * @param x Images `[batch, imageSize, imageSize, imageChannels]` in [0, 1].
   * @returns Images of the same shape in [0, 1].
   */
  reconstruct(x: tf.Tensor4D): tf.Tensor4D {
    const fn = 'VNCA.reconstruct';
    this.check(fn);
    this.checkImages(x, fn);
    const q = this.encode(x);
    try {
      return tf.tidy(() => this.render(this.decode(q.mean as tf.Tensor2D)));
    } finally {
      q.dispose();
    }
  }

  /**
   * Latent interpolation: decodes `n` points on the line between the posterior means of two images.
   *
   * @param x1 First image `[1, imageSize, imageSize, imageChannels]` (or without the batch axis).
   * @param x2 Second image, same shape.
   * @param n Number of images, both ends included (>= 2).
   * @returns Images `[n, imageSize, imageSize, imageChannels]`.
   */
  interpolate(x1: tf.Tensor, x2: tf.Tensor, n: number): tf.Tensor4D {
    const fn = 'VNCA.interpolate';
    this.check(fn);
    assertInt(n, fn, 'n', 2);
    const a = this.asSingleImage(x1, fn, 'x1');
    const b = this.asSingleImage(x2, fn, 'x2');
    try {
      const pair = tf.concat([a, b]) as tf.Tensor4D;
      const q = this.encode(pair);
      pair.dispose();
      try {
        return tf.tidy(() => {
          const [m1, m2] = tf.split(q.mean, 2);
          const t = tf.reshape(tf.linspace(0, 1, n), [n, 1]);
          const z = tf.add(tf.mul(tf.sub(1, t), m1!), tf.mul(t, m2!)) as tf.Tensor2D;
          return this.render(this.decode(z));
        });
      } finally {
        q.dispose();
      }
    } finally {
      a.dispose();
      b.dispose();
    }
  }

  private asSingleImage(x: tf.Tensor, fn: string, arg: string): tf.Tensor4D {
    assertTensor(x, fn, arg);
    const x4 = (x.rank === 3 ? tf.expandDims(x, 0) : tf.clone(x)) as tf.Tensor4D;
    try {
      this.checkImages(x4, fn, arg);
      if (x4.shape[0] !== 1) throw new VncaError(fn, arg, `must hold one image, but got a batch of ${x4.shape[0]}.`);
    } catch (e) {
      x4.dispose();
      throw e;
    }
    return x4;
  }

  /**
   * Per-example ELBO terms for a batch with one posterior sample each (differentiable).
   * @internal
   */
  elboTerms(
    x: tf.Tensor4D, rolloutSteps?: number, initial?: tf.Tensor4D | null, eps: { noise?: tf.Tensor2D; seed?: number } = {},
  ): { loss: tf.Scalar; reconstruction: tf.Scalar; kl: tf.Scalar; state: tf.Tensor4D } {
    return tf.tidy(() => {
      const out = this.encoder.apply(this.toModelInput(x)) as tf.Tensor2D;
      const q = DiagonalGaussian.fromEncoderOutput(out);
      // The same element-wise ops as q.sample(1, seed), so given noise = the seed's draw gives the same z.
      const z = eps.noise
        ? tf.add(q.mean, tf.mul(tf.exp(q.logStd), eps.noise)) as tf.Tensor2D
        : tf.reshape(q.sample(1, eps.seed), [x.shape[0], this.config.zSize]) as tf.Tensor2D;
      let seed = this.seedGrid(z);
      if (initial) {
        // Pooled states replace the seeds of the first entries of the batch.
        const rest = tf.slice(seed, [initial.shape[0], 0, 0, 0], [-1, -1, -1, -1]);
        seed = tf.concat([initial, rest]) as tf.Tensor4D;
      }
      const { state } = this.rollout(seed, { steps: rolloutSteps });
      const logPx = this.logLikelihood(state, x);
      const kl = q.klToStandardNormal();
      const reconstruction = tf.neg(tf.mean(logPx)) as tf.Scalar;
      const klMean = tf.mean(kl) as tf.Scalar;
      return { loss: tf.add(reconstruction, klMean) as tf.Scalar, reconstruction, kl: klMean, state };
    });
  }

  /** Draws the pooled part of a batch (damaging some), or nothing while the pool fills. @internal */
  private drawFromPool(batch: tf.Tensor4D): { drawn: PoolSample; images: tf.Tensor4D; initial: tf.Tensor4D } | null {
    const c = this.config;
    const b = batch.shape[0];
    const n = this.pool ? Math.min(Math.floor(b * c.poolFraction), this.pool.size) : 0;
    if (!this.pool || n === 0) return null;
    const drawn = this.pool.sample(n);
    const images = tf.tidy(() => tf.concat([drawn.payload as tf.Tensor4D, tf.slice(batch, [n, 0, 0, 0], [-1, -1, -1, -1])]) as tf.Tensor4D);
    const nDamage = Math.min(Math.floor(b * c.damageFraction), n);
    const initial = nDamage > 0
      ? damageSubset(drawn.states, nDamage, { shape: 'square', size: c.damageSize, rng: this.rng })
      : tf.clone(drawn.states);
    return { drawn, images, initial };
  }

  /** Writes a batch's final states back into the pool (filling it first). @internal */
  private updatePool(final: tf.Tensor4D, images: tf.Tensor4D, drawn: PoolSample | null): void {
    const c = this.config;
    if (!this.pool) {
      const f = this.poolFill;
      f.states.push(tf.clone(final));
      f.images.push(tf.clone(images));
      f.count += final.shape[0];
      if (f.count >= c.poolSize) {
        const [states, imgs] = tf.tidy(() => [
          tf.slice(tf.concat(f.states), 0, c.poolSize) as tf.Tensor4D,
          tf.slice(tf.concat(f.images), 0, c.poolSize) as tf.Tensor4D,
        ]);
        this.pool = new SamplePool(states!, { payload: imgs, seed: Math.floor(this.rng() * 2 ** 31) });
        tf.dispose([states!, imgs!, ...f.states, ...f.images]);
        this.poolFill = { states: [], images: [], count: 0 };
      }
      return;
    }
    // Pooled entries go back where they came from; fresh ones replace other random entries.
    const used = new Set(drawn?.indices ?? []);
    const fresh: number[] = [];
    const wanted = Math.min(final.shape[0] - used.size, this.pool.size - used.size);
    while (fresh.length < wanted) {
      const i = Math.floor(this.rng() * this.pool.size);
      if (!used.has(i)) { used.add(i); fresh.push(i); }
    }
    const indices = [...(drawn?.indices ?? []), ...fresh];
    const [s, x] = tf.tidy(() => [tf.slice(final, 0, indices.length) as tf.Tensor4D, tf.slice(images, 0, indices.length) as tf.Tensor4D]);
    this.pool.replace(indices, s!, x!);
    tf.dispose([s!, x!]);
  }

  /** Rollout length of the next training step: drawn from `stepsRange` for a fixed model. @internal */
  nextRolloutSteps(): number | undefined {
    const c = this.config;
    return c.growth === 'fixed'
      ? c.stepsRange[0] + Math.floor(this.rng() * (c.stepsRange[1] - c.stepsRange[0] + 1))
      : undefined;
  }

  /** Checks {@link GradientOptions} for a batch of `batch` images; errors name `fn`. @internal */
  checkGradientOptions(options: GradientOptions, batch: number, fn: string): void {
    if (typeof options !== 'object' || options === null) {
      throw new VncaError(fn, 'options', `must be an object, but got ${describe(options)}.`);
    }
    if (options.seed !== undefined) assertInt(options.seed, fn, 'options.seed');
    if (options.steps !== undefined) assertInt(options.steps, fn, 'options.steps', 0);
    if (options.noise !== undefined) {
      assertRank(options.noise, 2, fn, 'options.noise', '[batch, zSize]');
      const [nb, nz] = options.noise.shape;
      if (options.noise.dtype !== 'float32' || nb !== batch || nz !== this.config.zSize) {
        throw new VncaError(fn, 'options.noise', `must be a float32 tensor of shape [${batch}, ${this.config.zSize}], but got ${describe(options.noise)}.`);
      }
    }
  }

  /** Loss terms and gradients of a batch (the pooled part starting from `initial`). @internal */
  private gradientsOf(
    images: tf.Tensor4D, o: { steps?: number; initial?: tf.Tensor4D; noise?: tf.Tensor2D; seed?: number },
  ): Gradients & { state: tf.Tensor4D } {
    if (tf.getBackend() === 'wasm') enableWasmTraining();
    const vars = this.trainableVariables;
    let parts: { reconstruction: tf.Scalar; kl: tf.Scalar; state: tf.Tensor4D } | null = null;
    let result: { value: tf.Scalar; grads: tf.NamedTensorMap };
    try {
      result = tf.variableGrads(() => {
        const t = this.elboTerms(images, o.steps, o.initial, { noise: o.noise, seed: o.seed });
        parts = { reconstruction: tf.keep(t.reconstruction), kl: tf.keep(t.kl), state: tf.keep(t.state) };
        return t.loss;
      }, vars);
    } catch (e) {
      const kept = parts as { reconstruction: tf.Scalar; kl: tf.Scalar; state: tf.Tensor4D } | null;
      if (kept) tf.dispose([kept.reconstruction, kept.kl, kept.state]);
      throw e;
    }
    const p = parts as unknown as { reconstruction: tf.Scalar; kl: tf.Scalar; state: tf.Tensor4D };
    const out = {
      grads: result.grads,
      loss: result.value.dataSync()[0]!,
      reconstruction: p.reconstruction.dataSync()[0]!,
      kl: p.kl.dataSync()[0]!,
      state: p.state,
    };
    tf.dispose([result.value, p.reconstruction, p.kl]);
    return out;
  }

  /**
   * The gradients of a batch's loss (negative ELBO, one posterior sample per image, mean over
   * the batch) with respect to every trainable variable, without applying them: the first half
   * of {@link VNCA.trainStep}. Gradients of parts of a batch, weighted by their share of it,
   * add up to the whole batch's (given the same noise: see {@link GradientOptions.noise}), which
   * is how `ParallelVNCA` (from `vnca/node`) splits a batch across threads. Does not touch the sample pool of
   * a pooled model (its {@link VNCA.trainStep} does). On the wasm backend the missing training
   * kernels are registered first ({@link enableWasmTraining}).
   *
   * @param batch Images `[batch, imageSize, imageSize, imageChannels]` in [0, 1] (binary for 'bernoulli').
   * @param options The step's randomness: `seed` or `noise` of the posterior sample, `steps` of a fixed model.
   * @returns The gradients (keyed by variable name; the caller disposes them) and the loss terms.
   */
  computeGradients(batch: tf.Tensor4D, options: GradientOptions = {}): Gradients {
    const fn = 'VNCA.computeGradients';
    this.check(fn);
    this.checkImages(batch, fn, 'batch');
    this.checkGradientOptions(options, batch.shape[0], fn);
    const g = this.gradientsOf(batch, {
      steps: options.steps ?? this.nextRolloutSteps(), noise: options.noise, seed: options.seed,
    });
    g.state.dispose();
    return { grads: g.grads, loss: g.loss, reconstruction: g.reconstruction, kl: g.kl };
  }

  /**
   * Applies gradients with the model's Adam optimizer (created on first use, learning rate
   * `learningRate`), after clipping them to global norm `clipNorm`: the second half of
   * {@link VNCA.trainStep}.
   *
   * @param grads A gradient for every trainable variable, keyed by `variable.name` and of its
   *   shape, as {@link VNCA.computeGradients} returns them (not disposed).
   * @returns The global gradient norm before clipping.
   */
  applyGradients(grads: tf.NamedTensorMap): number {
    const fn = 'VNCA.applyGradients';
    this.check(fn);
    if (typeof grads !== 'object' || grads === null) {
      throw new VncaError(fn, 'grads', `must be a name → tensor map, but got ${describe(grads)}.`);
    }
    const vars = this.trainableVariables;
    const names = new Set(vars.map((v) => v.name));
    const unknown = Object.keys(grads).filter((k) => !names.has(k));
    if (unknown.length) throw new VncaError(fn, 'grads', `hold names that are not trainable variables of this model: ${unknown.join(', ')}.`);
    for (const v of vars) {
      const g = grads[v.name];
      assertTensor(g, fn, `grads['${v.name}']`);
      if (!tf.util.arraysEqual(g.shape, v.shape)) {
        throw new VncaError(fn, `grads['${v.name}']`, `must have shape [${v.shape.join(', ')}], but got [${g.shape.join(', ')}].`);
      }
    }
    return this.applyChecked(grads);
  }

  private applyChecked(grads: tf.NamedTensorMap): number {
    const c = this.config;
    this.optimizer ??= tf.train.adam(c.learningRate);
    const clipped = c.clipNorm > 0 ? clipByGlobalNorm(grads, c.clipNorm) : null;
    const gradNorm = clipped ? clipped.norm : globalNorm(grads);
    try {
      this.optimizer.applyGradients(clipped ? clipped.grads : grads);
    } finally {
      if (clipped) tf.dispose(Object.values(clipped.grads));
    }
    return gradNorm;
  }

  /**
   * One training step: maximise the ELBO of a batch (one posterior sample per image) with
   * Adam, gradients clipped to global norm `clipNorm`: {@link VNCA.computeGradients} then
   * {@link VNCA.applyGradients}, with the sample pool of a pooled model drawn from and updated.
   * On the wasm backend the missing training kernels are registered first ({@link enableWasmTraining}).
   *
   * @param batch Images `[batch, imageSize, imageSize, imageChannels]` in [0, 1] (binary for 'bernoulli').
   * @param options The step's randomness (default: fresh): `seed` or `noise` of the posterior
   *   sample, `steps` of a fixed model.
   * @returns Plain numbers: loss (negative ELBO), reconstruction, KL, gradient norm.
   */
  trainStep(batch: tf.Tensor4D, options: GradientOptions = {}): TrainStepResult {
    const fn = 'VNCA.trainStep';
    this.check(fn);
    this.checkImages(batch, fn, 'batch');
    this.checkGradientOptions(options, batch.shape[0], fn);
    const c = this.config;
    const steps = options.steps ?? this.nextRolloutSteps();
    const usePool = c.growth === 'fixed' && c.poolSize > 0;
    const pooled = usePool ? this.drawFromPool(batch) : null;
    const images = pooled ? pooled.images : batch;
    let g: (Gradients & { state: tf.Tensor4D }) | null = null;
    try {
      g = this.gradientsOf(images, { steps, initial: pooled?.initial, noise: options.noise, seed: options.seed });
      if (usePool) this.updatePool(g.state, images, pooled?.drawn ?? null);
      const gradNorm = this.applyChecked(g.grads);
      return { loss: g.loss, reconstruction: g.reconstruction, kl: g.kl, gradNorm };
    } finally {
      if (pooled) tf.dispose([pooled.images, pooled.initial, pooled.drawn.states, pooled.drawn.payload!]);
      if (g) tf.dispose([g.state, ...Object.values(g.grads)]);
    }
  }

  /**
   * Trains for `steps` steps on random batches drawn (with a seeded sampler) from `data`.
   *
   * @param data Training images `[n, imageSize, imageSize, imageChannels]` in [0, 1] (not disposed).
   * @param options steps, batchSize (default 32), seed, onProgress.
   * @returns The per-step results.
   */
  async fit(data: tf.Tensor4D, options: FitOptions): Promise<TrainStepResult[]> {
    const fn = 'VNCA.fit';
    this.check(fn);
    this.checkImages(data, fn, 'data');
    if (typeof options !== 'object' || options === null) throw new VncaError(fn, 'options', `must be an object with steps, but got ${describe(options)}.`);
    assertInt(options.steps, fn, 'options.steps', 1);
    const batchSize = options.batchSize ?? 32;
    assertInt(batchSize, fn, 'options.batchSize', 1, data.shape[0]);
    const rng = mulberry32(options.seed ?? 0);
    const history: TrainStepResult[] = [];
    for (let step = 1; step <= options.steps; step++) {
      const idx = Array.from({ length: batchSize }, () => Math.floor(rng() * data.shape[0]));
      const batch = tf.tidy(() => tf.gather(data, tf.tensor1d(idx, 'int32')) as tf.Tensor4D);
      let r: TrainStepResult;
      try {
        r = this.trainStep(batch);
      } finally {
        batch.dispose();
      }
      history.push(r);
      if (options.onProgress) {
        const go = await options.onProgress({ ...r, step, steps: options.steps });
        if (go === false) break;
      }
    }
    return history;
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
  evaluate(x: tf.Tensor4D, options: { importanceSamples?: number; decodeBatchSize?: number; seed?: number } = {}): EvaluateResult {
    const fn = 'VNCA.evaluate';
    this.check(fn);
    this.checkImages(x, fn);
    const k = options.importanceSamples ?? 128;
    assertInt(k, fn, 'options.importanceSamples', 1);
    const chunk = options.decodeBatchSize ?? 32;
    assertInt(chunk, fn, 'options.decodeBatchSize', 1);
    const n = x.shape[0];
    const perImage = new Float32Array(n);
    const q = this.encode(x);
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
          const zFlat = tf.reshape(z, [k, this.config.zSize]) as tf.Tensor2D;
          const parts: tf.Tensor1D[] = [];
          for (let s = 0; s < k; s += chunk) {
            const m = Math.min(chunk, k - s);
            parts.push(tf.tidy(() => {
              const zc = tf.slice(zFlat, [s, 0], [m, -1]) as tf.Tensor2D;
              const state = this.decode(zc);
              const xs = tf.tile(xi, [m, 1, 1, 1]) as tf.Tensor4D;
              return this.logLikelihood(state, xs);
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
    const dims = this.config.imageSize * this.config.imageSize * this.config.imageChannels;
    return { logLikelihood, bitsPerDim: natsToBitsPerDim(logLikelihood, dims), perImage, importanceSamples: k };
  }

  /**
   * Regeneration: damages grown cell states and keeps running the update rule, so the
   * automaton regrows the damaged part.
   *
   * @param state Grown states `[batch, imageSize, imageSize, zSize]` (not disposed).
   * @param region The cells to zero (see {@link damage}).
   * @param options `steps` of regrowth (default `stepsPerDoubling`, or `stepsRange[0]` for a fixed
   *   model), `returnStates` for every state along the way (the damaged state first), `seed`.
   * @returns The regrown state and, on request, the states along the way; the caller owns them.
   */
  regenerate(state: tf.Tensor4D, region: DamageRegion, options: { steps?: number; returnStates: true; seed?: number }): Required<GrowResult>;
  regenerate(state: tf.Tensor4D, region: DamageRegion, options?: { steps?: number; returnStates?: boolean; seed?: number }): GrowResult;
  regenerate(state: tf.Tensor4D, region: DamageRegion, options: { steps?: number; returnStates?: boolean; seed?: number } = {}): GrowResult {
    const fn = 'VNCA.regenerate';
    this.check(fn);
    assertState(state, fn);
    const c = this.config;
    if (state.shape[3] !== c.zSize) throw new VncaError(fn, 'state', `must have ${c.zSize} channels, but got ${state.shape[3]}.`);
    const steps = options.steps ?? (c.growth === 'doubling' ? c.stepsPerDoubling : c.stepsRange[0]);
    assertInt(steps, fn, 'options.steps', 0);
    const damaged = damage(state, region);
    try {
      return runSteps(this.rule, damaged, { steps, pUpdate: c.pUpdate, returnStates: options.returnStates, seed: options.seed });
    } finally {
      damaged.dispose();
    }
  }

  /**
   * Inpainting, as the paper's authors suggest: encode the image (its unknown pixels zeroed),
   * grow it, damage the cells of the unknown region and let the automaton grow new content
   * there, while the known cells are held at their grown values; the known pixels of the
   * result are the input's.
   *
   * @param x Images `[batch, imageSize, imageSize, imageChannels]` in [0, 1].
   * @param mask Unknown region, 1 = to fill: `[imageSize, imageSize]`, `[batch, imageSize, imageSize]` or `[batch, imageSize, imageSize, 1]`.
   * @param options `steps` of regrowth (default `2 * stepsPerDoubling`, or `stepsRange[0]`), `seed`,
   *   `damage` (default true): zero the region's cells before regrowing them. A model trained
   *   without damage (like the doubling model) cannot regrow zeroed cells; with `damage: false`
   *   the region starts from the cells grown from the masked image's posterior mean instead.
   * @returns Images of the shape of `x`: known pixels from `x`, the region grown anew.
   */
  inpaint(x: tf.Tensor4D, mask: tf.Tensor, options: { steps?: number; seed?: number; damage?: boolean } = {}): tf.Tensor4D {
    const fn = 'VNCA.inpaint';
    this.check(fn);
    this.checkImages(x, fn);
    assertTensor(mask, fn, 'mask');
    const c = this.config;
    const [b, h, w] = x.shape;
    const okShape = (mask.rank === 2 && mask.shape[0] === h && mask.shape[1] === w)
      || (mask.rank === 3 && mask.shape[0] === b && mask.shape[1] === h && mask.shape[2] === w)
      || (mask.rank === 4 && mask.shape[0] === b && mask.shape[1] === h && mask.shape[2] === w && mask.shape[3] === 1);
    if (!okShape) {
      throw new VncaError(fn, 'mask', `must have shape [${h}, ${w}], [${b}, ${h}, ${w}] or [${b}, ${h}, ${w}, 1], but got [${mask.shape.join(', ')}].`);
    }
    const steps = options.steps ?? (c.growth === 'doubling' ? 2 * c.stepsPerDoubling : c.stepsRange[0]);
    assertInt(steps, fn, 'options.steps', 0);
    const m = tf.tidy(() => tf.broadcastTo(tf.reshape(tf.cast(mask, 'float32'), [mask.rank === 2 ? 1 : b, h, w, 1]), [b, h, w, 1]) as tf.Tensor4D);
    try {
      const known = tf.tidy(() => tf.mul(x, tf.sub(1, m)) as tf.Tensor4D);
      const q = this.encode(known);
      known.dispose();
      let grown: tf.Tensor4D;
      try {
        grown = this.decode(q.mean as tf.Tensor2D, { seed: options.seed });
      } finally {
        q.dispose();
      }
      const keep = tf.tidy(() => tf.sub(1, m));
      let cur = options.damage === false ? tf.clone(grown) : tf.tidy(() => tf.mul(grown, keep) as tf.Tensor4D);
      for (let i = 0; i < steps; i++) {
        const next = tf.tidy(() => {
          const stepped = runSteps(this.rule, cur, {
            steps: 1, pUpdate: c.pUpdate, seed: options.seed === undefined ? undefined : options.seed + i,
          }).state;
          // Known cells are held at their grown values; only the region evolves.
          return tf.add(tf.mul(stepped, m), tf.mul(grown, keep)) as tf.Tensor4D;
        });
        cur.dispose();
        cur = next;
      }
      const out = tf.tidy(() => tf.add(tf.mul(x, keep), tf.mul(this.render(cur), m)) as tf.Tensor4D);
      tf.dispose([cur, grown, keep]);
      return out;
    } finally {
      m.dispose();
    }
  }

  /**
   * Every weight with a stable name: `encoder/<weight>` then `rule/<weight>`, where `<weight>`
   * is the name the layer gave it (e.g. `rule/conv_in/kernel`). Save and load match by these names.
   */
  namedWeights(): { name: string; variable: tf.Variable }[] {
    const out: { name: string; variable: tf.Variable }[] = [];
    const seen = new Set<string>();
    for (const [prefix, layer] of [['encoder', this.encoder], ['rule', this.rule]] as const) {
      for (const w of layer.weights) {
        const name = `${prefix}/${relativeWeightName(layer.name, w.originalName)}`;
        if (seen.has(name)) throw new VncaError('VNCA.namedWeights', name, 'is not unique: give each weight of a layer its own name.');
        seen.add(name);
        out.push({ name, variable: w.read() as tf.Variable });
      }
    }
    return out;
  }

  /**
   * Saves the configuration and weights through a tfjs IO handler or URL scheme
   * (`localstorage://`, `indexeddb://`, `downloads://`, `http(s)://`, `tf.io.withSaveHandler`,
   * or `fileSystem(dir)` from `vnca/node`).
   *
   * @param target A URL string or an `tf.io.IOHandler`.
   * @returns The handler's save result.
   */
  async save(target: string | tf.io.IOHandler): Promise<tf.io.SaveResult> {
    const fn = 'VNCA.save';
    this.check(fn);
    const handler = resolveHandler(target, 'save', fn);
    const topology = {
      format: VNCA_FORMAT,
      formatVersion: VNCA_FORMAT_VERSION,
      config: this.config,
      updateRule: { className: (this.rule.constructor as unknown as { className: string }).className, config: this.rule.getConfig() },
    };
    return saveArtifacts(handler, topology, this.namedWeights().map(({ name, variable }) => ({ name, tensor: variable })));
  }

  /**
   * Loads a model saved by {@link VNCA.save}. The saved config rebuilds the same model;
   * a custom update rule loads when its class is registered with
   * `tf.serialization.registerClass` or passed in `options.updateRules`. Every weight is
   * checked (names, shapes) before any is set: no half-loaded model.
   *
   * @param source A URL string or a `tf.io.IOHandler` (e.g. `fileSystem(dir)` from `vnca/node`).
   * @param options `updateRules`: custom {@link UpdateRule} classes the model may use.
   * @returns The model; the caller disposes it.
   */
  static async load(
    source: string | tf.io.IOHandler, options: { updateRules?: UpdateRuleClass[] } = {},
  ): Promise<VNCA> {
    const fn = 'VNCA.load';
    const handler = resolveHandler(source, 'load', fn);
    const artifacts = await handler.load!();
    return VNCA.fromArtifacts(artifacts, options);
  }

  /**
   * Builds a model from tfjs model artifacts as {@link VNCA.save} writes them.
   *
   * @param artifacts `modelTopology` with the VNCA config, `weightSpecs` and `weightData`.
   * @param options `updateRules`: custom {@link UpdateRule} classes the model may use.
   * @returns The model; the caller disposes it.
   */
  static fromArtifacts(artifacts: tf.io.ModelArtifacts, options: { updateRules?: UpdateRuleClass[] } = {}): VNCA {
    const fn = 'VNCA.fromArtifacts';
    const topo = artifacts?.modelTopology as { format?: string; formatVersion?: number; config?: VNCAOptions; updateRule?: { className: string; config: tf.serialization.ConfigDict } } | undefined;
    if (!topo || topo.format !== VNCA_FORMAT || typeof topo.config !== 'object') {
      throw new VncaError(fn, 'artifacts.modelTopology', `must be a VNCA model (format '${VNCA_FORMAT}'), but got ${describe(topo?.format ?? topo)}.`);
    }
    if (topo.formatVersion !== VNCA_FORMAT_VERSION) {
      throw new VncaError(fn, 'artifacts.modelTopology.formatVersion', `must be ${VNCA_FORMAT_VERSION}, but got ${describe(topo.formatVersion)}.`);
    }
    if (!artifacts.weightSpecs || !artifacts.weightData) {
      throw new VncaError(fn, 'artifacts', 'must hold weightSpecs and weightData, but they are missing.');
    }
    const updateRule = topo.updateRule ? buildRule(topo.updateRule, options.updateRules ?? [], fn) : undefined;
    const model = new VNCA({ ...topo.config, ...(updateRule ? { updateRule } : {}) });
    try {
      const buffer = tf.io.concatenateArrayBuffers(
        Array.isArray(artifacts.weightData) ? artifacts.weightData : [artifacts.weightData],
      );
      const expectedBytes = artifacts.weightSpecs.reduce((a, s) => a + 4 * s.shape.reduce((p, d) => p * d, 1), 0);
      if (buffer.byteLength !== expectedBytes) {
        throw new VncaError(fn, 'artifacts.weightData', `must hold ${expectedBytes} bytes for its weightSpecs, but got ${buffer.byteLength}.`);
      }
      const tensors = tf.io.decodeWeights(buffer, artifacts.weightSpecs);
      try {
        model.setNamedWeights(tensors, fn);
      } finally {
        tf.dispose(Object.values(tensors));
      }
    } catch (e) {
      model.dispose();
      throw e;
    }
    return model;
  }

  /**
   * Builds a doubling VNCA from the PyTorch reference's `state_dict` saved as safetensors
   * (keys `encoder.{0,2,4,6,8}.{weight,bias}`, `encoder.11.{weight,bias}`,
   * `nca.update_net.0.{weight,bias}`, `nca.update_net.{1..4}.delegate.{0,2}.{weight,bias}`,
   * `nca.update_net.5.{weight,bias}`). Sizes (zSize, hidden, blocks, encoder channels) are read
   * from the shapes; the rest comes from `options` (defaults: the paper's). NCHW kernels become
   * NHWC, and the encoder's last layer is permuted from PyTorch's (C, H, W) flatten order, so
   * encoder and decoder outputs equal the reference's. Unknown or missing keys, wrong shapes,
   * truncated files give a {@link VncaError}; nothing is half-loaded.
   *
   * @param bytes The safetensors file.
   * @param options Growth and training options not stored in the weights (e.g. `stepsPerDoubling`).
   * @returns The model; the caller disposes it.
   */
  static fromPyTorch(bytes: ArrayBuffer | Uint8Array, options: Omit<VNCAOptions, 'zSize' | 'hidden' | 'nBlocks' | 'encoderChannels' | 'imageChannels' | 'updateRule'> = {}): VNCA {
    const fn = 'VNCA.fromPyTorch';
    const st = parseSafetensors(bytes);
    const sizes = pytorchSizes(st);
    for (const key of ['zSize', 'hidden', 'nBlocks', 'encoderChannels', 'imageChannels', 'updateRule']) {
      if (key in (options as object)) throw new VncaError(fn, `options.${key}`, 'is read from the weights and cannot be given.');
    }
    const named = pytorchToNamedWeights(st, sizes);
    const model = new VNCA({ ...options, ...sizes });
    try {
      const tensors: tf.NamedTensorMap = {};
      try {
        for (const [name, t] of named) tensors[name] = tf.tensor(t.data, t.shape, 'float32');
        model.setNamedWeights(tensors, fn);
      } finally {
        tf.dispose(Object.values(tensors));
      }
    } catch (e) {
      model.dispose();
      throw e;
    }
    return model;
  }

  /**
   * Sets every weight from a name → tensor map (names as {@link VNCA.namedWeights} gives them).
   * All names and shapes are checked before any weight changes. @internal
   */
  setNamedWeights(tensors: tf.NamedTensorMap, fn = 'VNCA.setNamedWeights'): void {
    const named = this.namedWeights();
    const want = new Set(named.map((n) => n.name));
    const missing = named.filter((n) => !(n.name in tensors)).map((n) => n.name);
    const unknown = Object.keys(tensors).filter((k) => !want.has(k));
    if (missing.length) throw new VncaError(fn, 'weights', `are missing ${missing.join(', ')}.`);
    if (unknown.length) throw new VncaError(fn, 'weights', `hold unknown names ${unknown.join(', ')}.`);
    for (const { name, variable } of named) {
      const t = tensors[name]!;
      if (!tf.util.arraysEqual(t.shape, variable.shape)) {
        throw new VncaError(fn, `weights['${name}']`, `must have shape [${variable.shape.join(', ')}], but got [${t.shape.join(', ')}].`);
      }
    }
    for (const { name, variable } of named) tf.tidy(() => variable.assign(tf.cast(tensors[name]!, 'float32')));
  }

  /** Frees every weight and the optimizer's state. The model cannot be used afterwards. */
  dispose(): void {
    if (this.disposed) return;
    this.optimizer?.dispose();
    this.optimizer = null;
    this.pool?.dispose();
    this.pool = null;
    tf.dispose([...this.poolFill.states, ...this.poolFill.images]);
    for (const w of [...this.encoder.weights, ...this.rule.weights]) w.dispose();
    this.disposed = true;
  }
}
