/**
 * Registers the training kernels that
 * `@tensorflow/tfjs-backend-wasm` 4.22 lacks.
 *
 * The wasm backend runs convolutions forward and has `Conv2DBackpropInput`, but it has no `Conv2DBackpropFilter`,
 * `DepthwiseConv2dNativeBackpropInput` or `DepthwiseConv2dNativeBackpropFilter`, so
 * `tf.grad` through `tf.conv2d` (with respect to the filter) or `tf.depthwiseConv2d`
 * fails there. {@link enableWasmTraining} registers those three kernels for the backend
 * named `'wasm'`. Each one is written with ordinary tfjs ops (transposes, pads, forward
 * `conv2d` / `depthwiseConv2d`, `matMul`), which the wasm backend runs natively; this
 * file never imports the backend itself. Ops run inside a kernel are not recorded on the
 * gradient tape (tfjs stops recording while a kernel runs), and every temporary they
 * make is freed before the kernel returns.
 *
 * One kernel per file beside this one; `src/ops/conv.ts` has {@link fastConv2d}, which needs
 * none of them.
 * @module
 */
import * as tf from '@tensorflow/tfjs-core';
import { WASM } from './runAsKernel.js';
import { conv2DBackpropFilter } from './Conv2DBackpropFilter.js';
import { depthwiseBackpropInput } from './DepthwiseConv2dNativeBackpropInput.js';
import { depthwiseBackpropFilter } from './DepthwiseConv2dNativeBackpropFilter.js';

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
