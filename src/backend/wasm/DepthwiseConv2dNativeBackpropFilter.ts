/** The wasm `DepthwiseConv2dNativeBackpropFilter` kernel (tfjs-backend-wasm 4.22 lacks it). @module */
import * as tf from '@tensorflow/tfjs-core';
import { padInput, tapPatch, type Shape4 } from '../../ops/layout.js';
import { depthwiseConvInfo, runAsKernel, type Backend } from './runAsKernel.js';

/**
 * `DepthwiseConv2dNativeBackpropFilter`: the gradient of `depthwiseConv2d(x, filter)`
 * with respect to `filter`. `x` `[b, h, w, c]`, `dy` `[b, outHeight, outWidth, c * m]`,
 * result `filterShape` `[fh, fw, c, m]`:
 * `dF[i, j, c, q] = sum over (b, oy, ox) of patch_ij[b, oy, ox, c] * dy[b, oy, ox, c*m + q]`.
 * Works for any stride, dilation and padding.
 */
export function depthwiseBackpropFilter(args: { inputs: tf.NamedTensorInfoMap; backend: {}; attrs?: tf.NamedAttrMap }): tf.TensorInfo {
  const { x, dy } = args.inputs as { x: tf.TensorInfo; dy: tf.TensorInfo };
  const attrs = args.attrs as unknown as tf.DepthwiseConv2dNativeBackpropFilterAttrs;
  const backend = args.backend as Backend;
  return runAsKernel(backend, [x, dy], (xt, dyt) => {
    const x4 = xt as tf.Tensor4D;
    const filterShape = attrs.filterShape as Shape4;
    const info = depthwiseConvInfo(x4.shape, filterShape, attrs);
    const { filterHeight: fh, filterWidth: fw, inChannels: c, batchSize, outHeight, outWidth } = info;
    const m = filterShape[3];
    const n = batchSize * outHeight * outWidth;
    const xPadded = padInput(x4, info);
    const dy3 = tf.reshape(dyt, [n, c, m]);
    const taps: tf.Tensor[] = [];
    for (let i = 0; i < fh; i++) {
      for (let j = 0; j < fw; j++) {
        const patch = tf.reshape(tapPatch(xPadded, info, i, j), [n, c, 1]);
        taps.push(tf.sum(tf.mul(patch, dy3), 0)); // [c, m]
      }
    }
    return tf.reshape(tf.stack(taps), filterShape);
  });
}
