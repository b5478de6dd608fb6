/** The wasm `Conv2DBackpropFilter` kernel (tfjs-backend-wasm 4.22 lacks it). @module */
import * as tf from '@tensorflow/tfjs-core';
import { VncaError } from '../../core/errors.js';
import { filterGradByConv } from '../../ops/convGradients.js';
import { runAsKernel, type Backend } from './runAsKernel.js';

/**
 * `Conv2DBackpropFilter`: the gradient of `conv2d(x, filter)` with respect to `filter`.
 * `x` `[b, h, w, inChannels]`, `dy` `[b, outHeight, outWidth, outChannels]`, result
 * `filterShape` `[fh, fw, inChannels, outChannels]`:
 * `dW[i, j, ci, co] = sum over (b, oy, ox) of xPadded[b, i + oy * sh, j + ox * sw, ci] * dy[b, oy, ox, co]`.
 *
 * That sum is itself a forward convolution with batch and channels swapped: the
 * padded input as `ci` images of `b` channels `[ci, hp, wp, b]`, convolved ('valid',
 * dilation = the stride) with `dy` as an `oh x ow` filter `[oh, ow, b, co]`, gives
 * `[ci, fh, fw, co]`. Forward convolutions are the fast path of every backend
 * (XNNPACK on wasm), so this beats slicing patches (im2col) by a wide margin there.
 */
export function conv2DBackpropFilter(args: { inputs: tf.NamedTensorInfoMap; backend: {}; attrs?: tf.NamedAttrMap }): tf.TensorInfo {
  const { x, dy } = args.inputs as { x: tf.TensorInfo; dy: tf.TensorInfo };
  const attrs = args.attrs as unknown as tf.Conv2DBackpropFilterAttrs;
  const backend = args.backend as Backend;
  if (attrs.dataFormat === 'NCHW') {
    throw new VncaError('Conv2DBackpropFilter (wasm)', 'dataFormat', `must be 'NHWC', but got 'NCHW'.`);
  }
  return runAsKernel(backend, [x, dy], (xt, dyt) => {
    const x4 = xt as tf.Tensor4D;
    const info = tf.backend_util.computeConv2DInfo(
      x4.shape, attrs.filterShape, attrs.strides, 1, attrs.pad, attrs.dimRoundingMode, false, 'channelsLast');
    return filterGradByConv(x4, dyt as tf.Tensor4D, info);
  });
}
