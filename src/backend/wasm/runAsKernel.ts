/**
 * Running a kernel written with ordinary tfjs ops: the wasm backend's training kernels use it.
 * @module
 */
import * as tf from '@tensorflow/tfjs-core';
import { pair, type Shape4 } from '../../ops/layout.js';

export type Backend = tf.KernelBackend;

/** The backend these kernels are registered for. */
export const WASM = 'wasm';

/**
 * Runs `compute` on the inputs of a kernel call and hands its result back in the form
 * a kernelFunc must return: a TensorInfo whose data the engine adopts. The result
 * tensor's data gets one extra reference before the tensor itself is disposed, so the
 * buffer outlives this function and is freed when the caller disposes the output.
 */
export function runAsKernel(
  backend: Backend,
  inputs: tf.TensorInfo[],
  compute: (...tensors: tf.Tensor[]) => tf.Tensor,
): tf.TensorInfo {
  const result = tf.tidy(() => {
    const tensors = inputs.map((info) => asTensor(info, backend));
    const r = compute(...tensors);
    return tensors.includes(r) ? tf.clone(r) : r; // never hand out (and dispose) an input
  });
  backend.incRef(result.dataId);
  const out: tf.TensorInfo = { dataId: result.dataId, shape: result.shape, dtype: result.dtype };
  result.dispose();
  return out;
}

/**
 * Gives a kernel input as a tf.Tensor. Ops pass tensors already; a bare TensorInfo
 * (a kernel called from another kernel) is wrapped in a tensor that holds its own
 * reference, so the enclosing tidy can dispose the wrapper without freeing the data.
 */
export function asTensor(info: tf.TensorInfo, backend: Backend): tf.Tensor {
  if (info instanceof tf.Tensor) return info;
  backend.incRef(info.dataId);
  return tf.engine().makeTensorFromTensorInfo(info, backend);
}

/** The geometry of a depthwise kernel call: `x` `[b, h, w, c]`, `filter` `[fh, fw, c, m]`, and the call's attrs. */
export function depthwiseConvInfo(
  xShape: number[], filterShape: number[],
  attrs: Pick<tf.DepthwiseConv2dNativeBackpropInputAttrs, 'strides' | 'dilations' | 'pad' | 'dimRoundingMode'>,
): tf.backend_util.Conv2DInfo {
  return tf.backend_util.computeConv2DInfo(
    xShape as Shape4, filterShape as Shape4, attrs.strides, pair(attrs.dilations, 1), attrs.pad, attrs.dimRoundingMode, true, 'channelsLast');
}
