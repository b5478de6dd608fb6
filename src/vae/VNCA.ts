/** The {@link VNCA} model; training, objective, evaluation, inpainting and persistence live beside it. @module */
import * as tf from '@tensorflow/tfjs-core';
import { describe, VncaError } from '../core/errors.js';
import type { DamageRegion } from '../core/damage.js';
import { ensureBuilt, type GrowResult } from '../growth/grow.js';
import { UpdateRule } from '../layers/UpdateRule.js';
import { ResidualUpdateRule } from '../layers/ResidualUpdateRule.js';
import { DiagonalGaussian } from './distributions.js';
import { LIKELIHOODS, type Likelihood } from './likelihood.js';
import { GROWTH_PLANS, type GrowthPlan, type RolloutOptions } from './growthPlan.js';
import { Encoder } from './Encoder.js';
import { resolveConfig, type UpdateRuleClass, type VNCAConfig, type VNCAOptions } from './config.js';
import { elboTerms, type ElboTerms } from './objective.js';
import {
  Trainer, type FitOptions, type GradientOptions, type Gradients, type TrainStepResult,
} from './training.js';
import { checkTrainingBatch } from './trainingChecks.js';
import { checkImages, checkStates } from './checks.js';
import { inpaint, type InpaintOptions } from './inpainting.js';
import { evaluate, type EvaluateOptions, type EvaluateResult } from './evaluate.js';
import { decodeLatents, interpolateImages, reconstructImages, regenerateStates, sampleImages } from './generation.js';
import {
  checkSaveOptions, fromArtifacts, fromPyTorch, loadModel, namedWeights, saveModel, setNamedWeights, type PyTorchOptions,
  type SaveOptions,
} from './persistence.js';

export { NON_DOUBLING_MNIST, resolveConfig, type UpdateRuleClass, type VNCAConfig, type VNCAOptions } from './config.js';
export type { FitOptions, FitProgress, GradientOptions, Gradients, TrainStepResult } from './training.js';
export type { EvaluateOptions, EvaluateResult } from './evaluate.js';
export type { SaveOptions } from './persistence.js';

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
  /** The likelihood read from the final cells (the `likelihood` option). @internal */
  readonly likelihood: Likelihood;
  /** How the cells grow (the `growth` option). @internal */
  readonly growthPlan: GrowthPlan;
  private disposed = false;
  /** The training run (optimiser, pool, rollout rng), created by the first training call. */
  private training: Trainer | null = null;

  /**
   * @param options Sizes and training settings; every default is the paper's model.
   */
  constructor(options: VNCAOptions = {}) {
    const fn = 'VNCA';
    this.config = resolveConfig(options, fn);
    const c = this.config;
    this.likelihood = LIKELIHOODS[c.likelihood];
    this.growthPlan = GROWTH_PLANS[c.growth];
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
    return this.training?.poolSize ?? 0;
  }

  private get trainer(): Trainer {
    return this.training ??= new Trainer(this);
  }

  /** Height and width of the grid z is written into. */
  get seedSize(): number {
    return this.growthPlan.seedSize(this.config);
  }

  /** Total trainable parameters (encoder + update rule). */
  countParams(): number {
    return this.encoder.countParams() + this.rule.countParams();
  }

  /** Every trainable variable, encoder first, then the update rule. */
  get trainableVariables(): tf.Variable[] {
    return [...this.encoder.trainableWeights, ...this.rule.trainableWeights].map((w) => w.read() as tf.Variable);
  }

  private checkNotDisposed(fn: string): void {
    if (this.disposed) throw new VncaError(fn, 'this', 'is a disposed VNCA; create or load a new one.');
  }

  /**
   * The posterior q(z|x) of a batch of images.
   *
   * @param x Images `[batch, imageSize, imageSize, imageChannels]` with values in [0, 1].
   * @returns A {@link DiagonalGaussian} with `mean` and `logStd` `[batch, zSize]`; the caller disposes it.
   */
  encode(x: tf.Tensor4D): DiagonalGaussian {
    const fn = 'VNCA.encode';
    this.checkNotDisposed(fn);
    checkImages(this.config, x, fn);
    const out = tf.tidy(() => this.encoder.apply(this.toModelInput(x)) as tf.Tensor2D);
    const q = DiagonalGaussian.fromEncoderOutput(out);
    out.dispose();
    return q;
  }

  /** Images in [0,1] as the encoder and likelihood see them. @internal */
  toModelInput(x: tf.Tensor4D): tf.Tensor4D {
    return this.likelihood.modelInput(x);
  }

  /** The seed grid: z copied into every cell. @internal */
  seedGrid(z: tf.Tensor2D): tf.Tensor4D {
    const s = this.seedSize;
    return tf.tidy(() => tf.tile(tf.reshape(z, [z.shape[0], 1, 1, this.config.zSize]), [1, s, s, 1]) as tf.Tensor4D);
  }

  /** Rollout from a seed grid (doubling or fixed), `steps` overriding a fixed rollout's length. @internal */
  rollout(seed: tf.Tensor4D, options: RolloutOptions): GrowResult {
    return this.growthPlan.rollout(this.rule, seed, this.config, options);
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
   * @throws VncaError when `z` is empty, or on the wasm backend (4 GiB) when the result cannot
   *   fit; a batch whose decode would not fit at once is decoded in chunks that do.
   */
  decode(z: tf.Tensor2D, options?: { returnStates?: false; steps?: number; seed?: number }): tf.Tensor4D;
  decode(z: tf.Tensor2D, options: { returnStates: true; steps?: number; seed?: number }): Required<GrowResult>;
  decode(z: tf.Tensor2D, options: { returnStates?: boolean; steps?: number; seed?: number } = {}): tf.Tensor4D | Required<GrowResult> {
    const fn = 'VNCA.decode';
    this.checkNotDisposed(fn);
    return decodeLatents(this, z, options, fn);
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
    this.checkNotDisposed(fn);
    checkStates(this.config, state, fn);
    return this.likelihood.mean(state, this.config.nMix);
  }

  /** log p(x | state) per image `[batch]`. @internal */
  logLikelihood(state: tf.Tensor4D, x: tf.Tensor4D): tf.Tensor1D {
    return this.likelihood.logProb(state, x, this.config.nMix);
  }

  /**
   * New images from the prior: z ~ N(0, I), grow, read the likelihood's mean.
   *
   * @param n Number of images.
   * @param options `seed` for z (and the update masks).
   * @returns Images `[n, imageSize, imageSize, imageChannels]` in [0, 1] (pixel probabilities for binary images).
   * @throws VncaError on the wasm backend (4 GiB) when the `n` images cannot fit; images that do
   *   fit but not decoded at once are decoded in chunks.
   */
  sample(n: number, options: { seed?: number } = {}): tf.Tensor4D {
    const fn = 'VNCA.sample';
    this.checkNotDisposed(fn);
    return sampleImages(this, n, options, fn);
  }

  /**
   * Reconstructions: encode, decode the posterior mean, read the likelihood's mean.
   *
   * @param x Images `[batch, imageSize, imageSize, imageChannels]` in [0, 1].
   * @returns Images of the same shape in [0, 1].
   */
  reconstruct(x: tf.Tensor4D): tf.Tensor4D {
    const fn = 'VNCA.reconstruct';
    this.checkNotDisposed(fn);
    return reconstructImages(this, x, fn);
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
    this.checkNotDisposed(fn);
    return interpolateImages(this, x1, x2, n, fn);
  }

  /** Batch-mean ELBO terms of a batch with one posterior sample each (see objective.ts). @internal */
  elboTerms(
    x: tf.Tensor4D, rolloutSteps?: number, initial?: tf.Tensor4D | null, eps: { noise?: tf.Tensor2D; seed?: number } = {},
  ): ElboTerms {
    return elboTerms(this, x, rolloutSteps, initial, eps);
  }

  /** Rollout length of the next training step: drawn from `stepsRange` for a fixed model. @internal */
  nextRolloutSteps(): number | undefined {
    return this.trainer.nextRolloutSteps();
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
    this.checkNotDisposed(fn);
    checkTrainingBatch(this.config, batch, options, fn);
    return this.trainer.computeGradients(batch, options);
  }

  /**
   * Applies gradients with the model's Adam optimizer (created on first use with
   * `learningRate`, `adamBeta1`, `adamBeta2`, `adamEpsilon`), after clipping them to global norm
   * `clipNorm`: the second half of {@link VNCA.trainStep}. The map may list the variables in
   * any order: it is put in the order of {@link VNCA.trainableVariables} first.
   *
   * @param grads A gradient for every trainable variable, keyed by `variable.name` and of its
   *   shape, as {@link VNCA.computeGradients} returns them (not disposed).
   * @returns The global gradient norm before clipping.
   * @throws VncaError when a gradient holds NaN or ±Infinity (nothing is applied then).
   */
  applyGradients(grads: tf.NamedTensorMap): number {
    const fn = 'VNCA.applyGradients';
    this.checkNotDisposed(fn);
    return this.trainer.applyGradients(grads, fn);
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
   * @returns Plain numbers: loss (negative ELBO), reconstruction, KL, gradient norm, and
   *   `skipped`: true when the loss or gradient norm was NaN or ±Infinity, in which case nothing
   *   was applied (weights, optimiser state and pool stay as they were).
   * @throws VncaError when the batch is empty or holds values that are not finite or not in [0, 1].
   */
  trainStep(batch: tf.Tensor4D, options: GradientOptions = {}): TrainStepResult {
    const fn = 'VNCA.trainStep';
    this.checkNotDisposed(fn);
    checkTrainingBatch(this.config, batch, options, fn);
    return this.trainer.trainStep(batch, options);
  }

  /**
   * Checks, clips and applies gradients in the variables' order, or skips them when `loss` or
   * their norm is not finite (the second half of a `ParallelVNCA` step). Errors name `fn`. @internal
   */
  applyStep(grads: tf.NamedTensorMap, loss: number, fn = 'VNCA.applyStep'): { gradNorm: number; skipped: boolean } {
    this.checkNotDisposed(fn);
    return this.trainer.applyStep(grads, loss, fn);
  }

  /**
   * Forgets the optimiser's state (Adam's moments and its step count): the next training step
   * starts a fresh Adam. Use it after restoring good weights following a bad run.
   */
  resetOptimizer(): void {
    this.checkNotDisposed('VNCA.resetOptimizer');
    this.training?.resetOptimizer();
  }

  /**
   * Trains for `steps` steps on batches drawn from `data` by a seeded sampler: shuffled once
   * per epoch (default) or with replacement. Stops with a {@link VncaError} after
   * `maxSkippedSteps` (default 5) consecutive skipped steps (see {@link TrainStepResult.skipped}).
   *
   * @param data Training images `[n, imageSize, imageSize, imageChannels]` in [0, 1] (not disposed).
   * @param options steps, batchSize (default 32), seed, shuffle, maxSkippedSteps, onProgress.
   * @returns The per-step results.
   */
  async fit(data: tf.Tensor4D, options: FitOptions): Promise<TrainStepResult[]> {
    const fn = 'VNCA.fit';
    this.checkNotDisposed(fn);
    checkImages(this.config, data, fn, 'data');
    return this.trainer.fit(data, options, fn);
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
  evaluate(x: tf.Tensor4D, options: EvaluateOptions = {}): EvaluateResult {
    const fn = 'VNCA.evaluate';
    this.checkNotDisposed(fn);
    checkImages(this.config, x, fn);
    return evaluate(this, x, options, fn);
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
    this.checkNotDisposed(fn);
    return regenerateStates(this, state, region, options, fn);
  }

  /**
   * Inpainting, as the paper's authors suggest: encode the image (its unknown pixels zeroed),
   * grow it, damage the cells of the unknown region and let the automaton grow new content
   * there, while the known cells are held at their grown values; then (`iterations`, default 2 or 3)
   * rounds of completion: encode the completed image, decode its posterior mean, take the region
   * from it. The known pixels of the result are the input's.
   *
   * @param x Images `[batch, imageSize, imageSize, imageChannels]` in [0, 1].
   * @param mask Unknown region, 1 = to fill: `[imageSize, imageSize]`, `[batch, imageSize, imageSize]` or `[batch, imageSize, imageSize, 1]`.
   * @param options `steps` of regrowth in round 1 (default `2 * stepsPerDoubling`, or 0 for a
   *   fixed model: round 1 is then the posterior-mean decode), `seed`, `damage` (default
   *   `steps > 0`): zero the region's cells before regrowing them; with `damage: false` the region
   *   starts from the cells grown from the masked image's posterior mean instead.
   *   `iterations` (default 2, or 3 for a fixed model): rounds of completion, 1 = round 1 alone (see {@link InpaintOptions}).
   * @returns Images of the shape of `x`: known pixels from `x`, the region grown anew.
   */
  inpaint(x: tf.Tensor4D, mask: tf.Tensor, options: InpaintOptions = {}): tf.Tensor4D {
    const fn = 'VNCA.inpaint';
    this.checkNotDisposed(fn);
    return inpaint(this, x, mask, options, fn);
  }

  /**
   * Every weight with a stable name: `encoder/<weight>` then `rule/<weight>`, where `<weight>`
   * is the name the layer gave it (e.g. `rule/conv_in/kernel`). Save and load match by these names.
   */
  namedWeights(): { name: string; variable: tf.Variable }[] {
    return namedWeights(this);
  }

  /**
   * Saves the configuration and weights through a tfjs IO handler or URL scheme
   * (`localstorage://`, `indexeddb://`, `downloads://`, `http(s)://`, `tf.io.withSaveHandler`,
   * or `fileSystem(dir)` from `vnca/node`).
   *
   * With `includeOptimizer`, the training run's state goes into the same save (Adam's moments,
   * step count, rollout rng position, sample pool, fit's batch sampler), and {@link VNCA.load}
   * continues the run where it stopped.
   *
   * @param target A URL string or an `tf.io.IOHandler`.
   * @param options `includeOptimizer` (default false): see {@link SaveOptions}.
   * @returns The handler's save result.
   */
  async save(target: string | tf.io.IOHandler, options: SaveOptions = {}): Promise<tf.io.SaveResult> {
    const fn = 'VNCA.save';
    this.checkNotDisposed(fn);
    checkSaveOptions(options, fn);
    const training = options.includeOptimizer ? await this.trainer.checkpoint() : undefined;
    try {
      return await saveModel(this, target, fn, training);
    } finally {
      // The pool's copies are the save's; Adam's moments are the optimiser's own.
      if (training) tf.dispose([training.poolStates, training.poolImages].filter((t): t is tf.Tensor4D => t !== undefined));
    }
  }

  /** Applied (not skipped) optimiser steps of this model's training run; restored by {@link VNCA.load}. */
  get trainingSteps(): number {
    return this.training?.steps ?? 0;
  }

  /**
   * Loads a model saved by {@link VNCA.save}. The saved config rebuilds the same model;
   * a custom update rule loads when its class is registered with
   * `tf.serialization.registerClass` or passed in `options.updateRules`. Every weight is
   * checked (names, shapes, finite values) before any is set: no half-loaded model. A save
   * made with `includeOptimizer` also restores the training run (Adam's moments, step count,
   * rollout rng, sample pool, fit's batch sampler), so training continues the same curve.
   *
   * @param source A URL string or a `tf.io.IOHandler` (e.g. `fileSystem(dir)` from `vnca/node`).
   * @param options `updateRules`: custom {@link UpdateRule} classes the model may use.
   * @returns The model; the caller disposes it.
   */
  static async load(
    source: string | tf.io.IOHandler, options: { updateRules?: UpdateRuleClass[] } = {},
  ): Promise<VNCA> {
    return loadModel((o) => new VNCA(o), source, options, 'VNCA.load', (model, training) => model.trainer.restore(training));
  }

  /**
   * Builds a model from tfjs model artifacts as {@link VNCA.save} writes them: the weights
   * only (a saved optimiser state is checked but not restored; `VNCA.load(tf.io.fromMemory(artifacts))`
   * restores it).
   *
   * @param artifacts `modelTopology` with the VNCA config, `weightSpecs` and `weightData`.
   * @param options `updateRules`: custom {@link UpdateRule} classes the model may use.
   * @returns The model; the caller disposes it.
   */
  static fromArtifacts(artifacts: tf.io.ModelArtifacts, options: { updateRules?: UpdateRuleClass[] } = {}): VNCA {
    return fromArtifacts((o) => new VNCA(o), artifacts, options, 'VNCA.fromArtifacts');
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
  static fromPyTorch(bytes: ArrayBuffer | Uint8Array, options: PyTorchOptions = {}): VNCA {
    return fromPyTorch((o) => new VNCA(o), bytes, options, 'VNCA.fromPyTorch');
  }

  /**
   * Sets every weight from a name → tensor map (names as {@link VNCA.namedWeights} gives them).
   * All names and shapes are checked before any weight changes. @internal
   */
  setNamedWeights(tensors: tf.NamedTensorMap, fn = 'VNCA.setNamedWeights'): void {
    setNamedWeights(this, tensors, fn);
  }

  /** Frees every weight and the optimizer's state. The model cannot be used afterwards. */
  dispose(): void {
    if (this.disposed) return;
    this.training?.dispose();
    this.training = null;
    for (const w of [...this.encoder.weights, ...this.rule.weights]) w.dispose();
    this.disposed = true;
  }
}
