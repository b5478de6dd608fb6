import * as tf from '@tensorflow/tfjs-core';
import { VncaError, assertInt, assertNumber, assertOneOf, assertState, assertTensor, describe } from './errors.js';
import { damage, damageMask } from './damage.js';
import { resumableRng, type ResumableRng } from './random.js';

/** An integer seed from `Math.random`, for pools created without one. @internal */
function randomSeed(): number {
  return Math.floor(Math.random() * 4294967296);
}

/** `count` distinct integers of [0, n) in random order (a partial Fisher–Yates shuffle). @internal */
function pickDistinct(n: number, count: number, rng: () => number): number[] {
  const all = Array.from({ length: n }, (_, i) => i);
  for (let i = 0; i < count; i++) {
    const j = i + Math.floor(rng() * (n - i));
    const t = all[i]!;
    all[i] = all[j]!;
    all[j] = t;
  }
  return all.slice(0, count);
}

/** Entry `i` of `x` as its own tensor `[1, ...]`, a copy that shares no buffer with `x`. @internal */
function entry(x: tf.Tensor, i: number): tf.Tensor {
  // gather copies on every backend (a contiguous slice may be a view of x's buffer on cpu
  // and webgl, which would keep the whole batch alive as long as one entry lives).
  return tf.tidy(() => tf.gather(x, tf.tensor1d([i], 'int32')));
}

/**
 * Options of a {@link SamplePool}.
 *
 * @category Sample pool
 */
export interface SamplePoolOptions {
  /**
   * Seed of the draws of {@link SamplePool.sample}: the same seed and the same calls give
   * the same indices. Default: a random seed.
   */
  seed?: number;
  /**
   * Optional per-entry data kept beside each state, e.g. the image each state should grow
   * into: any tensor `[size, ...]` whose first dimension matches the states'. The pool
   * keeps a copy; the caller still owns (and disposes) what it passed.
   */
  payload?: tf.Tensor;
}

/**
 * A batch drawn from a {@link SamplePool}. The caller owns (and disposes) the tensors.
 *
 * @category Sample pool
 */
export interface PoolSample {
  /** Which pool entries were drawn, in batch order (distinct). */
  indices: number[];
  /** Copies of their states, float32 `[batch, height, width, channels]`. */
  states: tf.Tensor4D;
  /** Copies of their payload, `[batch, ...]`, when the pool has one. */
  payload?: tf.Tensor;
}

/**
 * A pool of cell states for sample-pool training (Mordvintsev et al., "Growing Neural
 * Cellular Automata", Distill 2020; the non-doubling VNCA of Palm et al. 2022): training
 * draws a batch of earlier final states, grows them further, and writes the results back,
 * so the automaton learns to keep (and repair) its pattern, not only to grow it once.
 *
 * The pool holds `size` states `[height, width, channels]`, each in its own tensor (so
 * replacing a few entries never copies the whole pool), and optionally a payload entry per
 * state (any tensor `[size, ...]`, e.g. the target image of each state). Memory stays
 * flat: {@link SamplePool.replace} frees what it overwrites. The pool owns its tensors;
 * {@link SamplePool.dispose} frees them.
 *
 * @example
 * ```ts
 * const pool = SamplePool.fill(seedState, 1024, { seed: 0 });  // seedState: [1, h, w, c]
 * const { indices, states } = pool.sample(8);                  // states: [8, h, w, c]
 * const grown = runSteps(rule, states, { steps: 64 }).state;
 * pool.replace(indices, grown);
 * tf.dispose([states, grown]);
 * ```
 * @category Sample pool
 */
export class SamplePool {
  private states: tf.Tensor[];
  private payloads: tf.Tensor[] | null;
  private readonly rngSource: ResumableRng;
  private readonly rng: () => number;
  private readonly shape: [number, number, number];
  private readonly payloadShape: number[] | null;
  private readonly payloadDtype: tf.DataType | null;
  private disposed = false;

  /**
   * @param states - The initial states, float32 `[size, height, width, channels]`, size >= 1.
   *   The pool keeps copies; the caller still owns `states`.
   * @param options - `seed` of the draws and an optional `payload` `[size, ...]`.
   */
  constructor(states: tf.Tensor4D, options: SamplePoolOptions = {}) {
    const fn = 'SamplePool';
    assertState(states, fn, 'states');
    if (typeof options !== 'object' || options === null) {
      throw new VncaError(fn, 'options', `must be an object, but got ${describe(options)}.`);
    }
    if (options.seed !== undefined) assertNumber(options.seed, fn, 'options.seed');
    const n = states.shape[0];
    if (n < 1) throw new VncaError(fn, 'states', `must hold at least one state, but got shape [${states.shape.join(', ')}].`);
    if (options.payload !== undefined) {
      assertTensor(options.payload, fn, 'options.payload');
      if (options.payload.rank < 1 || options.payload.shape[0] !== n) {
        throw new VncaError(fn, 'options.payload', `must have shape [${n}, ...] (one entry per state), but got [${options.payload.shape.join(', ')}].`);
      }
    }
    const [, h, w, c] = states.shape;
    this.shape = [h, w, c];
    this.rngSource = resumableRng(options.seed ?? randomSeed());
    this.rng = this.rngSource.next;
    this.states = Array.from({ length: n }, (_, i) => entry(states, i));
    const p = options.payload;
    this.payloads = p ? Array.from({ length: n }, (_, i) => entry(p, i)) : null;
    this.payloadShape = p ? p.shape.slice(1) : null;
    this.payloadDtype = p ? p.dtype : null;
  }

  /**
   * A pool of `size` copies of one state, e.g. the single-cell seed of a Growing NCA.
   * The copies share one buffer until they are replaced, so a large pool costs one state.
   *
   * @param state - The state, float32 `[1, height, width, channels]`; the caller still owns it.
   * @param size - Number of entries, a positive integer.
   * @param options - `seed` of the draws; `payload` `[size, ...]` or `[1, ...]` (repeated).
   * @returns The pool; the caller disposes it.
   */
  static fill(state: tf.Tensor4D, size: number, options: SamplePoolOptions = {}): SamplePool {
    const fn = 'SamplePool.fill';
    assertState(state, fn, 'state');
    if (state.shape[0] !== 1) throw new VncaError(fn, 'state', `must have batch 1, but got shape [${state.shape.join(', ')}].`);
    assertInt(size, fn, 'size', 1);
    const payload = options?.payload;
    if (payload !== undefined) {
      assertTensor(payload, fn, 'options.payload');
      if (payload.rank < 1 || (payload.shape[0] !== 1 && payload.shape[0] !== size)) {
        throw new VncaError(fn, 'options.payload', `must have shape [${size}, ...] or [1, ...], but got [${payload.shape.join(', ')}].`);
      }
    }
    // Build from one state, then point every entry at a clone of it (clones share data).
    const first = payload !== undefined && payload.shape[0] !== 1 ? tf.slice(payload, 0, 1) : payload;
    const pool = new SamplePool(state, { seed: options?.seed, payload: first });
    if (first !== payload) first?.dispose();
    const s0 = pool.states[0]!;
    pool.states = Array.from({ length: size }, () => tf.clone(s0));
    s0.dispose();
    if (pool.payloads) {
      const p0 = pool.payloads[0]!;
      pool.payloads = payload!.shape[0] === 1
        ? Array.from({ length: size }, () => tf.clone(p0))
        : Array.from({ length: size }, (_, i) => entry(payload!, i));
      p0.dispose();
    }
    return pool;
  }

  /** Number of entries. */
  get size(): number {
    return this.states.length;
  }

  /** `[height, width, channels]` of every state. */
  get stateShape(): [number, number, number] {
    return [...this.shape];
  }

  /** Whether the pool holds a payload per entry. */
  get hasPayload(): boolean {
    return this.payloads !== null;
  }

  private check(fn: string): void {
    if (this.disposed) throw new VncaError(fn, 'this', 'is a disposed SamplePool.');
  }

  private checkIndices(indices: unknown, fn: string, arg = 'indices'): asserts indices is number[] {
    if (!Array.isArray(indices) || indices.length === 0) {
      throw new VncaError(fn, arg, `must be a non-empty array of integers in [0, ${this.size - 1}], but got ${describe(indices)}.`);
    }
    const seen = new Set<number>();
    indices.forEach((v: unknown, k: number) => {
      assertInt(v, fn, `${arg}[${k}]`, 0, this.size - 1);
      if (seen.has(v)) throw new VncaError(fn, arg, `must be distinct, but ${v} appears twice.`);
      seen.add(v);
    });
  }

  /**
   * Draws `batchSize` distinct entries at random (seeded, see {@link SamplePoolOptions.seed}).
   *
   * @param batchSize - An integer in [1, size].
   * @returns The indices and copies of their states `[batchSize, height, width, channels]`
   *   (and payload `[batchSize, ...]`); the caller owns the tensors.
   */
  sample(batchSize: number): PoolSample {
    const fn = 'SamplePool.sample';
    this.check(fn);
    assertInt(batchSize, fn, 'batchSize', 1, this.size);
    return this.get(pickDistinct(this.size, batchSize, this.rng));
  }

  /**
   * Reads entries by index, without drawing.
   *
   * @param indices - Distinct integers in [0, size).
   * @returns The indices and copies of their states `[indices.length, height, width,
   *   channels]` (and payload); the caller owns the tensors.
   */
  get(indices: number[]): PoolSample {
    const fn = 'SamplePool.get';
    this.check(fn);
    this.checkIndices(indices, fn);
    const gather = (list: tf.Tensor[]) => tf.concat(indices.map((i) => list[i]!), 0);
    const states = gather(this.states) as tf.Tensor4D;
    const out: PoolSample = { indices: [...indices], states };
    if (this.payloads) out.payload = gather(this.payloads);
    return out;
  }

  /**
   * Overwrites entries: entry `indices[k]` becomes `states[k]` (and `payload[k]`). The pool
   * copies what it keeps and frees what it overwrites; the caller still owns the arguments.
   *
   * @param indices - Distinct integers in [0, size).
   * @param states - float32 `[indices.length, height, width, channels]`.
   * @param payload - `[indices.length, ...]` of the pool's payload shape and dtype; omitted:
   *   the entries keep their payload.
   */
  replace(indices: number[], states: tf.Tensor4D, payload?: tf.Tensor): void {
    const fn = 'SamplePool.replace';
    this.check(fn);
    this.checkIndices(indices, fn);
    assertState(states, fn, 'states');
    const [h, w, c] = this.shape;
    const want = [indices.length, h, w, c];
    if (!tf.util.arraysEqual(states.shape, want)) {
      throw new VncaError(fn, 'states', `must have shape [${want.join(', ')}], but got [${states.shape.join(', ')}].`);
    }
    if (payload !== undefined) {
      assertTensor(payload, fn, 'payload');
      if (!this.payloads) throw new VncaError(fn, 'payload', 'must be omitted: the pool was made without a payload.');
      const pw = [indices.length, ...this.payloadShape!];
      if (!tf.util.arraysEqual(payload.shape, pw) || payload.dtype !== this.payloadDtype) {
        throw new VncaError(fn, 'payload', `must be ${this.payloadDtype} [${pw.join(', ')}], but got ${describe(payload)}.`);
      }
    }
    indices.forEach((i, k) => {
      this.states[i]!.dispose();
      this.states[i] = entry(states, k);
      if (payload !== undefined) {
        this.payloads![i]!.dispose();
        this.payloads![i] = entry(payload, k);
      }
    });
  }

  /**
   * What a training checkpoint saves of the pool: every state (and payload) stacked, and the
   * position of the generator of its draws. `new SamplePool(states, { seed: rngState, payload })`
   * continues the pool exactly: the same entries and the same future draws. The caller owns
   * the tensors. @internal
   */
  snapshot(): { states: tf.Tensor4D; payload?: tf.Tensor; rngState: number } {
    this.check('SamplePool.snapshot');
    const out: { states: tf.Tensor4D; payload?: tf.Tensor; rngState: number } = {
      states: tf.concat(this.states, 0) as tf.Tensor4D, rngState: this.rngSource.state(),
    };
    if (this.payloads) out.payload = tf.concat(this.payloads, 0);
    return out;
  }

  /** Frees every tensor of the pool. The pool cannot be used afterwards; a second call does nothing. */
  dispose(): void {
    if (this.disposed) return;
    tf.dispose(this.states);
    if (this.payloads) tf.dispose(this.payloads);
    this.states = [];
    this.payloads = null;
    this.disposed = true;
  }
}

/**
 * Options of {@link damageSubset}.
 *
 * @category Sample pool
 */
export interface DamageSubsetOptions {
  /** `'circle'` (the Growing NCA's regeneration training, default) or `'square'` (the non-doubling VNCA's). */
  shape?: 'circle' | 'square';
  /**
   * Circle radius in cells: a number, or `[min, max]` to draw it uniformly per entry.
   * Default `[0.05, 0.2] * width` (the Growing NCA's 0.1 to 0.4 of the half-width). The
   * centre is drawn uniformly in the middle half of the grid.
   */
  radius?: number | [number, number];
  /**
   * Square side in cells (an integer, or `[min, max]` integers drawn uniformly per entry).
   * Default `floor(min(height, width) / 2)` (the non-doubling VNCA's 14 on 28x28). The square
   * is placed uniformly at random inside the grid.
   */
  size?: number | [number, number];
  /** Source of uniform floats in [0, 1) for the choices. Default `Math.random`. */
  rng?: () => number;
}

function checkRange(v: unknown, fn: string, arg: string, integer: boolean, max: number): [number, number] {
  const check = integer
    ? (x: unknown, a: string) => assertInt(x, fn, a, 0, max)
    : (x: unknown, a: string) => assertNumber(x, fn, a, 0);
  if (Array.isArray(v)) {
    if (v.length !== 2) throw new VncaError(fn, arg, `must be a number or [min, max], but got ${describe(v)}.`);
    check(v[0], `${arg}[0]`);
    check(v[1], `${arg}[1]`);
    if (v[0] > v[1]) throw new VncaError(fn, arg, `must have min <= max, but got ${describe(v)}.`);
    return [v[0], v[1]];
  }
  check(v, arg);
  return [v as number, v as number];
}

/**
 * Damages some entries of a batch: zeroes every channel of a random circle (or square) of
 * cells in each chosen entry, with {@link damage}; the other entries are unchanged. The
 * Growing NCA damages the 3 best states of each batch this way so it learns to regenerate;
 * the non-doubling VNCA zeroes a square in a quarter of each batch.
 *
 * @category Sample pool
 * @param states - Cell states, float32 `[batch, height, width, channels]`.
 * @param which - A number `count` (damage `count` distinct random entries, 0 to batch) or
 *   a list of distinct batch indices to damage.
 * @param options - Shape, radius or size, random source.
 * @returns The damaged batch, float32 `[batch, height, width, channels]`; the caller owns it.
 * @example
 * ```ts
 * const hurt = damageSubset(states, [5, 6, 7], { rng: Math.random });  // circles in the last 3 of 8
 * ```
 */
export function damageSubset(states: tf.Tensor4D, which: number | number[], options: DamageSubsetOptions = {}): tf.Tensor4D {
  const fn = 'damageSubset';
  assertState(states, fn, 'states');
  if (typeof options !== 'object' || options === null) {
    throw new VncaError(fn, 'options', `must be an object, but got ${describe(options)}.`);
  }
  const [b, h, w] = states.shape;
  const shape = options.shape ?? 'circle';
  assertOneOf(shape, ['circle', 'square'] as const, fn, 'options.shape');
  if (options.rng !== undefined && typeof options.rng !== 'function') {
    throw new VncaError(fn, 'options.rng', `must be a function returning numbers in [0, 1), but got ${describe(options.rng)}.`);
  }
  const rng = options.rng ?? Math.random;
  const radius = shape === 'circle' ? checkRange(options.radius ?? [0.05 * w, 0.2 * w], fn, 'options.radius', false, Infinity) : null;
  const side = shape === 'square' ? checkRange(options.size ?? Math.floor(Math.min(h, w) / 2), fn, 'options.size', true, Math.min(h, w)) : null;
  let chosen: number[];
  if (typeof which === 'number') {
    assertInt(which, fn, 'which', 0, b);
    chosen = pickDistinct(b, which, rng);
  } else if (Array.isArray(which)) {
    const seen = new Set<number>();
    which.forEach((v: unknown, k: number) => {
      assertInt(v, fn, `which[${k}]`, 0, b - 1);
      if (seen.has(v)) throw new VncaError(fn, 'which', `must hold distinct indices, but ${v} appears twice.`);
      seen.add(v);
    });
    chosen = which;
  } else {
    throw new VncaError(fn, 'which', `must be a count or an array of batch indices, but got ${describe(which)}.`);
  }
  if (chosen.length === 0) return tf.clone(states);
  const hit = new Set(chosen);
  return tf.tidy(() => {
    const between = (r: [number, number]) => r[0] + rng() * (r[1] - r[0]);
    const planes: tf.Tensor2D[] = [];
    for (let i = 0; i < b; i++) {
      if (!hit.has(i)) {
        planes.push(tf.zeros([h, w]));
      } else if (radius) {
        const centerY = (0.25 + 0.5 * rng()) * (h - 1);
        const centerX = (0.25 + 0.5 * rng()) * (w - 1);
        planes.push(damageMask(h, w, { shape: 'circle', centerY, centerX, radius: between(radius) }));
      } else {
        const size = Math.min(side![1], Math.floor(between([side![0], side![1] + 1])));
        const top = Math.floor(rng() * (h - size + 1));
        const left = Math.floor(rng() * (w - size + 1));
        planes.push(damageMask(h, w, { shape: 'square', top, left, size }));
      }
    }
    const mask = tf.reshape(tf.stack(planes), [b, h, w, 1]);
    return damage(states, { shape: 'mask', mask });
  });
}
