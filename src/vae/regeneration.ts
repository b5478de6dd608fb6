/**
 * Measures of self-repair: how much of a damaged image a VNCA regrows (regeneration), and
 * how well it fills a hole (inpainting), in nats. The paper shows both only as pictures;
 * these put numbers on them.
 */
import * as tf from '@tensorflow/tfjs-core';
import { VncaError, assertInt, describe } from '../core/errors.js';
import { mulberry32 } from '../core/random.js';
import type { InpaintOptions } from './inpainting.js';
import type { VNCA } from './VNCA.js';

/** Options of {@link measureRegeneration} and {@link measureInpainting}. @category VAE */
export interface RegenerationOptions {
  /**
   * Regrowth step counts S to report, ascending. Default: the model's default regrowth
   * steps S0 (`stepsPerDoubling` for a doubling model, `stepsRange[0]` for a fixed one) and
   * 4 * S0, which shows whether a healed pattern stays stable when the automaton keeps running.
   */
  steps?: number[];
  /** Side of the damaged square of cells. Default: half the grid side, rounded down. */
  size?: number;
  /** Seed of the squares' positions (uniform inside the grid) and of the update masks. Default 0. */
  seed?: number;
  /** Images grown at once. Default 32. */
  batchSize?: number;
}

/** Regrowth after S steps, in {@link RegenerationResult}. @category VAE */
export interface RegrowthScore {
  /** Regrowth steps run after the damage. */
  steps: number;
  /** log p(x | regrown state) per image, nats. */
  perImage: Float32Array;
  /** Mean of `perImage` (Lr), nats. */
  logLikelihood: number;
  /** (Lr - Ld) / (L0 - Ld) on the means: 1 = fully regrown, 0 = nothing regrown, below 0 = worse than right after the damage. */
  recovery: number;
}

/** Result of {@link measureRegeneration}. @category VAE */
export interface RegenerationResult {
  /** log p(x | grown state) per image (undamaged), nats. */
  undamagedPerImage: Float32Array;
  /** log p(x | state right after the damage) per image, nats. */
  damagedPerImage: Float32Array;
  /** Mean undamaged log-likelihood L0, nats. */
  undamaged: number;
  /** Mean log-likelihood right after the damage Ld, nats. */
  damaged: number;
  /** One entry per requested step count, ascending. */
  regrown: RegrowthScore[];
  /** Side of the damaged square, cells. */
  size: number;
}

/** Result of {@link measureInpainting}. @category VAE */
export interface InpaintingResult {
  /** log-likelihood of the true pixels inside the hole under `model.inpaint`'s result, per image, nats. */
  inpaintedPerImage: Float32Array;
  /** The same under the decode of the masked image's posterior mean (the baseline), per image, nats. */
  posteriorMeanPerImage: Float32Array;
  /** Mean of `inpaintedPerImage`, nats. */
  inpainted: number;
  /** Mean of `posteriorMeanPerImage`, nats. */
  posteriorMean: number;
  /** Side of the hole (a square), pixels. */
  size: number;
}

const mean = (a: Float32Array): number => a.reduce((s, v) => s + v, 0) / Math.max(1, a.length);

/** Default regrowth steps of a model: what `VNCA.regenerate` runs without `steps`. */
function defaultSteps(model: VNCA): number {
  return model.growthPlan.regrowthSteps(model.config);
}

function checkArgs(model: VNCA, x: unknown, options: RegenerationOptions, fn: string) {
  const c = model.config;
  if (!(x instanceof tf.Tensor) || x.rank !== 4 || x.shape[1] !== c.imageSize || x.shape[2] !== c.imageSize
    || x.shape[3] !== c.imageChannels || x.shape[0] < 1) {
    const got = x instanceof tf.Tensor ? `shape [${x.shape.join(', ')}]` : describe(x);
    throw new VncaError(fn, 'x', `must be images [batch >= 1, ${c.imageSize}, ${c.imageSize}, ${c.imageChannels}], but got ${got}.`);
  }
  if (typeof options !== 'object' || options === null) throw new VncaError(fn, 'options', `must be an object, but got ${describe(options)}.`);
  const s0 = defaultSteps(model);
  const steps = options.steps ?? [s0, 4 * s0];
  if (!Array.isArray(steps) || steps.length === 0) throw new VncaError(fn, 'options.steps', `must be a non-empty array of step counts, but got ${describe(steps)}.`);
  steps.forEach((s, i) => {
    assertInt(s, fn, `options.steps[${i}]`, 0);
    if (i > 0 && s < steps[i - 1]!) throw new VncaError(fn, 'options.steps', `must be ascending, but got [${steps.join(', ')}].`);
  });
  const size = options.size ?? Math.floor(c.imageSize / 2);
  assertInt(size, fn, 'options.size', 1, c.imageSize);
  const seed = options.seed ?? 0;
  assertInt(seed, fn, 'options.seed', 0);
  const batchSize = options.batchSize ?? 32;
  assertInt(batchSize, fn, 'options.batchSize', 1);
  return { steps, size, seed, batchSize, n: (x as tf.Tensor).shape[0] };
}

/** Per-image squares `[n, side, side]` (1 = inside), at seeded uniform positions inside the grid. */
function squares(n: number, side: number, size: number, seed: number): tf.Tensor3D {
  const rng = mulberry32(seed);
  const data = new Float32Array(n * side * side);
  for (let i = 0; i < n; i++) {
    const top = Math.floor(rng() * (side - size + 1));
    const left = Math.floor(rng() * (side - size + 1));
    for (let y = top; y < top + size; y++) data.fill(1, (i * side + y) * side + left, (i * side + y) * side + left + size);
  }
  return tf.tensor3d(data, [n, side, side]);
}

/**
 * The regeneration measure: for each image, z = posterior mean, grow, zero a square of
 * cells (side `size`, default half the grid side, at a seeded random position inside the
 * grid), then run S more steps. Reports log p(x | state) per image for the undamaged (L0),
 * damaged (Ld) and regrown (Lr) states, and recovery = (Lr - Ld) / (L0 - Ld) on the means
 * (1: fully regrown; 0: nothing regrown). By default S is the model's regrowth default and 4x
 * that: a healed pattern must not drift or blow up when the automaton keeps running.
 *
 * @param model A trained VNCA with Bernoulli or discretised-logistic likelihood.
 * @param x Held-out images `[batch, imageSize, imageSize, imageChannels]` (not disposed).
 * @param options Step counts, square size, seed, batch size.
 * @returns Plain numbers; no tensor is left behind.
 * @example
 * ```ts
 * const r = measureRegeneration(model, testImages);
 * console.log(r.undamaged, r.damaged, r.regrown.map((g) => g.recovery));
 * ```
 * @category VAE
 */
export function measureRegeneration(model: VNCA, x: tf.Tensor4D, options: RegenerationOptions = {}): RegenerationResult {
  const fn = 'measureRegeneration';
  const { steps, size, seed, batchSize, n } = checkArgs(model, x, options, fn);
  const side = model.config.imageSize;
  const l0 = new Float32Array(n);
  const ld = new Float32Array(n);
  const lr = steps.map(() => new Float32Array(n));
  const holes = squares(n, side, size, seed);
  try {
    for (let start = 0; start < n; start += batchSize) {
      const count = Math.min(batchSize, n - start);
      const chunkSeed = seed + start;
      tf.tidy(() => {
        const xb = tf.slice(x, [start, 0, 0, 0], [count, -1, -1, -1]) as tf.Tensor4D;
        const hole = tf.slice(holes, [start, 0, 0], [count, -1, -1]);
        const q = model.encode(xb);
        const grown = model.decode(q.mean as tf.Tensor2D, { seed: chunkSeed });
        q.dispose();
        l0.set(model.logLikelihood(grown, xb).dataSync(), start);
        // Damage alone (0 steps), then regrowth in stages: S1 steps, then S2 - S1 more, ...
        let state = model.regenerate(grown, { shape: 'mask', mask: hole }, { steps: 0 }).state;
        ld.set(model.logLikelihood(state, xb).dataSync(), start);
        let done = 0;
        steps.forEach((s, i) => {
          const none = { shape: 'square' as const, top: 0, left: 0, size: 0 };
          state = model.regenerate(state, none, { steps: s - done, seed: chunkSeed * 7919 + i }).state;
          done = s;
          lr[i]!.set(model.logLikelihood(state, xb).dataSync(), start);
        });
      });
    }
  } finally {
    holes.dispose();
  }
  const undamaged = mean(l0);
  const damaged = mean(ld);
  return {
    undamagedPerImage: l0,
    damagedPerImage: ld,
    undamaged,
    damaged,
    size,
    regrown: steps.map((s, i) => {
      const m = mean(lr[i]!);
      return { steps: s, perImage: lr[i]!, logLikelihood: m, recovery: (m - damaged) / (undamaged - damaged) };
    }),
  };
}

/**
 * The inpainting measure: cut a square hole (side `size`, default half the image side, at a
 * seeded random position) out of each image, fill it with `model.inpaint`, and score the true
 * pixels inside the hole by their Bernoulli log-likelihood under the result; the baseline is
 * the decode of the masked image's posterior mean. Binary (Bernoulli) models only.
 *
 * @param model A trained VNCA with a Bernoulli likelihood.
 * @param x Held-out binary images `[batch, imageSize, imageSize, 1]` (not disposed).
 * @param options `size`, `seed`, `batchSize`; `steps[0]`, `iterations` and `damage` are passed
 *   to `inpaint` as its `steps`, `iterations` and `damage` (default: inpaint's own).
 * @returns Plain numbers, nats per image (summed over the hole's pixels).
 * @category VAE
 */
export function measureInpainting(
  model: VNCA, x: tf.Tensor4D, options: RegenerationOptions & Pick<InpaintOptions, 'iterations' | 'damage'> = {},
): InpaintingResult {
  const fn = 'measureInpainting';
  if (model.config.likelihood !== 'bernoulli') {
    throw new VncaError(fn, 'model', `must have a Bernoulli likelihood, but has '${model.config.likelihood}'.`);
  }
  const { size, seed, batchSize, n } = checkArgs(model, x, { ...options, steps: options.steps ?? [0] }, fn);
  const inpaintSteps = options.steps?.[0];
  const side = model.config.imageSize;
  const filled = new Float32Array(n);
  const baseline = new Float32Array(n);
  const holes = squares(n, side, size, seed);
  // Sum over the hole of x log p + (1 - x) log(1 - p), with p kept away from 0 and 1.
  const holeLogLik = (p: tf.Tensor4D, xb: tf.Tensor4D, hole: tf.Tensor4D) => {
    const pc = tf.clipByValue(p, 1e-6, 1 - 1e-6);
    const ll = tf.add(tf.mul(xb, tf.log(pc)), tf.mul(tf.sub(1, xb), tf.log(tf.sub(1, pc))));
    return tf.sum(tf.mul(ll, hole), [1, 2, 3]);
  };
  try {
    for (let start = 0; start < n; start += batchSize) {
      const count = Math.min(batchSize, n - start);
      tf.tidy(() => {
        const xb = tf.slice(x, [start, 0, 0, 0], [count, -1, -1, -1]) as tf.Tensor4D;
        const hole = tf.expandDims(tf.slice(holes, [start, 0, 0], [count, -1, -1]), 3) as tf.Tensor4D;
        const out = model.inpaint(xb, hole, { seed: seed + start, steps: inpaintSteps, iterations: options.iterations, damage: options.damage });
        filled.set(holeLogLik(out, xb, hole).dataSync(), start);
        const q = model.encode(tf.mul(xb, tf.sub(1, hole)) as tf.Tensor4D);
        const decoded = model.render(model.decode(q.mean as tf.Tensor2D, { seed: seed + start }));
        q.dispose();
        baseline.set(holeLogLik(decoded, xb, hole).dataSync(), start);
      });
    }
  } finally {
    holes.dispose();
  }
  return {
    inpaintedPerImage: filled,
    posteriorMeanPerImage: baseline,
    inpainted: mean(filled),
    posteriorMean: mean(baseline),
    size,
  };
}
