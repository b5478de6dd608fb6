/**
 * A tiny seeded pseudo-random number generator for reproducible data handling
 * (binarisation, shuffles, batch sampling). Not for cryptography.
 */

/**
 * A function that returns a new uniform float in [0, 1) on every call.
 *
 * @category Random
 */
export type Rng = () => number;

/**
 * The mulberry32 generator: 32 bits of state, period 2^32, fast and good enough for
 * shuffling and Bernoulli draws. The same seed always gives the same sequence.
 *
 * @example
 * ```ts
 * const rng = mulberry32(42);
 * const u = rng(); // in [0, 1)
 * ```
 * @param seed - Any number; it is truncated to an unsigned 32-bit integer.
 * @returns A function that yields uniform floats in [0, 1).
 * @category Random
 */
export function mulberry32(seed: number): Rng {
  return resumableRng(seed).next;
}

/**
 * A {@link mulberry32} generator whose position can be read: `state()` is its 32-bit state,
 * and `mulberry32(state())` (or `resumableRng(state())`) continues the same sequence from
 * there. For checkpoints of training runs. @internal
 */
export interface ResumableRng {
  /** The next uniform float in [0, 1). */
  next: Rng;
  /** The generator's state now, an unsigned 32-bit integer. */
  state(): number;
}

/** {@link mulberry32} with a readable state (see {@link ResumableRng}). @internal */
export function resumableRng(seed: number): ResumableRng {
  let state = seed >>> 0;
  return {
    next: () => {
      state = (state + 0x6d2b79f5) >>> 0;
      let t = state;
      t = Math.imul(t ^ (t >>> 15), t | 1);
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    },
    state: () => state,
  };
}

/**
 * Shuffles `values` in place (Fisher–Yates) with the given generator.
 *
 * @param values - The array to permute; it is modified.
 * @param rng - The source of randomness, e.g. `mulberry32(0)`.
 * @returns The same array, permuted.
 * @category Random
 */
export function shuffleInPlace<T extends {
  /** Number of elements. */
  length: number;
  [i: number]: unknown;
}>(values: T, rng: Rng): T {
  for (let i = values.length - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1));
    const tmp = values[i];
    values[i] = values[j];
    values[j] = tmp;
  }
  return values;
}

/** What seed 0 is handed to tfjs as (see {@link tfSeed}). */
const ZERO_SEED = '0';

/**
 * The seed to hand to a tfjs random op (`tf.randomNormal`, `tf.randomUniform`, ...) for a
 * user's integer seed. tfjs's normal draws test the seed for truthiness, so `0` means "no
 * seed" there and gives fresh randomness on every call, while `tf.randomUniform` seeds its
 * generator with `String(seed)`, `'0'` included. Every tfjs op seeds its generator (alea)
 * with the seed's string, so handing over the string `'0'` makes seed 0 reproducible in
 * every op and leaves every other seed as it was (and `tf.randomUniform`'s seed 0 as it was).
 * Every place in vnca that passes a seed to tfjs goes through here. @internal
 */
export function tfSeed(seed: number | undefined): number | undefined {
  // tfjs-core 4.22 rand_util.ts: MPRandGauss / RandGamma: `seed ? seed : Math.random()`, then
  // `alea(seedValue.toString())`; UniformRandom: `alea(typeof seed === 'number' ? seed.toString() : seed)`.
  // tests/seeds.test.ts checks this against the installed tfjs.
  return seed === 0 ? (ZERO_SEED as unknown as number) : seed;
}
