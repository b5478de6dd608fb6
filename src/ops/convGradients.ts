/**
 * Gradients of a (non-depthwise, dilation 1) conv2d written as forward convolutions, which are
 * the fast path of every backend. {@link convBackward} and the wasm `Conv2DBackpropFilter`
 * kernel use them.
 * @module
 */
import * as tf from '@tensorflow/tfjs-core';
import { channelsFirst, flipTaps, insertStrideZeros, padOrCrop } from './layout.js';

/**
 * The filter gradient of a (non-depthwise) conv2d as one forward conv2d, see
 * the wasm `Conv2DBackpropFilter` kernel. `x` `[b, h, w, ci]`, `dy` `[b, oh, ow, co]`, result
 * `[fh, fw, ci, co]`. Forward dilation must be 1 (tfjs refuses conv2d gradients otherwise).
 */
export function filterGradByConv(x: tf.Tensor4D, dy: tf.Tensor4D, info: tf.backend_util.Conv2DInfo): tf.Tensor4D {
  const { filterHeight: fh, filterWidth: fw, strideHeight: sh, strideWidth: sw, outHeight: oh, outWidth: ow } = info;
  // Exactly the rows and columns the filter taps read: fh + (oh - 1) * sh by fw + (ow - 1) * sw.
  const { top, left } = info.padInfo;
  const bottom = fh + (oh - 1) * sh - info.inHeight - top;
  const right = fw + (ow - 1) * sw - info.inWidth - left;
  const xPadded = padOrCrop(x, top, bottom, left, right);
  const xT = channelsFirst(xPadded); // [ci, hp, wp, b]
  const dyF = tf.transpose(dy, [1, 2, 0, 3]) as tf.Tensor4D; // [oh, ow, b, co]
  const out = tf.conv2d(xT, dyF, 1, 'valid', 'NHWC', [sh, sw]); // [ci, fh, fw, co]
  return tf.transpose(out, [1, 2, 0, 3]);
}

/**
 * The input gradient of a (non-depthwise, dilation 1) conv2d as one forward conv2d:
 * `dy` `[b, oh, ow, co]` with `stride - 1` zeros inserted between rows and columns,
 * padded so that a 'valid' correlation with the spatially flipped, in/out-swapped
 * filter `[fh, fw, co, ci]` gives `[b, h, w, ci]`. Avoids `Conv2DBackpropInput`, which
 * tfjs-backend-wasm 4.22 runs much slower than a forward convolution.
 */
export function inputGradByConv(dy: tf.Tensor4D, filter: tf.Tensor4D, info: tf.backend_util.Conv2DInfo): tf.Tensor4D {
  const { filterHeight: fh, filterWidth: fw, strideHeight: sh, strideWidth: sw, inHeight: h, inWidth: w } = info;
  const dyUp = insertStrideZeros(dy, sh, sw);
  const top = fh - 1 - info.padInfo.top;
  const left = fw - 1 - info.padInfo.left;
  const bottom = h + fh - 1 - top - dyUp.shape[1];
  const right = w + fw - 1 - left - dyUp.shape[2];
  const flipped = tf.transpose(flipTaps(filter), [0, 1, 3, 2]) as tf.Tensor4D;
  if (top >= 0 && bottom >= 0 && left >= 0 && right >= 0) {
    return tf.conv2d(dyUp, flipped, 1, [[0, 0], [top, bottom], [left, right], [0, 0]]);
  }
  return tf.conv2d(padOrCrop(dyUp, top, bottom, left, right), flipped, 1, 'valid');
}
