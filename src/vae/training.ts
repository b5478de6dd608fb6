/**
 * A training run of a {@link VNCA}: the Adam optimiser, gradient clipping, the sample pool
 * of a pooled model and the rng that draws rollout lengths and pool entries. The model owns
 * its weights; the {@link Trainer} owns everything a run adds to them, so the state to save
 * for resuming a run (optimiser moments, step count) has one home.
 * @module
 */
import * as tf from '@tensorflow/tfjs-core';
import { assertInt, assertOneOf, assertTensor, describe, VncaError } from '../core/errors.js';
import { SamplePool, damageSubset, type PoolSample } from '../core/SamplePool.js';
import { resumableRng } from '../core/random.js';
import { enableWasmTraining } from '../backend/wasm/register.js';
import { globalNorm } from './clip.js';
import { adamFromState, createAdam, readAdamState } from './optimizerState.js';
import { checkTrainingImages } from './trainingChecks.js';
import { BatchSampler, type BatchSamplerState } from './batchSampler.js';
import type { VNCAConfig } from './config.js';
import type { ElboTerms } from './objective.js';
import type { GrowthPlan } from './growthPlan.js';
import type { FitOptions, GradientOptions, Gradients, TrainStepResult } from './trainingTypes.js';

export { adamEpsilon } from './optimizerState.js';
export type { FitOptions, FitProgress, GradientOptions, Gradients, TrainStepResult } from './trainingTypes.js';

/** What a {@link Trainer} needs of its model. @internal */
export interface TrainableModel {
  readonly config: VNCAConfig;
  readonly growthPlan: GrowthPlan;
  readonly trainableVariables: tf.Variable[];
  elboTerms(x: tf.Tensor4D, rolloutSteps?: number, initial?: tf.Tensor4D | null, eps?: { noise?: tf.Tensor2D; seed?: number }): ElboTerms;
  trainStep(batch: tf.Tensor4D, options?: GradientOptions): TrainStepResult;
}

/**
 * The posterior noise seed of the `batch`-th batch (0-based) that fit's sampler of seed `seed`
 * draws, so a fit is reproducible and a resumed one draws the noise of the uninterrupted run. @internal
 */
export function fitNoiseSeed(seed: number, batch: number): number {
  return (Math.imul(seed ^ 0x2545f491, 0x9e3779b1) + batch) | 0;
}


/** Seed of every Trainer's rollout rng. */
const RNG_SEED = 0x5eed;

/**
 * What a checkpoint holds of a training run besides the weights (see {@link Trainer.checkpoint}):
 * plain numbers, saved as JSON with the model.
 * @internal
 */
export interface TrainingCheckpoint {
  /** Applied optimiser steps. */
  step: number;
  /** Adam's own iteration count (its bias correction), 0 before the first step. */
  adamIterations: number;
  /** Numbers drawn so far from the rollout rng (checkpoints without `rngState` replay it this far). */
  rngDraws: number;
  /** The rollout rng's state (absent in checkpoints made before it was saved). */
  rngState?: number;
  /** The batch sampler of the last {@link VNCA.fit}, if one ran. */
  sampler?: BatchSamplerState;
  /**
   * The sample pool of a pooled model, if it holds anything: `entries` states (and their
   * images) saved as tensors; `full` once the pool is made (then `rngState` is the position
   * of its draws), else the states gathered so far to fill it.
   */
  pool?: { entries: number; full: boolean; rngState: number };
}

/**
 * A training run's whole state: the numbers, Adam's moments `m` and `v` in the order of the
 * model's trainable variables (the optimiser's own variables when read from a trainer: do not
 * dispose them), and the pool's states `[entries, h, w, zSize]` and images (copies, owned by
 * whoever holds this). @internal
 */
export type TrainingState = TrainingCheckpoint & { m: tf.Tensor[]; v: tf.Tensor[]; poolStates?: tf.Tensor4D; poolImages?: tf.Tensor4D };

/**
 * The state of one training run of a model: optimiser (created on the first applied step),
 * sample pool and its filling buffers, and the rng of rollout lengths and pool draws.
 * @internal
 */
export class Trainer {
  private optimizer: tf.Optimizer | null = null;
  /** The generator of rollout lengths and pool draws, and how many numbers it has given (saved in checkpoints). */
  private rngSource = resumableRng(RNG_SEED);
  private rngDraws = 0;
  private readonly rng = (): number => {
    this.rngDraws++;
    return this.rngSource.next();
  };
  /** fit's batch sampler, continued by the next fit with the same settings. */
  private sampler: BatchSampler | null = null;
  /** Applied (not skipped) optimiser steps of this run. */
  private stepCount = 0;
  private pool: SamplePool | null = null;
  private poolFill: { states: tf.Tensor4D[]; images: tf.Tensor4D[]; count: number } = { states: [], images: [], count: 0 };

  constructor(private readonly model: TrainableModel) {}

  /** Entries in the sample pool (0 while it fills or without pooling). */
  get poolSize(): number {
    return this.pool?.size ?? 0;
  }

  /** Applied (not skipped) optimiser steps of this run. */
  get steps(): number {
    return this.stepCount;
  }

  /**
   * Forgets Adam's moments (and its step count, which drives the bias correction): the next
   * step starts a fresh optimiser. For restarting after bad steps or restored weights.
   */
  resetOptimizer(): void {
    this.optimizer?.dispose();
    this.optimizer = null;
  }

  /** Draws the pooled part of a batch (damaging some), or nothing while the pool fills. @internal */
  private drawFromPool(batch: tf.Tensor4D): { drawn: PoolSample; images: tf.Tensor4D; initial: tf.Tensor4D } | null {
    const c = this.model.config;
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
    const c = this.model.config;
    // With stateBound, pooled states are kept within it (the overflow loss only discourages).
    const bound = c.stateBound;
    const kept = bound > 0 ? tf.clipByValue(final, -bound, bound) as tf.Tensor4D : final;
    try {
      this.writePool(kept, images, drawn);
    } finally {
      if (kept !== final) kept.dispose();
    }
  }

  private writePool(final: tf.Tensor4D, images: tf.Tensor4D, drawn: PoolSample | null): void {
    const c = this.model.config;
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
    return this.model.growthPlan.trainingSteps(this.model.config, this.rng);
  }

  /** Loss terms and gradients of a batch (the pooled part starting from `initial`). @internal */
  private gradientsOf(
    images: tf.Tensor4D, o: { steps?: number; initial?: tf.Tensor4D; noise?: tf.Tensor2D; seed?: number },
  ): Gradients & { state: tf.Tensor4D } {
    if (tf.getBackend() === 'wasm') enableWasmTraining();
    const vars = this.model.trainableVariables;
    let parts: { reconstruction: tf.Scalar; kl: tf.Scalar; state: tf.Tensor4D } | null = null;
    let result: { value: tf.Scalar; grads: tf.NamedTensorMap };
    try {
      result = tf.variableGrads(() => {
        const t = this.model.elboTerms(images, o.steps, o.initial, { noise: o.noise, seed: o.seed });
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

  /** {@link VNCA.computeGradients} on a checked batch. */
  computeGradients(batch: tf.Tensor4D, options: GradientOptions): Gradients {
    const g = this.gradientsOf(batch, {
      steps: options.steps ?? this.nextRolloutSteps(), noise: options.noise, seed: options.seed,
    });
    g.state.dispose();
    return { grads: g.grads, loss: g.loss, reconstruction: g.reconstruction, kl: g.kl };
  }

  /**
   * {@link VNCA.applyGradients}: checks every gradient against the model's variables, then
   * applies them; gradients whose global norm is not finite are refused, and nothing changes.
   */
  applyGradients(grads: tf.NamedTensorMap, fn: string): number {
    const { gradNorm, skipped } = this.applyStep(grads, 0, fn);
    if (skipped) {
      throw new VncaError(fn, 'grads', `must be finite, but their global norm is ${gradNorm}; nothing was applied (weights and optimiser state are unchanged).`);
    }
    return gradNorm;
  }

  /**
   * The gradients in the order of the model's variables, after checking that there is one of
   * the variable's shape for each and nothing else. tfjs's Adam keys its moment slots by
   * position in the map, so a map in another key order would apply one variable's moments to
   * another (or fail to broadcast). @internal
   */
  private inVariableOrder(grads: tf.NamedTensorMap, fn: string): tf.NamedTensorMap {
    if (typeof grads !== 'object' || grads === null) {
      throw new VncaError(fn, 'grads', `must be a name → tensor map, but got ${describe(grads)}.`);
    }
    const vars = this.model.trainableVariables;
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
    const ordered: tf.NamedTensorMap = {};
    for (const v of vars) ordered[v.name] = grads[v.name]!;
    return ordered;
  }

  /**
   * Checks gradients against the model's variables, then clips and applies them in the
   * variables' order, unless `loss` or their global norm is not finite: then nothing is
   * applied (the weights and Adam's moments never see a NaN). @internal
   */
  applyStep(grads: tf.NamedTensorMap, loss: number, fn: string): { gradNorm: number; skipped: boolean } {
    grads = this.inVariableOrder(grads, fn);
    const c = this.model.config;
    const gradNorm = globalNorm(grads);
    if (!Number.isFinite(gradNorm) || !Number.isFinite(loss)) return { gradNorm, skipped: true };
    this.optimizer ??= createAdam(c);
    const scale = c.clipNorm > 0 && gradNorm > c.clipNorm ? c.clipNorm / gradNorm : 1;
    const scaled = scale === 1 ? null : tf.tidy(() => {
      const out: tf.NamedTensorMap = {};
      for (const [k, g] of Object.entries(grads)) out[k] = tf.mul(g, scale);
      return out;
    });
    try {
      this.optimizer.applyGradients(scaled ?? grads);
    } finally {
      if (scaled) tf.dispose(Object.values(scaled));
    }
    this.stepCount++;
    return { gradNorm, skipped: false };
  }

  /** {@link VNCA.trainStep} on a checked batch. */
  trainStep(batch: tf.Tensor4D, options: GradientOptions): TrainStepResult {
    const c = this.model.config;
    const steps = options.steps ?? this.nextRolloutSteps();
    const usePool = this.model.growthPlan.usesPool(c);
    const pooled = usePool ? this.drawFromPool(batch) : null;
    const images = pooled ? pooled.images : batch;
    let g: (Gradients & { state: tf.Tensor4D }) | null = null;
    try {
      g = this.gradientsOf(images, { steps, initial: pooled?.initial, noise: options.noise, seed: options.seed });
      const { gradNorm, skipped } = this.applyStep(g.grads, g.loss, 'VNCA.trainStep');
      // A skipped step leaves the pool as it was too: its final states may hold NaN.
      if (usePool && !skipped) this.updatePool(g.state, images, pooled?.drawn ?? null);
      return { loss: g.loss, reconstruction: g.reconstruction, kl: g.kl, gradNorm, skipped };
    } finally {
      if (pooled) tf.dispose([pooled.images, pooled.initial, pooled.drawn.states, pooled.drawn.payload!]);
      if (g) tf.dispose([g.state, ...Object.values(g.grads)]);
    }
  }

  /** {@link VNCA.fit} on checked data: each step is the model's own `trainStep`. */
  async fit(data: tf.Tensor4D, options: FitOptions, fn: string): Promise<TrainStepResult[]> {
    if (typeof options !== 'object' || options === null) throw new VncaError(fn, 'options', `must be an object with steps, but got ${describe(options)}.`);
    assertInt(options.steps, fn, 'options.steps', 1);
    checkTrainingImages(data, fn, 'data');
    const batchSize = options.batchSize ?? 32;
    assertInt(batchSize, fn, 'options.batchSize', 1, data.shape[0]);
    if (options.seed !== undefined) assertInt(options.seed, fn, 'options.seed');
    const shuffle = options.shuffle ?? 'epoch';
    assertOneOf(shuffle, ['epoch', 'replacement'] as const, fn, 'options.shuffle');
    const maxSkipped = options.maxSkippedSteps ?? 5;
    assertInt(maxSkipped, fn, 'options.maxSkippedSteps', 1);
    const seed = options.seed ?? 0;
    const n = data.shape[0];
    if (!this.sampler?.matches(n, batchSize, shuffle, seed)) this.sampler = new BatchSampler(n, batchSize, shuffle, seed);
    const sampler = this.sampler;
    const history: TrainStepResult[] = [];
    let skippedInARow = 0;
    for (let step = 1; step <= options.steps; step++) {
      const noiseSeed = fitNoiseSeed(seed, sampler.drawn);
      const idx = sampler.next();
      const batch = tf.tidy(() => tf.gather(data, tf.tensor1d(idx, 'int32')) as tf.Tensor4D);
      let r: TrainStepResult;
      try {
        r = this.model.trainStep(batch, { seed: noiseSeed });
      } finally {
        batch.dispose();
      }
      history.push(r);
      skippedInARow = r.skipped ? skippedInARow + 1 : 0;
      if (skippedInARow >= maxSkipped) {
        throw new VncaError(fn, 'training', `stopped after ${skippedInARow} consecutive skipped steps (steps ${step - skippedInARow + 1} to ${step}: loss ${r.loss}, gradient norm ${r.gradNorm}); nothing of them was applied, so the weights and optimiser state are those of step ${step - skippedInARow}. Lower learningRate or clipNorm, or check the data; options.maxSkippedSteps sets the limit.`);
      }
      if (options.onProgress) {
        const go = await options.onProgress({ ...r, step, steps: options.steps });
        if (go === false) break;
      }
    }
    return history;
  }

  /**
   * The state a checkpoint needs to continue this run: plain numbers, Adam's first and second
   * moments (`m`, `v`) in the order of the model's trainable variables (empty before the first
   * applied step; the optimiser's own variables: read them before the next step, do not
   * dispose them), and copies of the sample pool's states and images (the caller disposes them).
   */
  async checkpoint(): Promise<TrainingState> {
    const out: TrainingState = {
      step: this.stepCount, rngDraws: this.rngDraws, rngState: this.rngSource.state(), adamIterations: 0, m: [], v: [],
    };
    if (this.sampler) out.sampler = this.sampler.state();
    // Adam first: the pool's copies below are the caller's, and nothing after them can throw.
    if (this.optimizer) Object.assign(out, await readAdamState(this.optimizer));
    if (this.pool) {
      const { states, payload, rngState } = this.pool.snapshot();
      Object.assign(out, { pool: { entries: states.shape[0], full: true, rngState }, poolStates: states, poolImages: payload as tf.Tensor4D });
    } else if (this.poolFill.count > 0) {
      const f = this.poolFill;
      const [states, images] = tf.tidy(() => [tf.concat(f.states) as tf.Tensor4D, tf.concat(f.images) as tf.Tensor4D]);
      Object.assign(out, { pool: { entries: f.count, full: false, rngState: 0 }, poolStates: states, poolImages: images });
    }
    return out;
  }

  /**
   * Continues a run from a {@link Trainer.checkpoint}: the step count, the rng where it was
   * (its state, or replayed for older checkpoints), fit's batch sampler, the sample pool, and
   * a new Adam with the saved moments and iteration count. The tensors are checked by the
   * caller and not disposed (the trainer keeps copies).
   */
  async restore(state: TrainingState): Promise<void> {
    this.dispose();
    this.stepCount = state.step;
    if (state.rngState !== undefined) {
      this.rngSource = resumableRng(state.rngState);
    } else {
      this.rngSource = resumableRng(RNG_SEED);
      for (let i = 0; i < state.rngDraws; i++) this.rngSource.next();
    }
    this.rngDraws = state.rngDraws;
    this.sampler = state.sampler ? BatchSampler.fromState(state.sampler) : null;
    if (state.pool && state.poolStates && state.poolImages) {
      if (state.pool.full) {
        this.pool = new SamplePool(state.poolStates, { payload: state.poolImages, seed: state.pool.rngState });
      } else {
        this.poolFill = { states: [tf.clone(state.poolStates)], images: [tf.clone(state.poolImages)], count: state.pool.entries };
      }
    }
    if (state.m.length === 0) return;
    this.optimizer = await adamFromState(() => createAdam(this.model.config), this.model.trainableVariables, state);
  }

  /** Frees the optimiser's state and the pool. */
  dispose(): void {
    this.optimizer?.dispose();
    this.optimizer = null;
    this.pool?.dispose();
    this.pool = null;
    tf.dispose([...this.poolFill.states, ...this.poolFill.images]);
    this.poolFill = { states: [], images: [], count: 0 };
  }
}
