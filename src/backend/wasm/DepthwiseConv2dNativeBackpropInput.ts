/** The wasm `DepthwiseConv2dNativeBackpropInput` kernel (tfjs-backend-wasm 4.22 lacks it). @module */
import * as tf from '@tensorflow/tfjs-core';
import { flipTaps, insertStrideZeros, padOrCrop } from '../../ops/layout.js';
import { depthwiseConvInfo, runAsKernel, type Backend } from './runAsKernel.js';

/**
 * `DepthwiseConv2dNativeBackpropInput`: the gradient of `depthwiseConv2d(x, filter)`
 * with respect to `x`. `dy` `[b, outHeight, outWidth, c * m]`, `filter` `[fh, fw, c, m]`,
 * result `inputShape` `[b, h, w, c]`. It is a stride-1 depthwise correlation of `dy`
 * (with `stride - 1` zeros inserted between rows and columns, and padded) with the
 * spatially flipped filter, summed over the `m` multiplier channels. Works for any
 * stride, dilation and padding.
 */
export function depthwiseBackpropInput(args: { inputs: tf.NamedTensorInfoMap; backend: {}; attrs?: tf.NamedAttrMap }): tf.TensorInfo {
  const { dy, filter } = args.inputs as { dy: tf.TensorInfo; filter: tf.TensorInfo };
  const attrs = args.attrs as unknown as tf.DepthwiseConv2dNativeBackpropInputAttrs;
  const backend = args.backend as Backend;
  return runAsKernel(backend, [dy, filter], (dyt, ft) => {
    const filter4 = ft as tf.Tensor4D;
    const info = depthwiseConvInfo(attrs.inputShape, filter4.shape, attrs);
    const { batchSize: b, inHeight: h, inWidth: w, inChannels: c, filterHeight: fh, filterWidth: fw } = info;
    const { dilationHeight: dh, dilationWidth: dw, strideHeight: sh, strideWidth: sw } = info;
    const m = filter4.shape[3];
    const dyUp = insertStrideZeros(dyt as tf.Tensor4D, sh, sw);
    // Correlating with the flipped filter: dx[y] = sum_k dyUp[y + padTop - k*dh] f[k]
    // = sum_k' dyUpPadded[y + k'*dh] fFlipped[k'] with padTop' = (fh-1)*dh - padTop.
    const top = (fh - 1) * dh - info.padInfo.top;
    const left = (fw - 1) * dw - info.padInfo.left;
    const bottom = h + (fh - 1) * dh - top - dyUp.shape[1];
    const right = w + (fw - 1) * dw - left - dyUp.shape[2];
    const dyPadded = padOrCrop(dyUp, top, bottom, left, right);
    const flipped = tf.reshape(flipTaps(filter4), [fh, fw, c * m, 1]) as tf.Tensor4D;
    const perChannel = tf.depthwiseConv2d(dyPadded, flipped, 1, 'valid', 'NHWC', [dh, dw]); // [b, h, w, c*m]
    if (m === 1) return perChannel;
    return tf.reshape(tf.sum(tf.reshape(perChannel, [b * h * w * c, m]), 1), [b, h, w, c]);
  });
}
