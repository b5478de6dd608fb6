import * as tf from '@tensorflow/tfjs-core';
import { assertInt, assertNumber, assertState, VncaError, describe } from '../core/errors.js';
import { cellMask, maskedUpdate } from '../core/mask.js';
import { doubleCells } from '../core/doubling.js';
import { aliveMask } from '../core/damage.js';
import { isRecordingGradients, keepingActiveTape } from '../backend/tfjsInternals.js';

/**
 * Anything that maps a cell state `[batch, height, width, channels]` to a delta of the same
 * shape: an {@link UpdateRule} layer (or any tfjs layer with that contract), or a plain function.
 *
 * @category Growth
 */
export type Rule = RuleLayer | ((state: tf.Tensor4D) => tf.Tensor4D);

/**
 * The part of a tfjs layer that growth needs: `apply` and its trainable weights, so that
 * gradient checkpointing can recompute steps and route gradients to the weights.
 *
 * @category Growth
 */
export interface RuleLayer {
  /** Runs the layer: the state `[batch, height, width, channels]` in, the update out. */
  apply(inputs: tf.Tensor | tf.Tensor[], kwargs?: Record<string, unknown>): unknown;
  /** The weights that gradients flow to. */
  readonly trainableWeights: ReadonlyArray<{
    /** The weight's current value. */
    read(): tf.Tensor;
  }>;
  /** Whether `build` has made the weights. */
  built: boolean;
  /** Makes the weights for an input shape. */
  build(inputShape: number[] | number[][]): void;
}

/**
 * Options of one update step.
 *
 * @category Growth
 */
export interface StepOptions {
  /** Probability that a cell updates in a step (one draw per cell, shared by its channels). Default 1. */
  pUpdate?: number;
  /**
   * Seed of the update masks. Step `i` of a run draws its mask with `seed + i`, so a run is
   * reproducible. Without a seed the masks are random.
   */
  seed?: number;
  /**
   * Alive masking of the classic growing NCA: a cell lives if the max over its 3x3
   * neighbourhood of channel `channel` exceeds `threshold`, before and after the update;
   * dead cells are zeroed. Off by default.
   */
  alive?: {
    /** Channel whose 3x3 max-pool decides which cells live (the alpha channel, 3 for RGBA). */
    channel?: number;
    /** A cell lives when that max-pool exceeds this (0.1 in the Distill article). */
    threshold?: number;
  } | false;
}

/**
 * Options of a plain run of `steps` update steps.
 *
 * @category Growth
 */
export interface RunOptions extends StepOptions {
  /** Number of update steps. */
  steps: number;
  /** Also return every intermediate state (after each step). Default false. */
  returnStates?: boolean;
  /**
   * Gradient checkpointing: under a gradient tape, keep only the state every `checkpoint`
   * steps and recompute the steps in between during the backward pass, so training memory
   * grows with the number of stored states instead of every activation. `true` = every step
   * (the least memory, about one extra forward pass of compute), a number = segment length,
   * `false` = off, `'auto'` = every step when the rollout's stored activations would exceed
   * `checkpointBudget` bytes, else off (measured on the first step: the bytes it keeps per
   * cell, times the cells of every step of the rollout). Only possible when the rule is a
   * layer (its weights are known). Default `'auto'`. Ignored when no gradient is being recorded.
   */
  checkpoint?: boolean | number | 'auto';
  /**
   * With `checkpoint: 'auto'`: the estimated bytes of stored activations above which the
   * rollout is checkpointed. Default 2^30 (1 GiB): the paper's model is checkpointed from
   * batch 8 on (about 139 MiB per sample). Checkpointing costs about a fifth of a training
   * step (the paper's model at batch 4 on wasm: 13.5 s against 10.9 s) and saves most of the
   * rollout's memory (its batch 32 fits in wasm's 4 GiB only with it).
   */
  checkpointBudget?: number;
  /**
   * The backward pass of a checkpointed segment recomputes and backpropagates the batch in
   * chunks of at most this many cells (batch x height x width; at least one sample per
   * chunk), so the memory of one step's backward pass is bounded by the chunk instead of
   * the whole batch. Assumes the
   * rule updates each sample independently, as every rule in this library does.
   * Default 8192 (8 samples of 32x32).
   */
  checkpointCells?: number;
}

/**
 * Options of {@link grow}: updates, then `nDoublings` times (double the grid, updates).
 *
 * @category Growth
 */
export interface GrowOptions extends Omit<RunOptions, 'steps'> {
  /** Update steps before the first doubling and after each doubling (the paper: 8). */
  stepsPerDoubling: number;
  /** Number of 2x2 cell divisions (the paper: 4, growing 2x2 to 32x32). */
  nDoublings: number;
}

/**
 * The result of a run: the final state and, on request, the states along the way.
 *
 * @category Growth
 */
export interface GrowResult {
  /** Final state `[batch, height, width, channels]`. The caller owns it. */
  state: tf.Tensor4D;
  /**
   * With `returnStates`: the seed and every state after each update step and each doubling,
   * in order, each `[batch, h, w, channels]` at its own grid size. The caller owns them.
   */
  states?: tf.Tensor4D[];
}

function isLayer(rule: Rule): rule is RuleLayer {
  return typeof rule === 'object' && rule !== null && typeof (rule as RuleLayer).apply === 'function';
}

function checkRule(rule: unknown, fn: string): asserts rule is Rule {
  if (typeof rule !== 'function' && !isLayer(rule as Rule)) {
    throw new VncaError(fn, 'rule', `must be an UpdateRule layer or a function state => delta, but got ${describe(rule)}.`);
  }
}

/** Builds a layer rule for this input shape if it has not been built. @internal */
export function ensureBuilt(rule: Rule, shape: number[]): void {
  if (isLayer(rule) && !rule.built) {
    rule.build(shape);
    rule.built = true;
  }
}

/** The delta of a rule for a state; trusts its input. @internal */
export function applyRule(rule: Rule, state: tf.Tensor4D): tf.Tensor4D {
  const delta = isLayer(rule) ? (rule.apply(state) as tf.Tensor4D) : rule(state);
  return delta;
}

function checkStepOptions(options: StepOptions, fn: string): void {
  if (options.pUpdate !== undefined) assertNumber(options.pUpdate, fn, 'options.pUpdate', 0, 1);
  if (options.seed !== undefined) assertInt(options.seed, fn, 'options.seed');
  if (options.alive) {
    if (options.alive.channel !== undefined) assertInt(options.alive.channel, fn, 'options.alive.channel', 0);
    if (options.alive.threshold !== undefined) assertNumber(options.alive.threshold, fn, 'options.alive.threshold');
  }
}

/** One update step with an optional precomputed mask; trusts its input. @internal */
function stepWithMask(rule: Rule, state: tf.Tensor4D, mask: tf.Tensor4D | null, alive: StepOptions['alive']): tf.Tensor4D {
  return tf.tidy(() => {
    if (!alive) {
      const delta = applyRule(rule, state);
      return maskedUpdate(state, delta, mask);
    }
    const pre = aliveMask(state, alive);
    const delta = applyRule(rule, state);
    const next = maskedUpdate(state, delta, mask);
    const post = aliveMask(next, alive);
    return tf.mul(next, tf.mul(pre, post)) as tf.Tensor4D;
  });
}

function maskFor(state: tf.Tensor4D, pUpdate: number, seed: number | undefined): tf.Tensor4D | null {
  if (pUpdate >= 1) return null;
  const [b, h, w] = state.shape;
  return cellMask([b, h, w], pUpdate, seed);
}

/**
 * One update step: `state + mask * rule(state)`, with a per-cell Bernoulli(pUpdate) mask
 * shared across channels (no rescaling), and optional alive masking.
 *
 * @param rule The update rule.
 * @param state Cell states `[batch, height, width, channels]`.
 * @param options pUpdate, seed, alive masking.
 * @returns The next state `[batch, height, width, channels]`, owned by the caller.
 * @category Growth
 */
export function step(rule: Rule, state: tf.Tensor4D, options: StepOptions = {}): tf.Tensor4D {
  const fn = 'step';
  checkRule(rule, fn);
  assertState(state, fn);
  checkStepOptions(options, fn);
  ensureBuilt(rule, state.shape);
  return tf.tidy(() => stepWithMask(rule, state, maskFor(state, options.pUpdate ?? 1, options.seed), options.alive));
}

/** Default of {@link RunOptions.checkpointCells}. */
const CHECKPOINT_CELLS = 8192;

function chunkCells(options: RunOptions | GrowOptions, fn: string): number {
  if (options.checkpointCells === undefined) return CHECKPOINT_CELLS;
  assertInt(options.checkpointCells, fn, 'options.checkpointCells', 1);
  return options.checkpointCells;
}

/** Default of {@link RunOptions.checkpointBudget}. */
const CHECKPOINT_BUDGET = 2 ** 30;

/** The `'auto'` checkpointing decision, shared by the stages of one rollout. @internal */
interface AutoCheckpoint {
  budget: number;
  /** batch x height x width summed over every step of the rollout. */
  cellSteps: number;
  /** Segment length once decided (1 or 0). */
  decided?: number;
}

function autoCheckpoint(options: RunOptions | GrowOptions, cellSteps: number, fn: string): AutoCheckpoint | undefined {
  if (options.checkpointBudget !== undefined) assertNumber(options.checkpointBudget, fn, 'options.checkpointBudget', 0, Infinity);
  if ((options.checkpoint ?? 'auto') !== 'auto') return undefined;
  return { budget: options.checkpointBudget ?? CHECKPOINT_BUDGET, cellSteps };
}

/** Whether kernels run now are recorded on a gradient tape. */
function recording(): boolean {
  return isRecordingGradients();
}

function segmentLength(checkpoint: boolean | number | 'auto' | undefined, fn: string): number {
  if (checkpoint === undefined || checkpoint === 'auto') return 0; // decided during the run (AutoCheckpoint)
  if (checkpoint === true) return 1;
  if (checkpoint === false) return 0;
  assertInt(checkpoint, fn, 'options.checkpoint', 1);
  return checkpoint;
}

/**
 * `tf.grads` run inside another gradient computation's backward pass. tfjs 4.22 shares one
 * tape between the two and clears it when the inner computation ends, which breaks the outer
 * one; the outer tape is put back afterwards. @internal
 */
function isolatedGrads(f: (x: tf.Tensor) => tf.Tensor, xs: tf.Tensor[], dy: tf.Tensor): tf.Tensor[] {
  return keepingActiveTape(() => tf.grads((x: tf.Tensor) => f(x))(xs, dy));
}

/**
 * Runs `masks.length` steps as one checkpointed segment: under a tape, only the segment's
 * input is kept, and the backward pass recomputes the steps. @internal
 */
function checkpointedSegment(
  rule: RuleLayer, state: tf.Tensor4D, masks: (tf.Tensor4D | null)[], alive: StepOptions['alive'], cells: number,
): tf.Tensor4D {
  const weights = rule.trainableWeights.map((w) => w.read() as tf.Variable);
  const maskInputs = masks.filter((m): m is tf.Tensor4D => m !== null);
  const run = (s: tf.Tensor4D, ms: tf.Tensor[]): tf.Tensor4D => {
    let k = 0;
    let cur = s;
    for (const m of masks) {
      const next = stepWithMask(rule, cur, m === null ? null : (ms[k++] as tf.Tensor4D), alive);
      if (cur !== s) cur.dispose();
      cur = next;
    }
    return cur;
  };
  const f = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const save = args[args.length - 1] as tf.GradSaveFunc;
    const x = args[0] as tf.Tensor4D;
    const ms = args.slice(1, 1 + maskInputs.length) as tf.Tensor[];
    save([x, ...ms]);
    const value = run(x, ms);
    return {
      value,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [x0, ...savedMasks] = saved as [tf.Tensor4D, ...tf.Tensor[]];
        const [b, h, w] = x0.shape;
        const samplesPerChunk = Math.max(1, Math.floor(cells / (h * w)));
        const zeros = savedMasks.map((m) => tf.zerosLike(m));
        if (samplesPerChunk >= b) {
          const [gx, ...gw] = isolatedGrads((s) => run(s as tf.Tensor4D, savedMasks), [x0, ...weights], dy);
          return [gx!, ...zeros, ...gw];
        }
        // Chunks of the batch, one after the other: each chunk's recomputed activations and
        // gradient temporaries are freed before the next starts; weight gradients add up.
        const gxs: tf.Tensor[] = [];
        let gws: tf.Tensor[] = [];
        for (let start = 0; start < b; start += samplesPerChunk) {
          const n = Math.min(samplesPerChunk, b - start);
          const [gx, ...gw] = tf.tidy(() => {
            const part = (t: tf.Tensor) => (t.shape[0] === b ? tf.slice(t, start, n) : t);
            const ms = savedMasks.map(part);
            return isolatedGrads((s) => run(s as tf.Tensor4D, ms), [part(x0), ...weights], part(dy));
          });
          gxs.push(gx!);
          if (gws.length === 0) {
            gws = gw;
          } else {
            const sums = gws.map((g, i) => tf.add(g, gw[i]!));
            tf.dispose([...gws, ...gw]);
            gws = sums;
          }
        }
        const gx = tf.concat(gxs);
        tf.dispose(gxs);
        return [gx, ...zeros, ...gws];
      },
    };
  });
  return f(state, ...maskInputs, ...weights) as tf.Tensor4D;
}

/**
 * Runs the rule for `steps` update steps on a fixed grid (non-doubling automata, regrowth).
 *
 * @param rule The update rule.
 * @param state Initial cell states `[batch, height, width, channels]` (not disposed).
 * @param options steps, pUpdate, seed, alive, returnStates, checkpoint, checkpointBudget, checkpointCells.
 * @returns The final state and, with `returnStates`, the initial state's copy and every state after each step.
 * @example
 * ```ts
 * const { state } = runSteps(rule, seed, { steps: 64, pUpdate: 0.5 });
 * ```
 * @category Growth
 */
export function runSteps(rule: Rule, state: tf.Tensor4D, options: RunOptions): GrowResult {
  const fn = 'runSteps';
  checkRule(rule, fn);
  assertState(state, fn);
  if (typeof options !== 'object' || options === null) throw new VncaError(fn, 'options', `must be an object with steps, but got ${describe(options)}.`);
  assertInt(options.steps, fn, 'options.steps', 0);
  checkStepOptions(options, fn);
  const seg = segmentLength(options.checkpoint, fn);
  ensureBuilt(rule, state.shape);
  const states: tf.Tensor4D[] | undefined = options.returnStates ? [tf.clone(state)] : undefined;
  const cells = chunkCells(options, fn);
  const [b, h, w] = state.shape;
  const auto = autoCheckpoint(options, options.steps * b * h * w, fn);
  const final = runInternal(rule, state, options.steps, 0, { ...options, seg, cells, auto }, states);
  return states ? { state: final, states } : { state: final };
}

interface InternalOptions extends StepOptions { seg: number; cells: number; auto?: AutoCheckpoint; returnStates?: boolean }

/**
 * `steps` steps starting at global step index `offset` (for mask seeds). Returns a new tensor
 * (never the input itself). Pushes clones of intermediate states into `states` if given. @internal
 */
function runInternal(
  rule: Rule, state: tf.Tensor4D, steps: number, offset: number, o: InternalOptions, states?: tf.Tensor4D[],
): tf.Tensor4D {
  const p = o.pUpdate ?? 1;
  const seedAt = (i: number) => (o.seed === undefined ? undefined : o.seed + offset + i);
  // Checkpointing only pays under a tape, and needs the rule's weights; stored states need every step anyway.
  const canCheckpoint = isLayer(rule) && !states;
  let seg = canCheckpoint ? o.seg : 0;
  const auto = canCheckpoint && o.auto && recording() ? o.auto : undefined;
  if (auto?.decided !== undefined) seg = auto.decided;
  let cur = state;
  let i = 0;
  while (i < steps) {
    // 'auto': the first step runs plainly, and what it keeps on the tape decides the rest.
    const measure = auto !== undefined && auto.decided === undefined;
    const bytesBefore = measure ? tf.memory().numBytes : 0;
    const n = seg > 0 ? Math.min(seg, steps - i) : 1;
    const next = tf.tidy(() => {
      const masks: (tf.Tensor4D | null)[] = [];
      for (let j = 0; j < n; j++) masks.push(maskFor(cur, p, seedAt(i + j)));
      if (seg > 0) return checkpointedSegment(rule as RuleLayer, cur, masks, o.alive, o.cells);
      return stepWithMask(rule, cur, masks[0]!, o.alive);
    });
    if (measure) {
      const [b, h, w] = cur.shape;
      const perCell = (tf.memory().numBytes - bytesBefore) / (b * h * w);
      auto.decided = perCell * auto.cellSteps > auto.budget ? 1 : 0;
      seg = auto.decided;
    }
    if (cur !== state) cur.dispose();
    cur = next;
    i += n;
    if (states) states.push(tf.clone(cur));
  }
  return cur === state ? tf.clone(state) : cur;
}

/**
 * Grows cell states the VNCA way: `stepsPerDoubling` updates, then `nDoublings` times
 * (every cell divides into a 2x2 block with {@link doubleCells}, then `stepsPerDoubling`
 * updates). The paper's MNIST decoder: 8 steps per doubling, 4 doublings, 2x2 → 32x32,
 * 40 steps in all.
 *
 * Memory stays flat: intermediate tensors are freed; the caller owns what is returned.
 *
 * @param rule The update rule.
 * @param seed The seed grid `[batch, h0, w0, channels]` (e.g. z copied into 2x2 cells); not disposed.
 * @param options stepsPerDoubling, nDoublings, pUpdate, seed, returnStates, checkpoint, checkpointBudget, checkpointCells, alive.
 * @returns The final state `[batch, h0 * 2^nDoublings, w0 * 2^nDoublings, channels]` and, with
 *   `returnStates`, every state along the way (the seed's copy first).
 * @example
 * ```ts
 * const z = tf.randomNormal([4, 1, 1, 256]);
 * const seedGrid = tf.tile(z, [1, 2, 2, 1]);
 * const { state } = grow(rule, seedGrid, { stepsPerDoubling: 8, nDoublings: 4 }); // [4, 32, 32, 256]
 * ```
 * @category Growth
 */
export function grow(rule: Rule, seed: tf.Tensor4D, options: GrowOptions): GrowResult {
  const fn = 'grow';
  checkRule(rule, fn);
  assertState(seed, fn, 'seed');
  if (typeof options !== 'object' || options === null) {
    throw new VncaError(fn, 'options', `must be an object with stepsPerDoubling and nDoublings, but got ${describe(options)}.`);
  }
  assertInt(options.stepsPerDoubling, fn, 'options.stepsPerDoubling', 0);
  assertInt(options.nDoublings, fn, 'options.nDoublings', 0, 16);
  checkStepOptions(options, fn);
  const seg = segmentLength(options.checkpoint, fn);
  ensureBuilt(rule, seed.shape);
  const states: tf.Tensor4D[] | undefined = options.returnStates ? [tf.clone(seed)] : undefined;
  let cellSteps = 0;
  for (let d = 0; d <= options.nDoublings; d++) cellSteps += options.stepsPerDoubling * seed.shape[0] * seed.shape[1] * seed.shape[2] * 4 ** d;
  const auto = autoCheckpoint(options, cellSteps, fn);
  const o: InternalOptions = { ...options, seg, cells: chunkCells(options, fn), auto };
  const k = options.stepsPerDoubling;
  let cur = runInternal(rule, seed, k, 0, o, states);
  for (let d = 1; d <= options.nDoublings; d++) {
    const doubled = doubleCells(cur);
    cur.dispose();
    if (states) states.push(tf.clone(doubled));
    cur = runInternal(rule, doubled, k, d * k, o, states);
    doubled.dispose();
  }
  return states ? { state: cur, states } : { state: cur };
}
