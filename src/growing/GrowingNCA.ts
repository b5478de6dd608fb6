import * as tf from '@tensorflow/tfjs-core';
import { VncaError, assertInt, assertState, describe } from '../core/errors.js';
import { damage, type DamageRegion } from '../core/damage.js';
import { SamplePool, damageSubset } from '../core/SamplePool.js';
import { resumableRng, type ResumableRng } from '../core/random.js';
import { relativeWeightName } from '../core/io.js';
import { runSteps, type GrowResult } from '../growth/grow.js';
import { PerceptionUpdateRule } from '../layers/PerceptionUpdateRule.js';
import { enableWasmTraining } from '../backend/wasm/register.js';
import { learningRateOf, setLearningRate } from '../backend/tfjsInternals.js';
import { checkTarget, resolveConfig, type GrowingNCAConfig, type GrowingNCAOptions, type GrowingRunOptions } from './config.js';
import { adamFromState, readAdamState } from '../vae/optimizerState.js';
import { loadGrowingNCA, saveGrowingNCA, type GrowingSaveOptions, type GrowingTrainingState } from './persistence.js';

export type { GrowingNCAConfig, GrowingNCAOptions, GrowingRunOptions } from './config.js';
export type { GrowingSaveOptions } from './persistence.js';

/** Plain numbers from one {@link GrowingNCA.trainStep}. @category Growing NCA */
export interface GrowingTrainStepResult {
  /** L2 loss of the batch after the rollout: mean over batch, pixels and RGBA channels. */
  loss: number;
  /** Number of update steps of this rollout. */
  steps: number;
  /** The learning rate used by this step. */
  learningRate: number;
  /** Global norm of the raw gradients (before the per-variable normalisation). */
  gradNorm: number;
  /**
   * True when the loss or a gradient norm was NaN or ±Infinity: nothing was applied (the
   * rule's weights, Adam's moments, the pool and the step count are as before the step).
   */
  skipped: boolean;
}

/** The channel read as alpha: the state's first four channels are RGBA. */
const ALPHA = 3;

/**
 * The classic Growing Neural Cellular Automaton (Mordvintsev, Randazzo, Niklasson, Levin,
 * Distill 2020), assembled from the library's primitives: a grid of cells with 16 channels
 * (RGBA + 12 hidden) grows from a single live cell into a target image and regrows it
 * after damage.
 *
 * - Rule: {@link PerceptionUpdateRule}, i.e. `perceive` with the identity, Sobel-x and
 *   Sobel-y kernels (16 -> 48 channels), a 1x1 dense layer 48 -> 128 with ReLU, and a 1x1
 *   dense layer 128 -> 16 that starts at zero.
 * - Step: `runSteps` with `pUpdate` 0.5 and alive masking (a cell lives while the largest
 *   alpha in its 3x3 neighbourhood exceeds 0.1, checked before and after the update; dead
 *   cells are zeroed).
 * - Training ({@link GrowingNCA.trainStep}): sample-pool training with a {@link SamplePool}
 *   of seeds; each step the worst state of the batch is reset to the seed and the
 *   `damageCount` best get a random circle zeroed ({@link damageSubset}); L2 loss on RGBA;
 *   Adam with each variable's gradient divided by its norm (`g / (|g| + 1e-8)`), as in the
 *   article (not global-norm clipping); learning rate 2e-3, 2e-4 after 2000 steps.
 *
 * @example
 * ```ts
 * const nca = new GrowingNCA({ target, seed: 0 });      // target: [40, 40, 4] premultiplied RGBA
 * for (let i = 0; i < 2000; i++) nca.trainStep();
 * const { state } = nca.grow(96);                        // [1, 40, 40, 16]
 * const picture = nca.toRgb(state);                      // [1, 40, 40, 3] on white
 * ```
 * @category Growing NCA
 */
export class GrowingNCA {
  /** The resolved configuration (the target is held separately). */
  readonly config: GrowingNCAConfig;
  /** The update rule: `[b, h, w, channels]` -> delta of the same shape. */
  readonly rule: PerceptionUpdateRule;
  private poolOfStates: SamplePool;
  private readonly target: tf.Tensor3D;
  private readonly seedCell: tf.Tensor4D;
  private rngSource: ResumableRng;
  private readonly rng = (): number => this.rngSource.next();
  private optimizer: tf.Optimizer | null = null;
  private steps = 0;
  private disposed = false;

  /**
   * @param options - The target and the training settings (defaults: the Distill article's).
   */
  constructor(options: GrowingNCAOptions) {
    const fn = 'GrowingNCA';
    if (typeof options !== 'object' || options === null) {
      throw new VncaError(fn, 'options', `must be an object with a target, but got ${describe(options)}.`);
    }
    checkTarget(options.target, fn);
    this.config = resolveConfig(options, fn);
    const c = this.config;
    const [h, w] = options.target.shape;
    this.target = tf.clone(options.target);
    this.rngSource = resumableRng(c.seed ?? Math.floor(Math.random() * 4294967296));
    this.seedCell = this.seedState(1);
    this.poolOfStates = SamplePool.fill(this.seedCell, c.poolSize, { seed: Math.floor(this.rng() * 4294967296) });
    this.rule = new PerceptionUpdateRule({ channels: c.channels, hidden: c.hidden });
    this.rule.build([null as never, h, w, c.channels]);
    this.rule.built = true;
  }

  /** Height and width of the grid (the target's). */
  get gridShape(): [number, number] {
    return [this.target.shape[0], this.target.shape[1]];
  }

  /** The sample pool of training states, `[poolSize, height, width, channels]`. */
  get pool(): SamplePool {
    return this.poolOfStates;
  }

  /**
   * Training steps taken so far (a loaded model starts at 0, or where its run stopped when it
   * was saved with `includeOptimizer`).
   */
  get trainingSteps(): number {
    return this.steps;
  }

  /** The learning rate of the next training step (see {@link GrowingNCAOptions.decaySteps}). */
  get learningRate(): number {
    const c = this.config;
    return c.decaySteps > 0 && this.steps >= c.decaySteps ? c.learningRate * c.decayFactor : c.learningRate;
  }

  /** Every trainable variable of the rule. */
  get trainableVariables(): tf.Variable[] {
    return this.rule.trainableWeights.map((w) => w.read() as tf.Variable);
  }

  /** Number of trainable parameters (8,336 with the defaults: 48 x 128 + 128 + 128 x 16 + 16). */
  countParams(): number {
    return this.rule.countParams();
  }

  private check(fn: string): void {
    if (this.disposed) throw new VncaError(fn, 'this', 'is a disposed GrowingNCA; create or load a new one.');
  }

  private checkGridState(state: unknown, fn: string): asserts state is tf.Tensor4D {
    assertState(state, fn);
    const [h, w] = this.gridShape;
    const [, sh, sw, sc] = state.shape;
    if (sh !== h || sw !== w || sc !== this.config.channels) {
      throw new VncaError(fn, 'state', `must have shape [batch, ${h}, ${w}, ${this.config.channels}], but got [${state.shape.join(', ')}].`);
    }
  }

  private runOptions(seed: number | undefined) {
    return {
      pUpdate: this.config.pUpdate,
      alive: { channel: ALPHA, threshold: this.config.aliveThreshold },
      ...(seed === undefined ? {} : { seed }),
    };
  }

  /**
   * The seed: one live cell in the centre of the grid (cell `(floor(h / 2), floor(w / 2))`)
   * whose alpha and hidden channels are 1 and RGB 0; every other cell is 0.
   *
   * @param batch - Number of copies, a positive integer (default 1).
   * @returns float32 `[batch, height, width, channels]`; the caller owns it.
   */
  seedState(batch = 1): tf.Tensor4D {
    assertInt(batch, 'GrowingNCA.seedState', 'batch', 1);
    const [h, w] = this.gridShape;
    const ch = this.config.channels;
    const values = new Float32Array(batch * h * w * ch);
    const centre = (Math.floor(h / 2) * w + Math.floor(w / 2)) * ch;
    for (let b = 0; b < batch; b++) {
      for (let k = ALPHA; k < ch; k++) values[b * h * w * ch + centre + k] = 1;
    }
    return tf.tensor4d(values, [batch, h, w, ch]);
  }

  /**
   * Per-state L2 loss against the target: mean over pixels and RGBA channels of
   * `(state[..., :4] - target)^2`.
   *
   * @param state - float32 `[batch, height, width, channels]`.
   * @returns float32 `[batch]`; the caller owns it.
   */
  loss(state: tf.Tensor4D): tf.Tensor1D {
    this.check('GrowingNCA.loss');
    this.checkGridState(state, 'GrowingNCA.loss');
    return tf.tidy(() => this.lossPerState(state));
  }

  /** `loss` without checks; call inside a tidy. */
  private lossPerState(state: tf.Tensor4D): tf.Tensor1D {
    const [b, h, w] = state.shape;
    const rgba = tf.slice(state, [0, 0, 0, 0], [b, h, w, 4]);
    return tf.mean(tf.squaredDifference(rgba, this.target), [1, 2, 3]) as tf.Tensor1D;
  }

  /**
   * One step of sample-pool training: draw `batchSize` states from the pool, sort them by
   * loss, reset the worst to the seed, zero a random circle in the `damageCount` best (once
   * `damageAfter` steps are done), run
   * a random number of steps in `stepsRange`, take the L2 loss of the RGBA channels against
   * the target (mean over batch, pixels and channels), and update the rule with Adam after
   * dividing each variable's gradient by its norm (`g / (|g| + 1e-8)`); the learning rate
   * drops by `decayFactor` after `decaySteps` steps. The final states go
   * back into the pool. On the wasm backend the missing training kernels are registered
   * first (`enableWasmTraining`).
   *
   * @returns Plain numbers: the loss, the rollout's length and the raw gradient norm.
   */
  trainStep(): GrowingTrainStepResult {
    const fn = 'GrowingNCA.trainStep';
    this.check(fn);
    if (tf.getBackend() === 'wasm') enableWasmTraining();
    const c = this.config;
    this.optimizer ??= tf.train.adam(c.learningRate);
    // tfjs's Adam reads its (protected) learningRate field on every update: the schedule sets it.
    setLearningRate(this.optimizer, this.learningRate);
    const { indices, states } = this.poolOfStates.sample(c.batchSize);
    // Worst (largest loss) first, as in the article.
    const before = tf.tidy(() => this.lossPerState(states));
    const lossBefore = before.dataSync();
    before.dispose();
    const order = indices.map((_, k) => k).sort((a, b) => lossBefore[b]! - lossBefore[a]!);
    const sortedIndices = order.map((k) => indices[k]!);
    const reset = tf.tidy(() => {
      const sorted = tf.gather(states, tf.tensor1d(order, 'int32')) as tf.Tensor4D;
      if (c.batchSize === 1) return tf.clone(this.seedCell);
      return tf.concat([this.seedCell, tf.slice(sorted, 1, c.batchSize - 1)], 0) as tf.Tensor4D;
    });
    states.dispose();
    const damaged = this.steps >= c.damageAfter ? c.damageCount : 0;
    const best = Array.from({ length: damaged }, (_, k) => c.batchSize - 1 - k);
    const x0 = damageSubset(reset, best, { shape: 'circle', rng: this.rng });
    reset.dispose();
    const [lo, hi] = c.stepsRange;
    const steps = lo + Math.floor(this.rng() * (hi - lo + 1));
    const maskSeed = Math.floor(this.rng() * 2147483647);
    let final: tf.Tensor4D | null = null;
    const { value, grads } = tf.variableGrads(() => {
      const { state } = runSteps(this.rule, x0, { ...this.runOptions(maskSeed), steps, checkpoint: c.checkpoint });
      final = tf.keep(state);
      return tf.mean(this.lossPerState(state)) as tf.Scalar;
    }, this.trainableVariables);
    const norms = tf.tidy(() => tf.stack(Object.values(grads).map((g) => tf.norm(g))));
    const normValues = norms.dataSync();
    const loss = value.dataSync()[0]!;
    const gradNorm = Math.sqrt(Array.from(normValues).reduce((a, v) => a + v * v, 0));
    // A non-finite loss or gradient never reaches the weights, Adam's moments or the pool.
    const skipped = !Number.isFinite(loss) || !Number.isFinite(gradNorm);
    const scaled: tf.NamedTensorMap = {};
    if (!skipped) {
      Object.entries(grads).forEach(([name, g], k) => {
        scaled[name] = tf.div(g, normValues[k]! + 1e-8);
      });
      this.optimizer.applyGradients(scaled);
      this.poolOfStates.replace(sortedIndices, final!);
      this.steps++;
    }
    const result: GrowingTrainStepResult = {
      loss,
      steps,
      learningRate: learningRateOf(this.optimizer),
      gradNorm,
      skipped,
    };
    tf.dispose([value, norms, x0, final!, ...Object.values(grads), ...Object.values(scaled)]);
    return result;
  }

  /**
   * Grows the pattern from the seed ({@link GrowingNCA.seedState}) for `steps` steps.
   *
   * @param steps - Update steps, a non-negative integer (the article shows 96 or more).
   * @param options - `returnStates`, mask `seed`, and `batch` (independent growths, default 1).
   * @returns The final state `[batch, height, width, channels]` and, with `returnStates`,
   *   the seed and every state after each step; the caller owns them.
   */
  grow(steps: number, options: GrowingRunOptions & { batch?: number; returnStates: true }): Required<GrowResult>;
  grow(steps: number, options?: GrowingRunOptions & { batch?: number }): GrowResult;
  grow(steps: number, options: GrowingRunOptions & { batch?: number } = {}): GrowResult {
    const fn = 'GrowingNCA.grow';
    this.check(fn);
    assertInt(steps, fn, 'steps', 0);
    const batch = options.batch ?? 1;
    assertInt(batch, fn, 'options.batch', 1);
    const seed = this.seedState(batch);
    try {
      return runSteps(this.rule, seed, { ...this.runOptions(options.seed), steps, returnStates: options.returnStates });
    } finally {
      seed.dispose();
    }
  }

  /**
   * Damages grown states (zeroes every channel of the cells in `region`, with `damage`)
   * and runs `steps` more steps: the regeneration experiment of the article.
   *
   * @param state - Grown states, float32 `[batch, height, width, channels]` (not disposed).
   * @param region - The region to zero (a `DamageRegion`: square, circle or mask).
   * @param steps - Update steps after the damage, a non-negative integer.
   * @param options - `returnStates` (the damaged state first), mask `seed`.
   * @returns The regrown state `[batch, height, width, channels]` and, with `returnStates`,
   *   the states along the way; the caller owns them.
   */
  regenerate(state: tf.Tensor4D, region: DamageRegion, steps: number, options: GrowingRunOptions & { returnStates: true }): Required<GrowResult>;
  regenerate(state: tf.Tensor4D, region: DamageRegion, steps: number, options?: GrowingRunOptions): GrowResult;
  regenerate(state: tf.Tensor4D, region: DamageRegion, steps: number, options: GrowingRunOptions = {}): GrowResult {
    const fn = 'GrowingNCA.regenerate';
    this.check(fn);
    this.checkGridState(state, fn);
    assertInt(steps, fn, 'steps', 0);
    const hurt = damage(state, region);
    try {
      return runSteps(this.rule, hurt, { ...this.runOptions(options.seed), steps, returnStates: options.returnStates });
    } finally {
      hurt.dispose();
    }
  }

  /**
   * The visible part of cell states: the RGBA channels, clipped to [0, 1] (colour
   * premultiplied by alpha).
   *
   * @param state - float32 `[batch, height, width, channels]`, channels >= 4.
   * @returns float32 `[batch, height, width, 4]`; the caller owns it.
   */
  rgba(state: tf.Tensor4D): tf.Tensor4D {
    assertState(state, 'GrowingNCA.rgba');
    if (state.shape[3] < 4) throw new VncaError('GrowingNCA.rgba', 'state', `must have at least 4 channels, but got ${state.shape[3]}.`);
    return tf.tidy(() => {
      const [b, h, w] = state.shape;
      return tf.clipByValue(tf.slice(state, [0, 0, 0, 0], [b, h, w, 4]), 0, 1) as tf.Tensor4D;
    });
  }

  /**
   * Cell states as an RGB picture on a white background: `rgb + 1 - alpha` (premultiplied
   * colour composited over white), clipped to [0, 1].
   *
   * @param state - float32 `[batch, height, width, channels]`, channels >= 4.
   * @returns float32 `[batch, height, width, 3]` in [0, 1]; the caller owns it.
   */
  toRgb(state: tf.Tensor4D): tf.Tensor4D {
    const rgba = this.rgba(state);
    try {
      return tf.tidy(() => {
        const [b, h, w] = rgba.shape;
        const rgb = tf.slice(rgba, [0, 0, 0, 0], [b, h, w, 3]);
        const alpha = tf.slice(rgba, [0, 0, 0, 3], [b, h, w, 1]);
        return tf.clipByValue(tf.sub(tf.add(rgb, 1), alpha), 0, 1) as tf.Tensor4D;
      });
    } finally {
      rgba.dispose();
    }
  }

  /**
   * The target as the model holds it.
   *
   * @returns float32 `[height, width, 4]` premultiplied RGBA; the caller owns the copy.
   */
  getTarget(): tf.Tensor3D {
    this.check('GrowingNCA.getTarget');
    return tf.clone(this.target);
  }

  /** Every weight by a stable name: `rule/<weight>` (e.g. `rule/dense_in/kernel`). @internal */
  namedWeights(): { name: string; variable: tf.Variable }[] {
    return this.rule.weights.map((w) => ({ name: `rule/${relativeWeightName(this.rule.name, w.originalName)}`, variable: w.read() as tf.Variable }));
  }

  /**
   * Saves the configuration (in `modelTopology`), the rule's weights and the target (as
   * the weight `target`) through a tfjs IO handler or URL scheme (`tf.io.withSaveHandler`,
   * `localstorage://`, `indexeddb://`, `downloads://`, or `fileSystem(dir)` from
   * `vnca/node`). With `includeOptimizer`, the training run goes into the same save too:
   * Adam's moments, the step count, the rng's position and the sample pool, so that
   * {@link GrowingNCA.load} continues the run where it stopped.
   *
   * @param target - A URL string or a `tf.io.IOHandler`.
   * @param options - `includeOptimizer` (default false): see {@link GrowingSaveOptions}.
   * @returns The handler's save result.
   */
  async save(target: string | tf.io.IOHandler, options: GrowingSaveOptions = {}): Promise<tf.io.SaveResult> {
    const fn = 'GrowingNCA.save';
    this.check(fn);
    return saveGrowingNCA(this, this.target, target, options, fn);
  }

  /**
   * Loads a model saved by {@link GrowingNCA.save}. All weights are checked (names, shapes,
   * finite values) before any is set. A save made with `includeOptimizer` also restores the
   * training run (Adam's moments, step count, rng, sample pool), so training continues the
   * same curve.
   *
   * @param source - A URL string or a `tf.io.IOHandler` (e.g. `tf.io.fromMemory(artifacts)`).
   * @returns The model (with a fresh pool and optimiser, unless the save holds a training
   *   run); the caller disposes it.
   */
  static async load(source: string | tf.io.IOHandler): Promise<GrowingNCA> {
    return loadGrowingNCA(source, (options) => new GrowingNCA(options), 'GrowingNCA.load');
  }

  /**
   * The training run's state for a checkpoint: numbers, Adam's moments in the order of
   * {@link GrowingNCA.trainableVariables} (the optimiser's own variables: do not dispose them)
   * and a copy of the pool's states (the caller disposes it). @internal
   */
  async trainingState(): Promise<GrowingTrainingState> {
    // Adam first: the pool's copy is the caller's, and nothing after it can throw.
    const adam = this.optimizer ? await readAdamState(this.optimizer) : { adamIterations: 0, m: [], v: [] };
    const { states, rngState: poolRngState } = this.poolOfStates.snapshot();
    return { step: this.steps, rngState: this.rngSource.state(), poolRngState, poolStates: states, ...adam };
  }

  /** Continues a run from {@link GrowingNCA.trainingState}'s (checked) state; its tensors are not disposed. @internal */
  async restoreTraining(state: GrowingTrainingState): Promise<void> {
    this.optimizer?.dispose();
    this.optimizer = null;
    this.steps = state.step;
    this.rngSource = resumableRng(state.rngState);
    const pool = new SamplePool(state.poolStates, { seed: state.poolRngState });
    this.poolOfStates.dispose();
    this.poolOfStates = pool;
    if (state.m.length === 0) return;
    const c = this.config;
    this.optimizer = await adamFromState(() => tf.train.adam(c.learningRate), this.trainableVariables, state);
  }

  /**
   * Forgets the optimiser's state (Adam's moments): the next {@link GrowingNCA.trainStep}
   * starts a fresh Adam. The learning-rate schedule (the step count) is kept.
   */
  resetOptimizer(): void {
    this.check('GrowingNCA.resetOptimizer');
    this.optimizer?.dispose();
    this.optimizer = null;
  }

  /** Frees the weights, the pool, the target and the optimiser state. A second call does nothing. */
  dispose(): void {
    if (this.disposed) return;
    this.optimizer?.dispose();
    this.optimizer = null;
    this.poolOfStates.dispose();
    for (const w of this.rule.weights) w.dispose();
    tf.dispose([this.target, this.seedCell]);
    this.disposed = true;
  }
}
