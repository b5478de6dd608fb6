/**
 * Fast convolution training on every backend, and the training kernels that
 * `@tensorflow/tfjs-backend-wasm` 4.22 lacks.
 *
 * The wasm backend runs convolutions forward and has `Conv2DBackpropInput` (slow: about
 * 15x a forward convolution), but it has no `Conv2DBackpropFilter`,
 * `DepthwiseConv2dNativeBackpropInput` or `DepthwiseConv2dNativeBackpropFilter`, so
 * `tf.grad` through `tf.conv2d` (with respect to the filter) or `tf.depthwiseConv2d`
 * fails there. {@link enableWasmTraining} registers those three kernels for the backend
 * named `'wasm'`. Each one is written with ordinary tfjs ops (transposes, pads, forward
 * `conv2d` / `depthwiseConv2d`, `matMul`), which the wasm backend runs natively; this
 * file never imports the backend itself. Ops run inside a kernel are not recorded on the
 * gradient tape (tfjs stops recording while a kernel runs), and every temporary they
 * make is freed before the kernel returns.
 *
 * {@link fastConv2d} goes further: a convolution with a custom gradient built from
 * forward convolutions and plain matMuls only, 2-3x faster to train than `tf.conv2d` on
 * wasm and much faster on cpu. The update rules use it.
 * @module
 */
import * as tf from '@tensorflow/tfjs-core';
import { VncaError, assertInt, assertOneOf, assertRank, assertState } from '../core/errors.js';

type Backend = tf.KernelBackend;
type Shape4 = [number, number, number, number];

/** The backend these kernels are registered for. */
const WASM = 'wasm';

/**
 * Runs `compute` on the inputs of a kernel call and hands its result back in the form
 * a kernelFunc must return: a TensorInfo whose data the engine adopts. The result
 * tensor's data gets one extra reference before the tensor itself is disposed, so the
 * buffer outlives this function and is freed when the caller disposes the output.
 */
function runAsKernel(
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
function asTensor(info: tf.TensorInfo, backend: Backend): tf.Tensor {
  if (info instanceof tf.Tensor) return info;
  backend.incRef(info.dataId);
  return tf.engine().makeTensorFromTensorInfo(info, backend);
}

function pair(v: number | [number, number] | undefined, fallback: number): [number, number] {
  if (v == null) return [fallback, fallback];
  return typeof v === 'number' ? [v, v] : v;
}

/**
 * Pads (positive amounts) or crops (negative amounts) the two spatial axes of an
 * NHWC tensor `[b, h, w, c]`.
 */
function padOrCrop(x: tf.Tensor4D, top: number, bottom: number, left: number, right: number): tf.Tensor4D {
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
function tapPatch(xPadded: tf.Tensor4D, info: tf.backend_util.Conv2DInfo, i: number, j: number): tf.Tensor4D {
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
function padInput(x: tf.Tensor4D, info: tf.backend_util.Conv2DInfo): tf.Tensor4D {
  const { top, bottom, left, right } = info.padInfo;
  return padOrCrop(x, top, bottom, left, right);
}

/**
 * Inserts `stride - 1` zeros between neighbouring rows and columns of `dy`
 * `[b, oh, ow, c]`, giving `[b, (oh - 1) * sh + 1, (ow - 1) * sw + 1, c]`. Uses rank-4
 * reshapes and pads only (rank-6 ops are slow on wasm).
 */
function dilateRows(dy: tf.Tensor4D, sh: number, sw: number): tf.Tensor4D {
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
 * throughout, which on wasm costs 9.5 ms for `[4096, 256]` against 1.0 ms this way (112 ms
 * against 12 ms for `[32768, 256]`). Exact: it only moves values. @internal
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
function channelsFirst(x: tf.Tensor4D): tf.Tensor4D {
  const [b, h, w, c] = x.shape;
  const t = tf.reshape(transpose2d(tf.reshape(x, [b * h * w, c]) as tf.Tensor2D), [c, b, h * w]);
  return tf.reshape(b === 1 ? t : tf.transpose(t, [0, 2, 1]), [c, h, w, b]);
}

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
function conv2DBackpropFilter(args: { inputs: tf.NamedTensorInfoMap; backend: {}; attrs?: tf.NamedAttrMap }): tf.TensorInfo {
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

/**
 * The filter gradient of a (non-depthwise) conv2d as one forward conv2d, see
 * {@link conv2DBackpropFilter}. `x` `[b, h, w, ci]`, `dy` `[b, oh, ow, co]`, result
 * `[fh, fw, ci, co]`. Forward dilation must be 1 (tfjs refuses conv2d gradients otherwise).
 */
function filterGradByConv(x: tf.Tensor4D, dy: tf.Tensor4D, info: tf.backend_util.Conv2DInfo): tf.Tensor4D {
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
 * `DepthwiseConv2dNativeBackpropInput`: the gradient of `depthwiseConv2d(x, filter)`
 * with respect to `x`. `dy` `[b, outHeight, outWidth, c * m]`, `filter` `[fh, fw, c, m]`,
 * result `inputShape` `[b, h, w, c]`. It is a stride-1 depthwise correlation of `dy`
 * (with `stride - 1` zeros inserted between rows and columns, and padded) with the
 * spatially flipped filter, summed over the `m` multiplier channels. Works for any
 * stride, dilation and padding.
 */
function depthwiseBackpropInput(args: { inputs: tf.NamedTensorInfoMap; backend: {}; attrs?: tf.NamedAttrMap }): tf.TensorInfo {
  const { dy, filter } = args.inputs as { dy: tf.TensorInfo; filter: tf.TensorInfo };
  const attrs = args.attrs as unknown as tf.DepthwiseConv2dNativeBackpropInputAttrs;
  const backend = args.backend as Backend;
  return runAsKernel(backend, [dy, filter], (dyt, ft) => {
    const filter4 = ft as tf.Tensor4D;
    const inputShape = attrs.inputShape as Shape4;
    const dilations = pair(attrs.dilations, 1);
    const info = tf.backend_util.computeConv2DInfo(
      inputShape, filter4.shape, attrs.strides, dilations, attrs.pad, attrs.dimRoundingMode, true, 'channelsLast');
    const { batchSize: b, inHeight: h, inWidth: w, inChannels: c, filterHeight: fh, filterWidth: fw } = info;
    const { dilationHeight: dh, dilationWidth: dw, strideHeight: sh, strideWidth: sw } = info;
    const m = filter4.shape[3];
    const dyUp = dilateRows(dyt as tf.Tensor4D, sh, sw);
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

/**
 * `DepthwiseConv2dNativeBackpropFilter`: the gradient of `depthwiseConv2d(x, filter)`
 * with respect to `filter`. `x` `[b, h, w, c]`, `dy` `[b, outHeight, outWidth, c * m]`,
 * result `filterShape` `[fh, fw, c, m]`:
 * `dF[i, j, c, q] = sum over (b, oy, ox) of patch_ij[b, oy, ox, c] * dy[b, oy, ox, c*m + q]`.
 * Works for any stride, dilation and padding.
 */
function depthwiseBackpropFilter(args: { inputs: tf.NamedTensorInfoMap; backend: {}; attrs?: tf.NamedAttrMap }): tf.TensorInfo {
  const { x, dy } = args.inputs as { x: tf.TensorInfo; dy: tf.TensorInfo };
  const attrs = args.attrs as unknown as tf.DepthwiseConv2dNativeBackpropFilterAttrs;
  const backend = args.backend as Backend;
  return runAsKernel(backend, [x, dy], (xt, dyt) => {
    const x4 = xt as tf.Tensor4D;
    const filterShape = attrs.filterShape as Shape4;
    const dilations = pair(attrs.dilations, 1);
    const info = tf.backend_util.computeConv2DInfo(
      x4.shape, filterShape, attrs.strides, dilations, attrs.pad, attrs.dimRoundingMode, true, 'channelsLast');
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

/**
 * `filter` `[fh, fw, ci, co]` with its taps reversed in both spatial axes, as
 * `tf.reverse(filter, [0, 1])`. Reversing both axes reverses the flat tap index
 * `i * fw + j`, so this is one matMul of the `[fh * fw, fh * fw]` anti-identity with the
 * filter as `[fh * fw, ci * co]`: exact (one 1 per row), and on wasm ~30x faster than
 * `tf.reverse` for a `[3, 3, 256, 256]` filter (0.6 ms against 18.5 ms).
 */
function flipTaps(filter: tf.Tensor4D): tf.Tensor4D {
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
 * over leading axes by transposing first (`tf.sum(dz, [0, 1, 2])` takes ~3 ms at
 * `[4, 32, 32, 256]`, the matMul ~0.15 ms).
 */
function sumToChannels(dz: tf.Tensor4D): tf.Tensor1D {
  const [b, h, w, c] = dz.shape;
  const rows = b * h * w;
  return tf.reshape(tf.matMul(tf.ones([1, rows]), tf.reshape(dz, [rows, c])), [c]);
}

/**
 * The input gradient of a (non-depthwise, dilation 1) conv2d as one forward conv2d:
 * `dy` `[b, oh, ow, co]` with `stride - 1` zeros inserted between rows and columns,
 * padded so that a 'valid' correlation with the spatially flipped, in/out-swapped
 * filter `[fh, fw, co, ci]` gives `[b, h, w, ci]`. Avoids `Conv2DBackpropInput`, which
 * tfjs-backend-wasm 4.22 runs about 15x slower than a forward convolution.
 */
function inputGradByConv(dy: tf.Tensor4D, filter: tf.Tensor4D, info: tf.backend_util.Conv2DInfo): tf.Tensor4D {
  const { filterHeight: fh, filterWidth: fw, strideHeight: sh, strideWidth: sw, inHeight: h, inWidth: w } = info;
  const dyUp = dilateRows(dy, sh, sw);
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

/** Activations {@link fastConv2d} can fuse; each one's derivative is a function of its output. @category Backends */
export type FastConv2dActivation = 'linear' | 'relu' | 'elu';

/** Options of {@link fastConv2d}. @category Backends */
export interface FastConv2dOptions {
  /** Added to every output cell, float32 `[outChannels]`. Default: none. */
  bias?: tf.Tensor1D;
  /** Strides `[strideHeight, strideWidth]` or one number for both. Default 1. */
  strides?: number | [number, number];
  /** Padding: `'same'`, `'valid'` or a number of zero rows/columns on every side. Default `'same'`. */
  pad?: 'same' | 'valid' | number;
  /** Activation applied after the bias. Default `'linear'` (none). */
  activation?: FastConv2dActivation;
}

const FAST_CONV = 'fastConv2d';
const FAST_CONV_ACTIVATIONS: readonly FastConv2dActivation[] = ['linear', 'relu', 'elu'];

/**
 * `dy * activation'(pre-activation)`, written with the activation's output `y` only. The
 * elu case is the backends' own `EluGrad` kernel (one pass; `tf.where` with a comparison
 * takes four).
 */
function activationGrad(dy: tf.Tensor, y: tf.Tensor | undefined, activation: FastConv2dActivation): tf.Tensor {
  if (activation === 'relu') return tf.mul(dy, tf.step(y!));
  if (activation === 'elu') return tf.engine().runKernel(tf.EluGrad, { dy, y: y! }) as tf.Tensor;
  return dy;
}

/**
 * The geometry of one convolution, for {@link convForward} and {@link convBackward}:
 * tfjs's conv info, and whether it is a plain 1x1 (stride 1, no padding) that runs as a matMul.
 * @internal
 */
export interface ConvPlan {
  info: tf.backend_util.Conv2DInfo;
  pointwise: boolean;
  strides: number | [number, number];
  pad: 'same' | 'valid' | number;
}

/** @internal */
export function planConv(xShape: number[], filterShape: number[], strides: number | [number, number], pad: 'same' | 'valid' | number): ConvPlan {
  const info = tf.backend_util.computeConv2DInfo(
    xShape as Shape4, filterShape as Shape4, strides, 1, pad, undefined, false, 'channelsLast');
  const { top, bottom, left, right } = info.padInfo;
  const pointwise = info.filterHeight === 1 && info.filterWidth === 1 && info.strideHeight === 1
    && info.strideWidth === 1 && top === 0 && bottom === 0 && left === 0 && right === 0;
  return { info, pointwise, strides, pad };
}

/**
 * `activation(conv2d(x, filter) + bias)` with the backend's fused kernels, called directly:
 * under a gradient tape tf.fused.* refuses to fuse a non-linear activation (it would need
 * the kernel's gradient), so callers that supply their own gradient use this. Not taped
 * when called inside a custom gradient's forward function. @internal
 */
export function convForward(
  x: tf.Tensor4D, filter: tf.Tensor4D, bias: tf.Tensor1D | undefined, plan: ConvPlan, activation: FastConv2dActivation,
): tf.Tensor4D {
  if (plan.pointwise) {
    const [b, h, w, ci] = x.shape;
    const co = filter.shape[3];
    const rows = b * h * w;
    const inputs: tf.NamedTensorMap = { a: tf.reshape(x, [1, rows, ci]), b: tf.reshape(filter, [1, ci, co]) };
    if (bias) inputs['bias'] = bias;
    const attrs = { transposeA: false, transposeB: false, activation, leakyreluAlpha: 0 };
    const y3 = tf.engine().runKernel(tf._FusedMatMul, inputs, attrs as unknown as tf.NamedAttrMap) as tf.Tensor3D;
    return tf.reshape(y3, [b, h, w, co]);
  }
  const inputs: tf.NamedTensorMap = { x, filter };
  if (bias) inputs['bias'] = bias;
  const attrs = { strides: plan.strides, pad: plan.pad, dataFormat: 'NHWC', dilations: 1, dimRoundingMode: undefined, activation, leakyreluAlpha: 0 };
  return tf.engine().runKernel(tf.FusedConv2D, inputs, attrs as unknown as tf.NamedAttrMap) as tf.Tensor4D;
}

/**
 * Gradients of {@link convForward} given `dy`: `[dx, dFilter]`, plus `dBias` when
 * `withBias`. `y` is the forward output (needed for a non-linear activation). Forward
 * convolutions and plain matMuls only; temporaries are freed before it returns. @internal
 */
export function convBackward(
  x: tf.Tensor4D, filter: tf.Tensor4D, y: tf.Tensor4D | undefined, dy: tf.Tensor4D,
  plan: ConvPlan, activation: FastConv2dActivation, withBias: boolean,
): tf.Tensor[] {
  return tf.tidy(() => {
    const dz = activationGrad(dy, y, activation) as tf.Tensor4D;
    let dx: tf.Tensor, df: tf.Tensor;
    if (plan.pointwise) {
      const [b, h, w, ci] = x.shape;
      const co = filter.shape[3];
      const rows = b * h * w;
      const dz2 = tf.reshape(dz, [rows, co]) as tf.Tensor2D;
      dx = tf.reshape(tf.matMul(dz2, tf.transpose(tf.reshape(filter, [ci, co]))), x.shape);
      df = tf.reshape(tf.matMul(transpose2d(tf.reshape(x, [rows, ci]) as tf.Tensor2D), dz2), filter.shape);
    } else {
      dx = inputGradByConv(dz, filter, plan.info);
      df = filterGradByConv(x, dz, plan.info);
    }
    return withBias ? [dx, df, sumToChannels(dz)] : [dx, df];
  });
}

/**
 * A 2D convolution (NHWC, dilation 1), plus bias and activation, whose gradient is
 * computed with forward convolutions and plain matMuls only, so it trains fast on every
 * backend: on tfjs-backend-wasm 4.22 the native `Conv2DBackpropInput` is ~15x slower
 * than a forward convolution and `Conv2DBackpropFilter` is missing; on
 * tfjs-backend-cpu both are ~30x slower than this.
 *
 * A 1x1 convolution with stride 1 and no padding is computed as a reshape to
 * `[batch * height * width, inChannels]` and one fused `matMul` (bias and activation
 * included); its gradient uses `matMul`s with explicitly transposed operands (wasm's
 * `matMul` with transpose flags is ~10x slower). Other shapes use the fused conv2d kernel.
 * The values equal `tf.fused.conv2d` (to float rounding) and so do the gradients of
 * `x`, `filter` and `bias`. It needs no registered gradient kernels.
 *
 * @example
 * ```ts
 * const y = fastConv2d(x, kernel, { bias, activation: 'elu' }); // same as tf.elu(tf.conv2d(x, kernel, 1, 'same') + bias)
 * ```
 * @category Backends
 * @param x - Input, float32 `[batch, height, width, inChannels]`.
 * @param filter - Kernel, float32 `[filterHeight, filterWidth, inChannels, outChannels]`.
 * @param options - Bias, strides, padding and activation ({@link FastConv2dOptions}).
 * @returns float32 `[batch, outHeight, outWidth, outChannels]`.
 */
export function fastConv2d(x: tf.Tensor4D, filter: tf.Tensor4D, options: FastConv2dOptions = {}): tf.Tensor4D {
  assertState(x, FAST_CONV, 'x');
  assertRank(filter, 4, FAST_CONV, 'filter', '[filterHeight, filterWidth, inChannels, outChannels]');
  if (filter.shape[2] !== x.shape[3]) {
    throw new VncaError(FAST_CONV, 'filter', `must have inChannels = ${x.shape[3]} (x's channels) in dimension 2, but got shape [${filter.shape.join(', ')}].`);
  }
  const { bias, strides = 1, pad = 'same', activation = 'linear' } = options;
  const co = filter.shape[3];
  if (bias !== undefined) {
    assertRank(bias, 1, FAST_CONV, 'options.bias', '[outChannels]');
    if (bias.shape[0] !== co) throw new VncaError(FAST_CONV, 'options.bias', `must have length ${co}, but got ${bias.shape[0]}.`);
  }
  assertOneOf(activation, FAST_CONV_ACTIVATIONS, FAST_CONV, 'options.activation');
  for (const s of typeof strides === 'number' ? [strides] : strides) assertInt(s, FAST_CONV, 'options.strides', 1);
  if (typeof pad === 'number') assertInt(pad, FAST_CONV, 'options.pad', 0);
  else assertOneOf(pad, ['same', 'valid'] as const, FAST_CONV, 'options.pad');

  const plan = planConv(x.shape, filter.shape, strides, pad);
  const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const save = args.pop() as tf.GradSaveFunc;
    const [xt, ft, bt] = args as [tf.Tensor4D, tf.Tensor4D, tf.Tensor1D | undefined];
    const y = convForward(xt, ft, bt, plan, activation);
    save(activation === 'linear' ? [xt, ft] : [xt, ft, y]);
    return {
      value: y,
      gradFunc: (dy: tf.Tensor4D, saved: tf.Tensor[]) => {
        const [xs, fs, ys] = saved as [tf.Tensor4D, tf.Tensor4D, tf.Tensor4D | undefined];
        return convBackward(xs, fs, ys, dy, plan, activation, bt !== undefined);
      },
    };
  });
  return (bias === undefined ? op(x, filter) : op(x, filter, bias)) as tf.Tensor4D;
}

/** The kernels {@link enableWasmTraining} adds, by kernel name. */
const TRAINING_KERNELS: readonly tf.KernelConfig[] = [
  { kernelName: tf.Conv2DBackpropFilter, backendName: WASM, kernelFunc: conv2DBackpropFilter },
  { kernelName: tf.DepthwiseConv2dNativeBackpropInput, backendName: WASM, kernelFunc: depthwiseBackpropInput },
  { kernelName: tf.DepthwiseConv2dNativeBackpropFilter, backendName: WASM, kernelFunc: depthwiseBackpropFilter },
];

/**
 * Registers, for the tfjs backend named `'wasm'`, the kernels that gradients of
 * convolutions need and `@tensorflow/tfjs-backend-wasm` 4.22 lacks:
 * `Conv2DBackpropFilter`, `DepthwiseConv2dNativeBackpropInput` and
 * `DepthwiseConv2dNativeBackpropFilter`. A kernel the backend already has (a later
 * backend version, or an earlier call) is left alone, so calling this twice is harmless.
 * It does not import or start the wasm backend and changes nothing on other backends;
 * it may be called before or after the backend is registered.
 *
 * The VNCA training functions call `enableWasmTraining()` themselves; call it yourself
 * before using `tf.grad`, `tf.variableGrads` or `optimizer.minimize` through
 * convolutions on the wasm backend.
 *
 * `Conv2DBackpropFilter` supports NHWC only (what `tf.conv2d`'s gradient passes by default).
 *
 * @example
 * ```ts
 * import * as tf from '@tensorflow/tfjs-core';
 * import '@tensorflow/tfjs-backend-wasm';
 * import { enableWasmTraining } from 'vnca';
 *
 * await tf.setBackend('wasm');
 * enableWasmTraining();
 * const x = tf.randomNormal([1, 8, 8, 3]);
 * const w = tf.variable(tf.randomNormal([3, 3, 3, 4]));
 * const { grads } = tf.variableGrads(() => tf.sum(tf.conv2d(x, w as tf.Tensor4D, 1, 'same')));
 * ```
 * @category Backends
 */
export function enableWasmTraining(): void {
  for (const config of TRAINING_KERNELS) {
    if (tf.getKernel(config.kernelName, WASM) == null) tf.registerKernel(config);
  }
}

/**
 * Whether the `'wasm'` backend has every kernel {@link enableWasmTraining} provides
 * (registered by it or by the backend itself).
 *
 * @returns `true` once `Conv2DBackpropFilter`, `DepthwiseConv2dNativeBackpropInput` and
 *   `DepthwiseConv2dNativeBackpropFilter` are all registered for `'wasm'`.
 * @category Backends
 */
export function isWasmTrainingEnabled(): boolean {
  return TRAINING_KERNELS.every((config) => tf.getKernel(config.kernelName, WASM) != null);
}
