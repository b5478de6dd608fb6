/**
 * {@link fastConv2d}: a convolution with a custom gradient built from forward convolutions and
 * plain matMuls only, so it trains fast on every backend (docs/performance.md has the numbers).
 * The update rules and the encoder use it; {@link planConv}, {@link convForward} and
 * {@link convBackward} are its parts, for rules that write their own custom gradient.
 * @module
 */
import * as tf from '@tensorflow/tfjs-core';
import { VncaError, assertInt, assertOneOf, assertRank, assertState } from '../core/errors.js';
import { sumToChannels, transpose2d, type Shape4 } from './layout.js';
import { filterGradByConv, inputGradByConv } from './convGradients.js';

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
 * backend: on tfjs-backend-wasm 4.22 the native `Conv2DBackpropInput` is much slower
 * than a forward convolution and `Conv2DBackpropFilter` is missing; on
 * tfjs-backend-cpu both are slower still (docs/performance.md has the numbers).
 *
 * A 1x1 convolution with stride 1 and no padding is computed as a reshape to
 * `[batch * height * width, inChannels]` and one fused `matMul` (bias and activation
 * included); its gradient uses `matMul`s with explicitly transposed operands (wasm's
 * `matMul` with transpose flags is much slower). Other shapes use the fused conv2d kernel.
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
