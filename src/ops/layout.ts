/**
 * Layout helpers for convolution gradients: padding and cropping, the patch one filter tap
 * reads, zero-insertion for strided gradients, cache-friendly transposes, tap flipping and
 * bias sums. Plain tfjs ops that every backend runs; no kernel registration here.
 * @module
 */
import * as tf from '@tensorflow/tfjs-core';

export type Shape4 = [number, number, number, number];

/** `v` as `[height, width]`: a number stands for both, `undefined` for `fallback`. */
export function pair(v: number | [number, number] | undefined, fallback: number): [number, number] {
  if (v == null) return [fallback, fallback];
  return typeof v === 'number' ? [v, v] : v;
}

/**
 * Pads (positive amounts) or crops (negative amounts) the two spatial axes of an
 * NHWC tensor `[b, h, w, c]`.
 */
export function padOrCrop(x: tf.Tensor4D, top: number, bottom: number, left: number, right: number): tf.Tensor4D {
  let y = x;
  if (top > 0 || bottom > 0 || left > 0 || right > 0) {
    y = tf.pad(y, [[0, 0], [Math.max(top, 0), Math.max(bottom, 0)], [Math.max(left, 0), Math.max(right, 0)], [0, 0]]);
  }
  if (top < 0 || bottom < 0 || left < 0 || right < 0) {
    const [b, h, w, c] = y.shape;
    const t = Math.max(-top, 0), l = Math.max(-left, 0);
    y = tf.slice(y, [0, t, l, 0], [b, h - t - Math.max(-bottom, 0), w - l - Math.max(-right, 0), c]);
  }
  return y;
}

/**
 * The input patch that filter tap `(i, j)` sees at every output position:
 * `patch[b, oy, ox, c] = xPadded[b, i * dilationHeight + oy * strideHeight, j * dilationWidth + ox * strideWidth, c]`,
 * shape `[b, outHeight, outWidth, c]`.
 */
export function tapPatch(xPadded: tf.Tensor4D, info: tf.backend_util.Conv2DInfo, i: number, j: number): tf.Tensor4D {
  const { batchSize, outHeight, outWidth, strideHeight, strideWidth, dilationHeight, dilationWidth } = info;
  const c = xPadded.shape[3];
  const top = i * dilationHeight, left = j * dilationWidth;
  if (strideHeight === 1 && strideWidth === 1) {
    return tf.slice(xPadded, [0, top, left, 0], [batchSize, outHeight, outWidth, c]);
  }
  return tf.stridedSlice(
    xPadded,
    [0, top, left, 0],
    [batchSize, top + (outHeight - 1) * strideHeight + 1, left + (outWidth - 1) * strideWidth + 1, c],
    [1, strideHeight, strideWidth, 1],
  ) as tf.Tensor4D;
}

/** `x` `[b, h, w, c]` padded by the amounts `info.padInfo` gives (no padding is a no-op). */
export function padInput(x: tf.Tensor4D, info: tf.backend_util.Conv2DInfo): tf.Tensor4D {
  const { top, bottom, left, right } = info.padInfo;
  return padOrCrop(x, top, bottom, left, right);
}

/**
 * Inserts `stride - 1` zeros between neighbouring rows and columns of `dy`
 * `[b, oh, ow, c]`, giving `[b, (oh - 1) * sh + 1, (ow - 1) * sw + 1, c]`. Uses rank-4
 * reshapes and pads only (rank-6 ops are slow on wasm).
 */
export function insertStrideZeros(dy: tf.Tensor4D, sh: number, sw: number): tf.Tensor4D {
  const [b, oh, ow, c] = dy.shape;
  let y = dy;
  if (sh > 1) {
    y = tf.pad(tf.reshape(y, [b, oh, 1, ow * c]), [[0, 0], [0, 0], [0, sh - 1], [0, 0]]);
    y = tf.slice(tf.reshape(y, [b, oh * sh, ow, c]) as tf.Tensor4D, [0, 0, 0, 0], [b, (oh - 1) * sh + 1, ow, c]);
  }
  const h = y.shape[1];
  if (sw > 1) {
    y = tf.pad(tf.reshape(y, [b * h, ow, 1, c]), [[0, 0], [0, 0], [0, sw - 1], [0, 0]]);
    y = tf.slice(tf.reshape(y, [b, h, ow * sw, c]) as tf.Tensor4D, [0, 0, 0, 0], [b, h, (ow - 1) * sw + 1, c]);
  }
  return y;
}

/**
 * `tf.transpose` of a matrix `[r, c]`, in two cache-friendly passes when `r` is a multiple of
 * 16: `[r / 16, 16, c]` → `[r / 16, c, 16]` (small transposes) → `[c, r / 16, 16]` (moves of 16
 * contiguous floats). The backends' transpose reads the input with a stride of `c` floats
 * throughout, which is much slower on wasm (docs/performance.md). Exact: it only moves values. @internal
 */
export function transpose2d(x: tf.Tensor2D): tf.Tensor2D {
  const [r, c] = x.shape;
  const block = 16;
  if (r % block !== 0 || r < 4 * block || c < block) return tf.transpose(x);
  const a = tf.transpose(tf.reshape(x, [r / block, block, c]), [0, 2, 1]); // [r/16, c, 16]
  return tf.reshape(tf.transpose(a, [1, 0, 2]), [c, r]);
}

/**
 * `x` `[b, h, w, c]` as `[c, h, w, b]` (`tf.transpose(x, [3, 1, 2, 0])`), through
 * {@link transpose2d}: `[b * h * w, c]` → `[c, b, h * w]` → `[c, h * w, b]`.
 */
export function channelsFirst(x: tf.Tensor4D): tf.Tensor4D {
  const [b, h, w, c] = x.shape;
  const t = tf.reshape(transpose2d(tf.reshape(x, [b * h * w, c]) as tf.Tensor2D), [c, b, h * w]);
  return tf.reshape(b === 1 ? t : tf.transpose(t, [0, 2, 1]), [c, h, w, b]);
}

/**
 * `filter` `[fh, fw, ci, co]` with its taps reversed in both spatial axes, as
 * `tf.reverse(filter, [0, 1])`. Reversing both axes reverses the flat tap index
 * `i * fw + j`, so this is one matMul of the `[fh * fw, fh * fw]` anti-identity with the
 * filter as `[fh * fw, ci * co]`: exact (one 1 per row), and on wasm much faster than
 * `tf.reverse` for a large filter.
 */
export function flipTaps(filter: tf.Tensor4D): tf.Tensor4D {
  const [fh, fw, ci, co] = filter.shape;
  const taps = fh * fw;
  if (taps === 1) return filter;
  const anti = new Float32Array(taps * taps);
  for (let t = 0; t < taps; t++) anti[t * taps + (taps - 1 - t)] = 1;
  return tf.reshape(tf.matMul(tf.tensor2d(anti, [taps, taps]), tf.reshape(filter, [taps, ci * co])), [fh, fw, ci, co]);
}

/**
 * The sum of `dz` `[b, h, w, c]` over all but the last axis, `[c]`: a bias gradient. Written
 * as a matMul of a row of ones with `dz` as `[b * h * w, c]`; the wasm backend reduces
 * over leading axes by transposing first, which is much slower.
 */
export function sumToChannels(dz: tf.Tensor4D): tf.Tensor1D {
  const [b, h, w, c] = dz.shape;
  const rows = b * h * w;
  return tf.reshape(tf.matMul(tf.ones([1, rows]), tf.reshape(dz, [rows, c])), [c]);
}
