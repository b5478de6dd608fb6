import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
// tfjs-core registers its gradients when tfjs-layers loads; this file loads no layer, so it imports it itself.
import '@tensorflow/tfjs-layers';
import { BACKENDS, expectClose, onBackend, useBackend } from './helpers/backends.js';
import { enableWasmTraining, isWasmTrainingEnabled } from '../src/backend/wasm/register.js';
import { fastConv2d } from '../src/ops/conv.js';
import type { FastConv2dOptions } from '../src/ops/conv.js';
import { values } from './helpers/values.js';

const KERNELS = ['Conv2DBackpropFilter', 'DepthwiseConv2dNativeBackpropInput', 'DepthwiseConv2dNativeBackpropFilter'];

function tensor(shape: number[], seed: number): tf.Tensor {
  return tf.tensor(values(shape.reduce((a, b) => a * b, 1), seed), shape);
}

/** expectClose with the absolute tolerance scaled to the largest expected magnitude. */
function expectAllClose(actual: ArrayLike<number>, expected: ArrayLike<number>, rtol: number): void {
  let scale = 0;
  for (let i = 0; i < expected.length; i++) scale = Math.max(scale, Math.abs(expected[i]!));
  expectClose(actual, expected, rtol, rtol * scale);
}

type Pad = 'same' | 'valid' | number | [[number, number], [number, number], [number, number], [number, number]];

interface ConvCase {
  label: string;
  x: number[];
  filter: number[];
  strides: number | [number, number];
  pad: Pad;
}

const CONV_CASES: ConvCase[] = [
  { label: '3x3 same', x: [1, 5, 5, 3], filter: [3, 3, 3, 4], strides: 1, pad: 'same' },
  { label: '1x1 valid, batch 2', x: [2, 4, 4, 3], filter: [1, 1, 3, 5], strides: 1, pad: 'valid' },
  { label: '5x5 stride 2 same, batch 2', x: [2, 9, 9, 3], filter: [5, 5, 3, 4], strides: 2, pad: 'same' },
  { label: '3x3 strides [2, 1] valid, uneven input', x: [2, 8, 7, 2], filter: [3, 3, 2, 3], strides: [2, 1], pad: 'valid' },
  { label: '3x3 explicit padding', x: [1, 6, 6, 2], filter: [3, 3, 2, 2], strides: 1, pad: [[0, 0], [2, 1], [0, 2], [0, 0]] },
];

/** Gradient of sum(sin-weighted conv2d) with respect to the filter: runs Conv2DBackpropFilter. */
function conv2dFilterGrad(c: ConvCase): Float32Array {
  return tf.tidy(() => {
    const x = tensor(c.x, 1) as tf.Tensor4D;
    const w = tensor(c.filter, 2) as tf.Tensor4D;
    const f = (w: tf.Tensor): tf.Tensor => {
      const y = tf.conv2d(x, w as tf.Tensor4D, c.strides, c.pad);
      return tf.sum(tf.mul(y, tensor(y.shape, 3)));
    };
    return tf.grad(f)(w).dataSync() as Float32Array;
  });
}

interface DepthwiseCase {
  label: string;
  x: number[];
  filter: number[];
  strides: number | [number, number];
  pad: Pad;
}

const DEPTHWISE_CASES: DepthwiseCase[] = [
  { label: '3x3 same, multiplier 1', x: [1, 5, 5, 3], filter: [3, 3, 3, 1], strides: 1, pad: 'same' },
  { label: '3x3 same, multiplier 2, batch 2', x: [2, 6, 6, 3], filter: [3, 3, 3, 2], strides: 1, pad: 'same' },
  { label: '5x5 stride 2 same, batch 2', x: [2, 9, 9, 3], filter: [5, 5, 3, 2], strides: 2, pad: 'same' },
  { label: '3x3 strides [2, 1] valid', x: [2, 8, 7, 2], filter: [3, 3, 2, 3], strides: [2, 1], pad: 'valid' },
  { label: '3x3 explicit padding', x: [1, 7, 7, 2], filter: [3, 3, 2, 1], strides: 1, pad: [[0, 0], [2, 1], [0, 2], [0, 0]] },
];

/** Gradients of a weighted depthwise conv with respect to x and filter (both backprop kernels). */
function depthwiseGrads(c: DepthwiseCase): [Float32Array, Float32Array] {
  return tf.tidy(() => {
    const x = tensor(c.x, 1) as tf.Tensor4D;
    const w = tensor(c.filter, 2) as tf.Tensor4D;
    const f = (x: tf.Tensor, w: tf.Tensor): tf.Tensor => {
      const y = tf.depthwiseConv2d(x as tf.Tensor4D, w as tf.Tensor4D, c.strides, c.pad);
      return tf.sum(tf.mul(y, tensor(y.shape, 3)));
    };
    const [gx, gw] = tf.grads(f)([x, w]);
    return [gx!.dataSync() as Float32Array, gw!.dataSync() as Float32Array];
  });
}

describe('enableWasmTraining', () => {
  it('registers exactly the missing wasm kernels, once', async () => {
    await useBackend('wasm');
    enableWasmTraining();
    expect(isWasmTrainingEnabled()).toBe(true);
    const first = KERNELS.map((k) => tf.getKernel(k, 'wasm'));
    first.forEach((k) => expect(k).toBeDefined());
    const native = tf.getKernel('Conv2DBackpropInput', 'wasm');
    enableWasmTraining();
    KERNELS.forEach((k, i) => expect(tf.getKernel(k, 'wasm')).toBe(first[i]));
    // Kernels the backend has are left alone, and no other backend is touched.
    expect(tf.getKernel('Conv2DBackpropInput', 'wasm')).toBe(native);
    expect(tf.getKernel('Conv2DBackpropFilter', 'cpu')).not.toBe(first[0]);
  });
});

describe('wasm training kernels agree with tfjs-backend-cpu', () => {
  beforeAll(() => enableWasmTraining());

  for (const c of CONV_CASES) {
    it(`Conv2DBackpropFilter: ${c.label}`, async () => {
      const expected = await onBackend('cpu', () => conv2dFilterGrad(c));
      const actual = await onBackend('wasm', () => conv2dFilterGrad(c));
      expectAllClose(actual, expected, 1e-5);
    });
  }

  for (const c of DEPTHWISE_CASES) {
    it(`DepthwiseConv2dNativeBackpropInput / Filter: ${c.label}`, async () => {
      const [ex, ew] = await onBackend('cpu', () => depthwiseGrads(c));
      const [ax, aw] = await onBackend('wasm', () => depthwiseGrads(c));
      expectAllClose(ax, ex, 1e-5);
      expectAllClose(aw, ew, 1e-5);
    });
  }

  it('depthwise kernels handle dilation (checked by the adjoint identity; cpu ignores dilation there)', async () => {
    await useBackend('wasm');
    tf.tidy(() => {
      const x = tensor([1, 9, 8, 2], 1) as tf.Tensor4D;
      const w = tensor([3, 2, 2, 2], 2) as tf.Tensor4D;
      const dilations: [number, number] = [2, 3];
      const y = tf.depthwiseConv2d(x, w, 1, 'same', 'NHWC', dilations);
      const g = tensor(y.shape, 3);
      const attrs = { strides: 1, pad: 'same', dilations };
      const dx = tf.engine().runKernel('DepthwiseConv2dNativeBackpropInput', { dy: g, filter: w }, { ...attrs, inputShape: x.shape }) as tf.Tensor;
      const dw = tf.engine().runKernel('DepthwiseConv2dNativeBackpropFilter', { x, dy: g }, { ...attrs, filterShape: w.shape }) as tf.Tensor;
      // <conv(x, w), g> = <x, dL/dx> = <w, dL/dw> for a linear map.
      const lhs = tf.sum(tf.mul(y, g)).dataSync()[0]!;
      expect(tf.sum(tf.mul(x, dx)).dataSync()[0]).toBeCloseTo(lhs, 3);
      expect(tf.sum(tf.mul(w, dw)).dataSync()[0]).toBeCloseTo(lhs, 3);
    });
  });
});

describe('wasm training kernels: memory and tape', () => {
  beforeAll(async () => {
    enableWasmTraining();
    await useBackend('wasm');
  });

  it('leave no tensors or buffers behind', () => {
    conv2dFilterGrad(CONV_CASES[2]!);
    depthwiseGrads(DEPTHWISE_CASES[2]!);
    const tensors = tf.memory().numTensors;
    const buffers = tf.engine().backend.numDataIds();
    for (let i = 0; i < 3; i++) {
      conv2dFilterGrad(CONV_CASES[2]!);
      depthwiseGrads(DEPTHWISE_CASES[2]!);
    }
    expect(tf.memory().numTensors).toBe(tensors);
    expect(tf.engine().backend.numDataIds()).toBe(buffers);
  });

  it('output outlives the kernel and is freed with its tensor', () => {
    const x = tensor([1, 5, 5, 3], 1), dy = tensor([1, 5, 5, 4], 2);
    const buffers = tf.engine().backend.numDataIds();
    const out = tf.engine().runKernel('Conv2DBackpropFilter', { x, dy },
      { strides: 1, pad: 'same', dataFormat: 'NHWC', filterShape: [3, 3, 3, 4] }) as tf.Tensor;
    expect(out.shape).toEqual([3, 3, 3, 4]);
    expect(tf.engine().backend.numDataIds()).toBe(buffers + 1);
    expect(Array.from(out.dataSync()).every(Number.isFinite)).toBe(true);
    out.dispose();
    expect(tf.engine().backend.numDataIds()).toBe(buffers);
    tf.dispose([x, dy]);
  });

  it('records one tape node per kernel call, none for the ops inside it', () => {
    const tape = (): unknown[] => (tf.engine().state as unknown as { activeTape: unknown[] }).activeTape;
    const dy = tensor([1, 5, 5, 4], 2);
    let added = -1;
    const x = tensor([1, 5, 5, 3], 1);
    const g = tf.grad((x: tf.Tensor) => {
      const before = tape().length;
      const inner = tf.engine().runKernel('Conv2DBackpropFilter', { x, dy },
        { strides: 1, pad: 'same', dataFormat: 'NHWC', filterShape: [3, 3, 3, 4] }) as tf.Tensor;
      added = tape().length - before;
      inner.dispose();
      return tf.sum(tf.square(x));
    })(x);
    expect(added).toBe(1);
    tf.dispose([g, x, dy]);
  });

  it('rejects NCHW in Conv2DBackpropFilter', () => {
    const x = tensor([1, 3, 5, 5], 1), dy = tensor([1, 4, 5, 5], 2);
    expect(() => tf.engine().runKernel('Conv2DBackpropFilter', { x, dy },
      { strides: 1, pad: 'same', dataFormat: 'NCHW', filterShape: [3, 3, 3, 4] })).toThrowError(/dataFormat must be 'NHWC'/);
    tf.dispose([x, dy]);
  });
});

/** Reference: tf.conv2d (+ bias, activation) with tfjs's own gradients. */
function referenceConv(x: tf.Tensor4D, w: tf.Tensor4D, b: tf.Tensor1D, o: FastConv2dOptions): tf.Tensor4D {
  let y = tf.add(tf.conv2d(x, w, o.strides ?? 1, o.pad ?? 'same'), b) as tf.Tensor4D;
  if (o.activation === 'relu') y = tf.relu(y);
  if (o.activation === 'elu') y = tf.elu(y);
  return y;
}

interface FastCase {
  label: string;
  x: number[];
  filter: number[];
  options: FastConv2dOptions;
}

const FAST_CASES: FastCase[] = [
  { label: '3x3 same', x: [2, 5, 5, 3], filter: [3, 3, 3, 4], options: {} },
  { label: '1x1 (matMul path) with elu', x: [2, 5, 5, 3], filter: [1, 1, 3, 4], options: { activation: 'elu' } },
  { label: '1x1 (matMul path) with relu', x: [2, 4, 4, 3], filter: [1, 1, 3, 4], options: { activation: 'relu' } },
  { label: '5x5 stride 2 same with elu', x: [2, 9, 9, 3], filter: [5, 5, 3, 4], options: { strides: 2, activation: 'elu' } },
  { label: '3x3 strides [2, 1] valid', x: [2, 8, 7, 2], filter: [3, 3, 2, 3], options: { strides: [2, 1], pad: 'valid' } },
  { label: '2x2 same (uneven padding)', x: [1, 6, 6, 2], filter: [2, 2, 2, 3], options: {} },
  { label: '3x3 pad 2 with relu', x: [1, 6, 6, 2], filter: [3, 3, 2, 3], options: { pad: 2, activation: 'relu' } },
  { label: '1x1 stride 2', x: [2, 6, 6, 3], filter: [1, 1, 3, 2], options: { strides: 2 } },
  // Large enough for the two-pass transposes of the gradients (rows a multiple of 16, >= 64; >= 16 channels).
  { label: '1x1 with elu, two-pass transpose', x: [2, 8, 8, 16], filter: [1, 1, 16, 8], options: { activation: 'elu' } },
  { label: '3x3 same, two-pass transpose', x: [2, 6, 6, 16], filter: [3, 3, 16, 8], options: {} },
  { label: '5x5 stride 2 pad 2 with elu (the encoder)', x: [2, 8, 8, 3], filter: [5, 5, 3, 4], options: { strides: 2, pad: 2, activation: 'elu' } },
];

/** Value and the gradients of a weighted sum w.r.t. x, filter and bias, flattened. */
function convAndGrads(conv: (x: tf.Tensor4D, w: tf.Tensor4D, b: tf.Tensor1D) => tf.Tensor4D, c: FastCase): Float32Array[] {
  return tf.tidy(() => {
    const x = tensor(c.x, 1) as tf.Tensor4D;
    const w = tensor(c.filter, 2) as tf.Tensor4D;
    const b = tensor([c.filter[3]!], 3) as tf.Tensor1D;
    const y = conv(x, w, b);
    const weight = tensor(y.shape, 4);
    const grads = tf.grads((x: tf.Tensor, w: tf.Tensor, b: tf.Tensor) =>
      tf.sum(tf.mul(conv(x as tf.Tensor4D, w as tf.Tensor4D, b as tf.Tensor1D), weight)))([x, w, b]);
    return [y, ...grads].map((t) => t.dataSync() as Float32Array);
  });
}

describe('fastConv2d', () => {
  for (const c of FAST_CASES) {
    it(`matches tf.conv2d values and gradients on cpu and wasm: ${c.label}`, async () => {
      const expected = await onBackend('cpu', () => convAndGrads((x, w, b) => referenceConv(x, w, b, c.options), c));
      for (const backend of BACKENDS) {
        const actual = await onBackend(backend, () => convAndGrads((x, w, b) => fastConv2d(x, w, { ...c.options, bias: b }), c));
        actual.forEach((a, i) => expectAllClose(a, expected[i]!, 1e-5));
      }
    });
  }
});

describe.each(BACKENDS)('fastConv2d on %s', (name) => {
  beforeAll(() => useBackend(name));

  it('keeps bias and activation fused under a gradient tape', async () => {
    const x = tf.randomNormal([2, 4, 4, 3], 0, 1, 'float32', 1) as tf.Tensor4D;
    const w = tf.randomNormal([1, 1, 3, 4], 0, 1, 'float32', 2) as tf.Tensor4D;
    const w3 = tf.randomNormal([3, 3, 3, 4], 0, 1, 'float32', 3) as tf.Tensor4D;
    const b = tf.zeros([4]) as tf.Tensor1D;
    const profile = await tf.profile(() => {
      tf.dispose(tf.grads((xx: tf.Tensor) => tf.add(
        tf.sum(fastConv2d(xx as tf.Tensor4D, w, { bias: b, activation: 'elu' })),
        tf.sum(fastConv2d(xx as tf.Tensor4D, w3, { bias: b, activation: 'elu' })),
      ))([x]));
    });
    const names = profile.kernels.map((k) => k.name);
    expect(names).toContain('_FusedMatMul');
    expect(names).toContain('FusedConv2D');
    expect(names).not.toContain('Elu');
    expect(names).toContain('EluGrad');
    tf.dispose([x, w, w3, b]);
  });

  it('works without a bias and needs no registered gradient kernels', () => {
    const x = tensor([1, 4, 4, 2], 1) as tf.Tensor4D, w = tensor([3, 3, 2, 2], 2) as tf.Tensor4D;
    const [y1, y2] = [fastConv2d(x, w), tf.conv2d(x, w, 1, 'same')];
    expectAllClose(y1.dataSync(), y2.dataSync(), 1e-5);
    const g = tf.grad((w: tf.Tensor) => tf.sum(fastConv2d(x, w as tf.Tensor4D)))(w);
    expect(g.shape).toEqual([3, 3, 2, 2]);
    tf.dispose([x, w, y1, y2, g]);
  });

  it('keeps the tensor count flat', () => {
    const c = FAST_CASES[3]!;
    const run = (): Float32Array[] => convAndGrads((x, w, b) => fastConv2d(x, w, { ...c.options, bias: b }), c);
    run();
    const before = tf.memory().numTensors;
    run();
    run();
    expect(tf.memory().numTensors).toBe(before);
  });

  it('rejects bad arguments', () => {
    const x = tf.zeros([1, 4, 4, 2]) as tf.Tensor4D, w = tf.zeros([3, 3, 2, 3]) as tf.Tensor4D;
    expect(() => fastConv2d(tf.zeros([4, 4, 2]) as unknown as tf.Tensor4D, w)).toThrowError(/Error in fastConv2d: x must be rank 4/);
    expect(() => fastConv2d(x, tf.zeros([3, 3, 5, 3]) as tf.Tensor4D)).toThrowError(/filter must have inChannels = 2/);
    expect(() => fastConv2d(x, w, { bias: tf.zeros([2]) as tf.Tensor1D })).toThrowError(/options.bias must have length 3/);
    expect(() => fastConv2d(x, w, { activation: 'tanh' as never })).toThrowError(/options.activation must be one of 'linear', 'relu', 'elu'/);
    expect(() => fastConv2d(x, w, { strides: 0 })).toThrowError(/options.strides must be an integer >= 1/);
    expect(() => fastConv2d(x, w, { pad: 'full' as never })).toThrowError(/options.pad must be one of 'same', 'valid'/);
    tf.dispose([x, w]);
  });
});
