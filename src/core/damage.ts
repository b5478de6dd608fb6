import * as tf from '@tensorflow/tfjs-core';
import { VncaError, assertInt, assertNumber, assertOneOf, assertState, assertTensor, describe } from './errors.js';

/**
 * A region of the grid to damage (all channels of its cells are zeroed).
 *
 * - `square`: the cells with `top <= y < top + size` and `left <= x < left + size`
 *   (integers; the square may lie partly or wholly outside the grid, it is clipped).
 * - `circle`: the cells whose centre lies within `radius` of (`centerY`, `centerX`),
 *   i.e. `(y - centerY)^2 + (x - centerX)^2 <= radius^2`, in cell-index units
 *   (cell (y, x) has its centre at (y, x); fractional centres are allowed).
 * - `mask`: an explicit mask, 1 (any value > 0.5, or `true`) = damage, of shape
 *   `[height, width]`, `[height, width, 1]`, `[batch, height, width]` or
 *   `[batch, height, width, 1]` (batch equal to the state's or 1), dtype float32,
 *   int32 or bool.
 *
 * @category Damage
 */
export type DamageRegion =
  | {
    /** An axis-aligned square of cells. */
    shape: 'square';
    /** Row of its top-left cell. */
    top: number;
    /** Column of its top-left cell. */
    left: number;
    /** Side, in cells. */
    size: number;
  }
  | {
    /** A disc of cells. */
    shape: 'circle';
    /** Row of its centre (may be fractional: `size / 2 - 0.5` is the middle of an even grid). */
    centerY: number;
    /** Column of its centre. */
    centerX: number;
    /** Radius, in cells: the cells whose centres lie within it are damaged. */
    radius: number;
  }
  | {
    /** Any region, given cell by cell. */
    shape: 'mask';
    /** `[height, width]` or `[batch, height, width]`, 1 = damage the cell, 0 = keep it. */
    mask: tf.Tensor;
  };

const SHAPES = ['square', 'circle', 'mask'] as const;

/** Checks a region's fields (shape-independent ones only for `mask`). @internal */
function checkRegion(region: unknown, fn: string): asserts region is DamageRegion {
  if (typeof region !== 'object' || region === null) {
    throw new VncaError(fn, 'region', `must be an object with shape 'square', 'circle' or 'mask', but got ${describe(region)}.`);
  }
  const r = region as Record<string, unknown>;
  assertOneOf(r.shape, SHAPES, fn, 'region.shape');
  if (r.shape === 'square') {
    for (const key of ['top', 'left'] as const) {
      const v = r[key];
      // Any integer: the square may start outside the grid.
      if (typeof v !== 'number' || !Number.isInteger(v)) {
        throw new VncaError(fn, `region.${key}`, `must be an integer, but got ${describe(v)}.`);
      }
    }
    assertInt(r.size, fn, 'region.size', 0);
  } else if (r.shape === 'circle') {
    assertNumber(r.centerY, fn, 'region.centerY');
    assertNumber(r.centerX, fn, 'region.centerX');
    assertNumber(r.radius, fn, 'region.radius', 0);
  } else {
    assertTensor(r.mask, fn, 'region.mask');
    const dtype = r.mask.dtype;
    if (dtype !== 'float32' && dtype !== 'int32' && dtype !== 'bool') {
      throw new VncaError(fn, 'region.mask', `must be float32, int32 or bool, but got ${dtype}.`);
    }
  }
}

/** The 0/1 values of a square or circle region on an `height x width` grid, row-major. @internal */
function geometricMask(height: number, width: number, region: Exclude<DamageRegion, { shape: 'mask' }>): Float32Array {
  const out = new Float32Array(height * width);
  if (region.shape === 'square') {
    const y0 = Math.max(0, region.top), y1 = Math.min(height, region.top + region.size);
    const x0 = Math.max(0, region.left), x1 = Math.min(width, region.left + region.size);
    for (let y = y0; y < y1; y++) for (let x = x0; x < x1; x++) out[y * width + x] = 1;
  } else {
    const r2 = region.radius * region.radius;
    for (let y = 0; y < height; y++) {
      const dy = y - region.centerY;
      for (let x = 0; x < width; x++) {
        const dx = x - region.centerX;
        if (dy * dy + dx * dx <= r2) out[y * width + x] = 1;
      }
    }
  }
  return out;
}

/**
 * Brings a `mask` region to float32 0/1 `[B, height, width, 1]` with B = 1 or `batch`.
 * Call inside `tf.tidy`. @internal
 */
function explicitMask(mask: tf.Tensor, batch: number, height: number, width: number, fn: string): tf.Tensor4D {
  const s = mask.shape;
  let b = -1;
  if (s.length === 2 && s[0] === height && s[1] === width) b = 1;
  else if (s.length === 3 && s[0] === height && s[1] === width && s[2] === 1) b = 1;
  else if (s.length === 3 && s[1] === height && s[2] === width && (s[0] === batch || s[0] === 1)) b = s[0]!;
  else if (s.length === 4 && s[1] === height && s[2] === width && s[3] === 1 && (s[0] === batch || s[0] === 1)) b = s[0]!;
  if (b === -1) {
    const batches = batch === 1 ? '1' : `${batch} or 1`;
    throw new VncaError(fn, 'region.mask', `must have shape [${height}, ${width}], [${height}, ${width}, 1], `
      + `[b, ${height}, ${width}] or [b, ${height}, ${width}, 1] with b = ${batches}, but got [${s.join(', ')}].`);
  }
  return tf.cast(tf.greater(tf.reshape(tf.cast(mask, 'float32'), [b, height, width, 1]), 0.5), 'float32') as tf.Tensor4D;
}

/**
 * The 0/1 mask of a damage region on a `height x width` grid (1 = damaged cell), e.g.
 * to mark the region an inpainting should fill. Regions partly outside the grid are
 * clipped.
 *
 * @category Damage
 * @param height - Grid height, a positive integer.
 * @param width - Grid width, a positive integer.
 * @param region - The region (see {@link DamageRegion}); a `mask` region must have
 *   shape `[height, width]`, `[height, width, 1]`, `[1, height, width]` or
 *   `[1, height, width, 1]`.
 * @returns float32 `[height, width]` of 0 and 1.
 */
export function damageMask(height: number, width: number, region: DamageRegion): tf.Tensor2D {
  const fn = 'damageMask';
  assertInt(height, fn, 'height', 1);
  assertInt(width, fn, 'width', 1);
  checkRegion(region, fn);
  if (region.shape === 'mask') {
    return tf.tidy(() => tf.reshape(explicitMask(region.mask, 1, height, width, fn), [height, width]) as tf.Tensor2D);
  }
  return tf.tensor2d(geometricMask(height, width, region), [height, width], 'float32');
}

/**
 * Damages cell states: zeroes all channels of the cells inside `region` (the
 * regeneration experiments of the Growing NCA and VNCA papers). Regions partly outside
 * the grid are clipped. Differentiable with respect to `state` (the gradient is 0 in
 * the damaged cells, 1 elsewhere).
 *
 * @category Damage
 * @param state - Cell states, float32 `[batch, height, width, channels]`.
 * @param region - The region to damage (see {@link DamageRegion}); the same region
 *   for every batch element unless a `mask` region has a batch dimension.
 * @returns The damaged states, float32 `[batch, height, width, channels]`.
 * @example
 * ```ts
 * const hurt = damage(state, { shape: 'circle', centerY: 16, centerX: 16, radius: 6 });
 * ```
 */
export function damage(state: tf.Tensor4D, region: DamageRegion): tf.Tensor4D {
  const fn = 'damage';
  assertState(state, fn);
  checkRegion(region, fn);
  const [b, h, w] = state.shape;
  return tf.tidy(() => {
    const hit = region.shape === 'mask'
      ? explicitMask(region.mask, b, h, w, fn)
      : tf.tensor4d(geometricMask(h, w, region), [1, h, w, 1], 'float32');
    return tf.mul(state, tf.sub(1, hit)) as tf.Tensor4D;
  });
}

/**
 * Options of {@link aliveMask}.
 *
 * @category Damage
 */
export interface AliveMaskOptions {
  /** The channel read as "alpha" (default 3: RGBA + hidden channels). */
  channel?: number;
  /** A cell is alive when some cell of its 3x3 neighbourhood has alpha above this (default 0.1). */
  threshold?: number;
}

/**
 * The alive mask of the Growing NCA (Mordvintsev et al., 2020): a cell is alive when
 * the largest alpha in its 3x3 neighbourhood (itself included; cells outside the grid
 * are ignored) exceeds `threshold`. Not differentiable (a 0/1 step).
 *
 * @category Damage
 * @param state - Cell states, float32 `[batch, height, width, channels]`.
 * @param options - `channel` (integer in [0, channels), default 3) and `threshold`
 *   (finite number, default 0.1).
 * @returns float32 `[batch, height, width, 1]` of 0 and 1 (1 = alive).
 */
export function aliveMask(state: tf.Tensor4D, options: AliveMaskOptions = {}): tf.Tensor4D {
  const fn = 'aliveMask';
  assertState(state, fn);
  if (typeof options !== 'object' || options === null) {
    throw new VncaError(fn, 'options', `must be an object, but got ${describe(options)}.`);
  }
  const channels = state.shape[3];
  const channel = options.channel ?? 3;
  const threshold = options.threshold ?? 0.1;
  assertInt(channel, fn, 'options.channel', 0, channels - 1);
  assertNumber(threshold, fn, 'options.threshold');
  // The mask is piecewise constant in the state: its gradient is zero (tfjs registers no
  // gradient for `greater`, so say so explicitly and the mask can sit on a training path).
  const masked = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const x = args[0] as tf.Tensor;
    return {
      value: tf.tidy(() => {
        const [b, h, w] = state.shape;
        const alpha = tf.slice(x, [0, 0, 0, channel], [b, h, w, 1]);
        const neighbourhoodMax = tf.maxPool(alpha as tf.Tensor4D, 3, 1, 'same');
        return tf.cast(tf.greater(neighbourhoodMax, threshold), 'float32');
      }),
      gradFunc: () => tf.zerosLike(x),
    };
  });
  return masked(state) as tf.Tensor4D;
}
