import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
// tfjs-core registers its gradients when tfjs-layers loads; this file loads no layer, so it imports it itself.
import '@tensorflow/tfjs-layers';
import '@tensorflow/tfjs-backend-wasm';
import {
  disableRelaxedSimdKernels,
  enableRelaxedSimdKernels,
  isRelaxedSimdEnabled,
  isRelaxedSimdSupported,
} from '../src/backend/relaxed/relaxedMatMul.js';
import { enableWasmTraining } from '../src/backend/wasm/register.js';
import { values } from './helpers/values.js';

const nodeMajor = Number(process.versions.node.split('.')[0]);
const flagged = process.execArgv.some((a) => a.includes('relaxed-simd'));
const supported = isRelaxedSimdSupported();

interface Case { label: string; a: number[]; b: number[]; tA?: boolean; tB?: boolean }

const CASES: Case[] = [
  { label: '1x1 conv forward, rows not a multiple of 6', a: [1000, 64], b: [64, 32] },
  { label: 'paper shape [4096,256]x[256,256]', a: [4096, 256], b: [256, 256] },
  { label: 'K blocked (K 600)', a: [97, 600], b: [600, 48] },
  { label: 'transposeA (filter gradient), M 250', a: [512, 250], b: [512, 64], tA: true },
  { label: 'transposeA, K blocked and ragged (K 300)', a: [300, 40], b: [300, 16], tA: true },
  { label: 'transposeB (input gradient)', a: [333, 128], b: [64, 128], tB: true },
  { label: 'transposeA and transposeB', a: [128, 70], b: [24, 128], tA: true, tB: true },
  { label: 'batched, b shared', a: [3, 50, 64], b: [64, 32] },
  { label: 'batched, b batched', a: [2, 3, 40, 32], b: [2, 3, 32, 24] },
  { label: 'falls back: N 10', a: [200, 64], b: [64, 10] },
  { label: 'falls back: M 4', a: [4, 4096], b: [4096, 64] },
];

describe('relaxed-SIMD kernels', () => {
  it('are accepted exactly where the runtime has relaxed SIMD', () => {
    if (nodeMajor >= 22 || flagged) expect(supported).toBe(true);
    else expect(supported).toBe(false);
  });

  describe.skipIf(!supported)('on the wasm backend (relaxed SIMD available)', () => {
    beforeAll(async () => {
      await tf.setBackend('wasm');
      await tf.ready();
    });
    afterAll(() => disableRelaxedSimdKernels());

    it('enable is idempotent and disable restores the backend kernel', async () => {
      const own = tf.getKernel(tf.BatchMatMul, 'wasm')!.kernelFunc;
      const ownFused = tf.getKernel(tf._FusedMatMul, 'wasm')!.kernelFunc;
      expect(await enableRelaxedSimdKernels()).toBe(true);
      expect(await enableRelaxedSimdKernels()).toBe(true);
      expect(isRelaxedSimdEnabled()).toBe(true);
      expect(tf.getKernel(tf.BatchMatMul, 'wasm')!.kernelFunc).not.toBe(own);
      expect(tf.getKernel(tf._FusedMatMul, 'wasm')!.kernelFunc).not.toBe(ownFused);
      disableRelaxedSimdKernels();
      expect(isRelaxedSimdEnabled()).toBe(false);
      expect(tf.getKernel(tf.BatchMatMul, 'wasm')!.kernelFunc).toBe(own);
      expect(tf.getKernel(tf._FusedMatMul, 'wasm')!.kernelFunc).toBe(ownFused);
    });

    for (const c of CASES) {
      it(`matches the backend's matMul: ${c.label}`, async () => {
        const a = tf.tensor(values(c.a.reduce((p, q) => p * q, 1), 1), c.a);
        const b = tf.tensor(values(c.b.reduce((p, q) => p * q, 1), 2), c.b);
        const want = tf.matMul(a, b, c.tA, c.tB);
        const expected = want.dataSync().slice();
        await enableRelaxedSimdKernels();
        const before = tf.memory().numTensors;
        const bytesBefore = tf.memory().numBytes;
        const got = tf.matMul(a, b, c.tA, c.tB);
        expect(got.shape).toEqual(want.shape);
        const actual = got.dataSync();
        got.dispose();
        expect(tf.memory().numTensors).toBe(before);
        expect(tf.memory().numBytes).toBe(bytesBefore);
        disableRelaxedSimdKernels();
        let scale = 0;
        let maxErr = 0;
        for (let i = 0; i < expected.length; i++) {
          scale = Math.max(scale, Math.abs(expected[i]!));
          maxErr = Math.max(maxErr, Math.abs(expected[i]! - actual[i]!));
        }
        expect(Number.isFinite(maxErr)).toBe(true);
        expect(maxErr).toBeLessThanOrEqual(1e-5 * Math.max(1, scale) * Math.sqrt(c.a[c.a.length - (c.tA ? 2 : 1)]!));
        tf.dispose([a, b, want]);
      });
    }

    for (const activation of ['linear', 'relu', 'elu', 'relu6', 'leakyrelu'] as const) {
      it(`fused matMul with bias and ${activation} matches the backend's`, async () => {
        const a = tf.tensor2d(values(500 * 64, 5), [500, 64]);
        const b = tf.tensor2d(values(64 * 48, 6), [64, 48]);
        const bias = tf.tensor1d(values(48, 7));
        const run = () => tf.fused.matMul({ a, b, bias, activation });
        const want = run();
        const expected = want.dataSync().slice();
        await enableRelaxedSimdKernels();
        const before = tf.memory().numTensors;
        const bytesBefore = tf.memory().numBytes;
        const got = run();
        const actual = got.dataSync().slice();
        got.dispose();
        expect(tf.memory().numTensors).toBe(before);
        expect(tf.memory().numBytes).toBe(bytesBefore);
        disableRelaxedSimdKernels();
        let maxErr = 0;
        for (let i = 0; i < expected.length; i++) maxErr = Math.max(maxErr, Math.abs(expected[i]! - actual[i]!));
        expect(maxErr).toBeLessThanOrEqual(1e-5 * 8);
        tf.dispose([a, b, bias, want]);
      });
    }

    interface ConvCase { label: string; x: number[]; f: number[]; strides?: number | [number, number]; pad: 'same' | 'valid' | number; dilations?: number }
    const CONVS: ConvCase[] = [
      { label: '3x3 same (the update rule)', x: [2, 9, 9, 16], f: [3, 3, 16, 24], pad: 'same' },
      { label: '3x3 valid', x: [1, 10, 7, 16], f: [3, 3, 16, 16], pad: 'valid' },
      { label: 'stride 2, 5x5, same', x: [2, 11, 11, 20], f: [5, 5, 20, 8], strides: 2, pad: 'same' },
      { label: 'dilation 2, explicit pad 1', x: [1, 12, 12, 16], f: [3, 3, 16, 16], pad: 1, dilations: 2 },
      { label: 'inC 260: K blocked', x: [1, 6, 6, 260], f: [3, 3, 260, 8], pad: 'same' },
      { label: '1x1, 32x32x64 -> 64', x: [1, 32, 32, 64], f: [1, 1, 64, 64], pad: 'valid' },
      { label: 'falls back: inC 3', x: [1, 16, 16, 3], f: [3, 3, 3, 16], pad: 'same' },
      { label: 'falls back: inC 8', x: [1, 16, 16, 8], f: [3, 3, 8, 16], pad: 'same' },
    ];
    for (const c of CONVS) {
      for (const fusedWith of [null, 'elu'] as const) {
        it(`conv2d matches the backend's: ${c.label}${fusedWith ? ', fused bias + elu' : ''}`, async () => {
          const x = tf.tensor4d(values(c.x.reduce((p, q) => p * q, 1), 8), c.x as [number, number, number, number]);
          const f = tf.tensor4d(values(c.f.reduce((p, q) => p * q, 1), 9), c.f as [number, number, number, number]);
          const bias = tf.tensor1d(values(c.f[3]!, 10));
          const run = () => fusedWith == null
            ? tf.conv2d(x, f, c.strides ?? 1, c.pad, 'NHWC', c.dilations ?? 1)
            : tf.fused.conv2d({ x, filter: f, strides: c.strides ?? 1, pad: c.pad, dilations: c.dilations ?? 1, bias, activation: fusedWith });
          const want = run();
          const expected = want.dataSync().slice();
          await enableRelaxedSimdKernels();
          const before = tf.memory().numTensors;
          const bytesBefore = tf.memory().numBytes;
          const got = run();
          expect(got.shape).toEqual(want.shape);
          const actual = got.dataSync().slice();
          got.dispose();
          expect(tf.memory().numTensors).toBe(before);
          expect(tf.memory().numBytes).toBe(bytesBefore);
          disableRelaxedSimdKernels();
          let maxErr = 0;
          for (let i = 0; i < expected.length; i++) maxErr = Math.max(maxErr, Math.abs(expected[i]! - actual[i]!));
          expect(Number.isFinite(maxErr)).toBe(true);
          expect(maxErr).toBeLessThanOrEqual(1e-5 * Math.sqrt(c.f[0]! * c.f[1]! * c.f[2]!));
          tf.dispose([x, f, bias, want]);
        });
      }
    }

    const FILTER_GRADS: ConvCase[] = [
      { label: '3x3 same, 16 -> 24', x: [2, 8, 8, 16], f: [3, 3, 16, 24], pad: 'same' },
      { label: '3x3 valid, width 10', x: [1, 10, 10, 8], f: [3, 3, 8, 16], pad: 'valid' },
      { label: 'inC 7 (ragged tile), 5x5 same', x: [1, 8, 8, 7], f: [5, 5, 7, 8], pad: 'same' },
      { label: 'falls back: stride 2', x: [1, 16, 16, 8], f: [3, 3, 8, 16], strides: 2, pad: 'same' },
      { label: 'falls back: width 6', x: [1, 6, 6, 8], f: [3, 3, 8, 16], pad: 'same' },
    ];
    for (const c of FILTER_GRADS) {
      it(`conv2d filter gradient matches the library's kernel: ${c.label}`, async () => {
        enableWasmTraining();
        const x = tf.tensor4d(values(c.x.reduce((p, q) => p * q, 1), 11), c.x as [number, number, number, number]);
        const f = tf.tensor4d(values(c.f.reduce((p, q) => p * q, 1), 12), c.f as [number, number, number, number]);
        const g = tf.grad((ff: tf.Tensor) => tf.sum(tf.square(tf.conv2d(x, ff as tf.Tensor4D, c.strides ?? 1, c.pad))));
        const want = g(f);
        const expected = want.dataSync().slice();
        await enableRelaxedSimdKernels();
        expect(tf.getKernel(tf.Conv2DBackpropFilter, 'wasm')).toBeDefined();
        const got = g(f);
        const actual = got.dataSync().slice();
        disableRelaxedSimdKernels();
        let scale = 0;
        let maxErr = 0;
        for (let i = 0; i < expected.length; i++) {
          scale = Math.max(scale, Math.abs(expected[i]!));
          maxErr = Math.max(maxErr, Math.abs(expected[i]! - actual[i]!));
        }
        expect(Number.isFinite(maxErr)).toBe(true);
        expect(maxErr).toBeLessThanOrEqual(1e-5 * scale);
        tf.dispose([x, f, want, got]);
      });
    }

    it('gradients through matMul use the kernels and match', async () => {
      const x = tf.tensor2d(values(300 * 64, 3), [300, 64]);
      const w = tf.tensor2d(values(64 * 32, 4), [64, 32]);
      const f = (xx: tf.Tensor, ww: tf.Tensor) => tf.sum(tf.square(tf.matMul(xx, ww)));
      const g = tf.grads(f);
      const [rx, rw] = g([x, w]);
      const want = [rx!.dataSync().slice(), rw!.dataSync().slice()];
      await enableRelaxedSimdKernels();
      const [ox, ow] = g([x, w]);
      const got = [ox!.dataSync(), ow!.dataSync()];
      disableRelaxedSimdKernels();
      for (let j = 0; j < 2; j++) {
        let scale = 0;
        let maxErr = 0;
        for (let i = 0; i < want[j]!.length; i++) {
          scale = Math.max(scale, Math.abs(want[j]![i]!));
          maxErr = Math.max(maxErr, Math.abs(want[j]![i]! - got[j]![i]!));
        }
        expect(maxErr).toBeLessThanOrEqual(1e-5 * scale);
      }
      tf.dispose([x, w, rx!, rw!, ox!, ow!]);
    });
  });

  describe.skipIf(supported)('without relaxed SIMD (Node 20)', () => {
    it('enableRelaxedSimdKernels changes nothing and says so', async () => {
      await tf.setBackend('wasm');
      const own = tf.getKernel(tf.BatchMatMul, 'wasm')!.kernelFunc;
      expect(await enableRelaxedSimdKernels()).toBe(false);
      expect(isRelaxedSimdEnabled()).toBe(false);
      expect(tf.getKernel(tf.BatchMatMul, 'wasm')!.kernelFunc).toBe(own);
    });
  });
});
