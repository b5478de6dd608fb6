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
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
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
