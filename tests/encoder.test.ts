import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { BACKENDS, expectClose, onBackend, useBackend, type BackendName } from './helpers/backends.js';
import { Encoder, registerEncoder, type EncoderOptions } from '../src/vae/Encoder.js';
import { enableWasmTraining } from '../src/backend/wasm/register.js';

/** A deterministic pseudo-random sequence in [-scale, scale). */
function pseudo(n: number, seed: number, scale = 1): number[] {
  let s = seed;
  return Array.from({ length: n }, () => {
    s = (s * 16807) % 2147483647;
    return scale * (2 * (s / 2147483647) - 1);
  });
}

const elu = (v: number) => (v > 0 ? v : Math.expm1(v));

/**
 * The reference's encoder in plain JS with PyTorch semantics: conv with `padding = k // 2`
 * on both sides, ELU, then flatten in (C, H, W) order and a Linear layer `W[out][in]`.
 * Activations are kept as [h][w][c]; kernels are HWIO as our layer stores them.
 */
function referenceForward(
  x: number[][][], kernels: number[][][][][], biases: number[][], strides: number[], linW: number[][], linB: number[],
): number[] {
  let a = x;
  kernels.forEach((K, i) => {
    const k = K.length, p = (k - 1) / 2, s = strides[i]!;
    const H = a.length, W = a[0]!.length, cIn = a[0]![0]!.length, cOut = K[0]![0]![0]!.length;
    const Ho = Math.floor((H + 2 * p - k) / s) + 1, Wo = Math.floor((W + 2 * p - k) / s) + 1;
    const out: number[][][] = [];
    for (let oy = 0; oy < Ho; oy++) {
      out.push([]);
      for (let ox = 0; ox < Wo; ox++) {
        const v = biases[i]!.slice();
        for (let ky = 0; ky < k; ky++) {
          for (let kx = 0; kx < k; kx++) {
            const iy = oy * s - p + ky, ix = ox * s - p + kx;
            if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
            for (let ci = 0; ci < cIn; ci++) {
              for (let co = 0; co < cOut; co++) v[co]! += a[iy]![ix]![ci]! * K[ky]![kx]![ci]![co]!;
            }
          }
        }
        out[oy]!.push(v.map(elu));
      }
    }
    a = out;
  });
  const f = a.length, C = a[0]![0]!.length;
  const flat: number[] = new Array(C * f * f);
  for (let c = 0; c < C; c++) for (let h = 0; h < f; h++) for (let w = 0; w < f; w++) flat[c * f * f + h * f + w] = a[h]![w]![c]!;
  return linW.map((row, o) => row.reduce((acc, wv, j) => acc + wv * flat[j]!, linB[o]!));
}

const TINY: EncoderOptions = { inChannels: 2, zSize: 2, channels: [3, 4, 2], inputSize: 6, kernelSize: 3 };
// Even sizes matter: for 6 -> 3 tfjs 'same' would pad (0, 1), PyTorch pads (1, 1).

describe('Encoder (no tensors run)', () => {
  it('has 5,402,880 parameters at the defaults (the paper encoder)', async () => {
    await useBackend('cpu');
    const e = new Encoder();
    e.build([null, 32, 32, 1]);
    expect(e.countParams()).toBe(5_402_880);
    expect(e.finalSize).toBe(2);
    const shapes = e.weights.map((w) => [w.originalName, w.shape]);
    expect(shapes).toEqual([
      ['conv0/kernel', [5, 5, 1, 32]], ['conv0/bias', [32]],
      ['conv1/kernel', [5, 5, 32, 64]], ['conv1/bias', [64]],
      ['conv2/kernel', [5, 5, 64, 128]], ['conv2/bias', [128]],
      ['conv3/kernel', [5, 5, 128, 256]], ['conv3/bias', [256]],
      ['conv4/kernel', [5, 5, 256, 512]], ['conv4/bias', [512]],
      ['dense/kernel', [2048, 512]], ['dense/bias', [512]],
    ]);
    // PyTorch-style init: conv0 is uniform in ±1/sqrt(25).
    const k0 = await e.weights[0]!.read().data();
    expect(Math.max(...Array.from(k0, Math.abs))).toBeLessThanOrEqual(0.2 + 1e-6);
    for (const w of e.weights) w.dispose();
  });

  it('getConfig echoes every option and round-trips through the class registry', () => {
    const e = new Encoder({ ...TINY, seed: 3, name: 'enc_cfg' });
    const config = e.getConfig();
    expect(config).toMatchObject({ inChannels: 2, zSize: 2, channels: [3, 4, 2], inputSize: 6, kernelSize: 3, seed: 3, name: 'enc_cfg', trainable: true });
    registerEncoder(); // idempotent
    const entry = tf.serialization.SerializationMap.getMap().classNameMap['vnca.Encoder'];
    expect(entry).toBeDefined();
    const [cls, fromConfig] = entry!;
    const e2 = fromConfig(cls, config) as Encoder;
    expect(e2).toBeInstanceOf(Encoder);
    expect(e2.getConfig()).toEqual(config);
    expect(Encoder.className).toBe('vnca.Encoder');
    const defaults = new Encoder().getConfig();
    expect(defaults).toMatchObject({ inChannels: 1, zSize: 256, channels: [32, 64, 128, 256, 512], inputSize: 32, kernelSize: 5 });
    expect('seed' in defaults).toBe(false);
  });

  it('rejects bad options', () => {
    expect(() => new Encoder({ channels: [] })).toThrowError(/Error in Encoder: channels must be a non-empty array of positive integers/);
    expect(() => new Encoder({ channels: [8, 0] })).toThrowError(/channels\[1\] must be an integer >= 1/);
    expect(() => new Encoder({ kernelSize: 4 })).toThrowError(/kernelSize must be odd, but got 4/);
    expect(() => new Encoder({ inChannels: 0 })).toThrowError(/inChannels must be an integer >= 1/);
    expect(() => new Encoder({ zSize: 1.5 })).toThrowError(/zSize must be an integer >= 1/);
    expect(() => new Encoder({ seed: Number.NaN })).toThrowError(/seed must be a finite number/);
    expect(() => new Encoder(null as unknown as EncoderOptions)).toThrowError(/options must be an object/);
  });
});

describe.each(BACKENDS)('Encoder on %s', (name) => {
  beforeAll(() => useBackend(name));

  it('maps [b, 32, 32, 1] to [b, 2 * zSize] with a small config', () => {
    const e = new Encoder({ zSize: 3, channels: [2, 3, 4], inputSize: 32 });
    const x = tf.zeros([2, 32, 32, 1]);
    const out = e.apply(x) as tf.Tensor;
    expect(out.shape).toEqual([2, 6]);
    expect(e.finalSize).toBe(8);
    expect(e.countParams()).toBe((25 * 2 + 2) + (25 * 2 * 3 + 3) + (25 * 3 * 4 + 4) + (8 * 8 * 4 * 6 + 6));
    expect(e.weights.map((w) => w.name)).toEqual(
      ['conv0/kernel', 'conv0/bias', 'conv1/kernel', 'conv1/bias', 'conv2/kernel', 'conv2/bias', 'dense/kernel', 'dense/bias']
        .map((n) => `${e.name}/${n}`),
    );
    tf.dispose([x, out]);
    e.dispose();
  });

  it('equals the PyTorch-semantics reference (symmetric padding, (C, H, W) flatten permuted into the dense rows)', async () => {
    const e = new Encoder(TINY);
    const { inChannels: cIn, channels, inputSize: S, kernelSize: k, zSize } = TINY as Required<EncoderOptions>;
    const b = 2;
    const xv = pseudo(b * S * S * cIn, 11);
    const x = tf.tensor4d(xv, [b, S, S, cIn]);
    e.apply(x); // build
    let seed = 100, prev = cIn;
    const kernels: number[][][][][] = [], biases: number[][] = [], weights: tf.Tensor[] = [];
    for (const cOut of channels) {
      const kv = pseudo(k * k * prev * cOut, seed++, 0.5), bv = pseudo(cOut, seed++, 0.2);
      weights.push(tf.tensor4d(kv, [k, k, prev, cOut]), tf.tensor1d(bv));
      kernels.push(Array.from({ length: k }, (_, ky) => Array.from({ length: k }, (_, kx) =>
        Array.from({ length: prev }, (_, ci) => Array.from({ length: cOut }, (_, co) => kv[((ky * k + kx) * prev + ci) * cOut + co]!)))));
      biases.push(bv);
      prev = cOut;
    }
    const f = e.finalSize, C = prev, out = 2 * zSize, inF = f * f * C;
    expect(f).toBe(2); // 6 -> 6 -> 3 -> 2
    // Torch Linear weight [out][c * f * f + h * f + w] -> our kernel row (h * f + w) * C + c.
    const linW = Array.from({ length: out }, (_, o) => pseudo(inF, 500 + o, 0.3));
    const linB = pseudo(out, 999, 0.1);
    const dense = new Array(inF * out);
    for (let c = 0; c < C; c++) for (let h = 0; h < f; h++) for (let w = 0; w < f; w++) {
      for (let o = 0; o < out; o++) dense[((h * f + w) * C + c) * out + o] = linW[o]![c * f * f + h * f + w]!;
    }
    weights.push(tf.tensor2d(dense, [inF, out]), tf.tensor1d(linB));
    e.setWeights(weights);
    const y = e.apply(x) as tf.Tensor;
    const got = await y.data();
    for (let i = 0; i < b; i++) {
      const img = Array.from({ length: S }, (_, h) => Array.from({ length: S }, (_, w) =>
        Array.from({ length: cIn }, (_, c) => xv[((i * S + h) * S + w) * cIn + c]!)));
      const expected = referenceForward(img, kernels, biases, [1, 2, 2], linW, linB);
      expectClose(got.slice(i * out, (i + 1) * out), expected, 1e-4, 1e-5);
    }
    tf.dispose([x, y, ...weights]);
    e.dispose();
  });

  it('saves and loads inside a tfjs model with identical outputs', async () => {
    const e = new Encoder({ ...TINY, seed: 5 });
    const input = tfl.input({ shape: [6, 6, 2] });
    const model = tfl.model({ inputs: input, outputs: e.apply(input) as tfl.SymbolicTensor });
    let artifacts: tf.io.ModelArtifacts | undefined;
    await model.save(tf.io.withSaveHandler(async (a) => {
      artifacts = a;
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
    }));
    const loaded = await tfl.loadLayersModel(tf.io.fromMemory(artifacts!));
    expect(loaded.layers[1]).toBeInstanceOf(Encoder);
    const x = tf.tensor4d(pseudo(3 * 6 * 6 * 2, 8), [3, 6, 6, 2]);
    const a = model.predict(x) as tf.Tensor, b = loaded.predict(x) as tf.Tensor;
    expect(a.shape).toEqual([3, 4]);
    expectClose(await b.data(), await a.data(), 0, 0);
    tf.dispose([x, a, b]);
    model.dispose();
    loaded.dispose();
  });

  it('does not leak tensors', () => {
    const e = new Encoder(TINY);
    const x = tf.zeros([1, 6, 6, 2]);
    tf.dispose(e.apply(x) as tf.Tensor); // build
    const before = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) tf.dispose(e.apply(x) as tf.Tensor);
    expect(tf.memory().numTensors).toBe(before);
    x.dispose();
    e.dispose();
  });

  it('rejects bad input', () => {
    const e = new Encoder(TINY);
    const wrongChannels = tf.zeros([1, 6, 6, 1]), wrongSize = tf.zeros([1, 5, 5, 2]), rank3 = tf.zeros([6, 6, 2]);
    const ints = tf.zeros([1, 6, 6, 2], 'int32');
    expect(() => e.apply(wrongChannels)).toThrowError(/Error in Encoder.build: inputShape must have shape \[batch, 6, 6, 2\]/);
    expect(() => e.call(tf.zeros([1, 6, 6, 2]), {})).toThrowError(/must be built first: call encoder.apply\(x\)/);
    tf.dispose(e.apply(tf.zeros([1, 6, 6, 2])) as tf.Tensor);
    expect(() => e.apply(wrongSize)).toThrowError(/Error in Encoder.call: x must have shape \[batch, 6, 6, 2\] \(inputSize 6, inChannels 2\), but got \[1, 5, 5, 2\]/);
    expect(() => e.apply(rank3)).toThrowError(/Error in Encoder.call: x must be rank 4/);
    expect(() => e.apply(ints)).toThrowError(/x must be float32/);
    tf.dispose([wrongChannels, wrongSize, rank3, ints]);
    e.dispose();
  });

  it('has gradients for every weight that match finite differences', async () => {
    if (name === 'wasm') enableWasmTraining(); // wasm 4.22 lacks Conv2DBackpropFilter
    const e = new Encoder({ ...TINY, seed: 2 });
    const x = tf.tensor4d(pseudo(2 * 6 * 6 * 2, 4), [2, 6, 6, 2]);
    const target = tf.tensor2d(pseudo(2 * 4, 6), [2, 4]);
    const lossFn = () => tf.sum(tf.square(tf.sub(e.apply(x) as tf.Tensor, target))) as tf.Scalar;
    tf.dispose(lossFn()); // build
    const vars = e.trainableWeights.map((w) => w.read() as tf.Variable);
    const { value, grads } = tf.variableGrads(lossFn, vars);
    expect(Object.keys(grads)).toHaveLength(8);
    // Central differences on a few entries of conv0/kernel and conv1/kernel.
    for (const [wi, idx] of [[0, 0], [0, 17], [2, 5], [2, 40]] as const) {
      const v = vars[wi]!;
      const orig = v.dataSync().slice();
      const at = (delta: number) => {
        const vals = orig.slice();
        vals[idx] = orig[idx]! + delta;
        v.assign(tf.tensor(vals, v.shape));
        return tf.tidy(() => lossFn().dataSync()[0]!);
      };
      const fd = (at(1e-2) - at(-1e-2)) / 2e-2;
      v.assign(tf.tensor(orig, v.shape));
      const g = grads[v.name]!.dataSync()[idx]!;
      expectClose([g], [fd], 2e-2, 2e-3);
    }
    tf.dispose([x, target, value, ...Object.values(grads)]);
    e.dispose();
  });
});

describe('Encoder agrees across backends', () => {
  it('gives the same output on cpu and wasm for the same seed', async () => {
    const xv = pseudo(2 * 8 * 8 * 1, 21);
    const run = (backend: BackendName) => onBackend(backend, () => {
      const e = new Encoder({ zSize: 3, channels: [4, 8, 8], inputSize: 8, seed: 9 });
      const x = tf.tensor4d(xv, [2, 8, 8, 1]);
      const y = e.apply(x) as tf.Tensor;
      const out = { y: y.dataSync().slice(), w: e.getWeights().map((w) => w.dataSync().slice()) };
      tf.dispose([x, y]);
      e.dispose();
      return out;
    });
    const cpu = await run('cpu');
    const wasm = await run('wasm');
    cpu.w.forEach((w, i) => expectClose(wasm.w[i]!, w, 0, 0));
    expectClose(wasm.y, cpu.y, 1e-4, 1e-5);
  });
});
