/**
 * `BatchMatMul` for the `'wasm'` backend with our own relaxed-SIMD GEMM kernels
 * (`f32x4.relaxed_madd`, a hardware FMA), run in the backend's own memory: the kernels
 * import the backend's `WebAssembly.Memory` and read the input tensors and write the
 * output tensor where they lie, with no copies. docs/performance.md ("Relaxed SIMD") has
 * their speed against tfjs-backend-wasm 4.22's XNNPACK.
 *
 * {@link enableRelaxedSimdKernels} replaces the backend's `BatchMatMul`, `_FusedMatMul`,
 * `Conv2D` and `FusedConv2D` kernels (bias and activation: linear, relu, relu6, elu; the
 * convolutions NHWC, as implicit GEMMs, at least 16 input channels) with ones
 * that take the products they support (float32; `N` a multiple of 8; `K` a multiple of
 * 4; `M` at least 6; the second operand unbatched or batched like the first; large
 * enough to be worth it) and hands every other call to the backend's own kernel.
 * Nothing changes where the runtime lacks relaxed SIMD (`WebAssembly.validate` refuses
 * the module: Node 20 without `--experimental-wasm-relaxed-simd`, browsers before
 * Chromium 114). This file never imports the backend: it reaches it through the
 * kernel registry and the backend object the engine passes to the kernel.
 * @module
 */
import * as tf from '@tensorflow/tfjs-core';
import {
  compileGemm, gemm, isRelaxedSimdSupported, kernelsFor, packTransposedB,
  KC_ROWS, MC_PANELS, MIN_CONV_CHANNELS, MIN_MACS, MR, NR, type WasmBackendLike,
} from './gemm.js';

export { isRelaxedSimdSupported } from './gemm.js';

const WASM = 'wasm';
/** The backend's own kernels we replaced, by name; empty when not enabled. */
const originals = new Map<string, tf.KernelConfig>();

/** Our BatchMatMul, or undefined where the backend's own kernel should run. */
function relaxedBatchMatMul(args: {
  inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap;
}): tf.TensorInfo | undefined {
  const backend = args.backend as WasmBackendLike;
  const { a, b } = args.inputs as { a: tf.TensorInfo; b: tf.TensorInfo };
  const transposeA = Boolean(args.attrs?.transposeA);
  const transposeB = Boolean(args.attrs?.transposeB);
  if (a.dtype !== 'float32' || b.dtype !== 'float32') return undefined;
  const ar = a.shape.length;
  const br = b.shape.length;
  if (ar < 2 || br < 2) return undefined;
  const M = transposeA ? a.shape[ar - 1]! : a.shape[ar - 2]!;
  const K = transposeA ? a.shape[ar - 2]! : a.shape[ar - 1]!;
  const KB = transposeB ? b.shape[br - 1]! : b.shape[br - 2]!;
  const N = transposeB ? b.shape[br - 2]! : b.shape[br - 1]!;
  const outerA = a.shape.slice(0, -2);
  const outerB = b.shape.slice(0, -2);
  const batchA = outerA.reduce((p, q) => p * q, 1);
  const batchB = outerB.reduce((p, q) => p * q, 1);
  if (K !== KB || N % NR !== 0 || K % 4 !== 0 || M < MR || K === 0) return undefined;
  if (M * N * K < MIN_MACS) return undefined;
  // b unbatched (all outer dims 1, at most a's rank) or batched exactly like a.
  const bShared = batchB === 1 && br <= ar;
  const sameBatch = ar === br && outerA.every((d, i) => d === outerB[i]);
  if (!bShared && !sameBatch) return undefined;
  const k = kernelsFor(backend);
  if (k == null) return undefined;

  const out = backend.makeOutput([...outerA, M, N], 'float32');
  const pa = backend.dataIdMap.get(a.dataId).memoryOffset;
  const pb = backend.dataIdMap.get(b.dataId).memoryOffset;
  const pc = backend.dataIdMap.get(out.dataId).memoryOffset;
  let packed = 0;
  try {
    for (let i = 0; i < batchA; i++) {
      const bBatch = bShared ? 0 : i;
      let bAddr = pb + bBatch * K * N * 4;
      let bs = N * 4;
      let panelStride = 0;
      if (transposeB) {
        if (packed === 0) packed = backend.wasm._malloc(K * N * 4 + 16);
        const dst = (packed + 15) & ~15;
        if (i === 0 || !bShared) packTransposedB(k.memory, bAddr, dst, N, K);
        bAddr = dst;
        bs = 32;
        panelStride = K * 32;
      }
      gemm(k, backend, pa + i * M * K * 4, transposeA, bAddr, bs, panelStride, pc + i * M * N * 4, M, N, K);
    }
  } finally {
    if (packed) backend.wasm._free(packed);
  }
  return out;
}

/**
 * `Conv2DBackpropFilter` (NHWC, stride 1): dW[tap] = X_tap^T dY for each filter tap, where
 * X_tap holds the input pixels the tap reads. On a zero-padded copy of x, the pixels one
 * output row reads for one tap are consecutive, so each (tap, output row) is one call of
 * the transposed-A kernel with K = outWidth, accumulating into dW[tap]. Undefined for the
 * backend's kernel (strides, outWidth not a multiple of 4, outC not a multiple of 8, fewer
 * than 6 input channels).
 */
function relaxedConv2DBackpropFilter(args: {
  inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap;
}): tf.TensorInfo | undefined {
  const backend = args.backend as WasmBackendLike;
  const { x, dy } = args.inputs as { x: tf.TensorInfo; dy: tf.TensorInfo };
  const attrs = args.attrs as unknown as tf.Conv2DBackpropFilterAttrs;
  if (x.dtype !== 'float32' || dy.dtype !== 'float32' || x.shape.length !== 4 || dy.shape.length !== 4) return undefined;
  if ((attrs.dataFormat ?? 'NHWC') !== 'NHWC') return undefined;
  const info = tf.backend_util.computeConv2DInfo(
    x.shape as [number, number, number, number], attrs.filterShape, attrs.strides, 1, attrs.pad,
    attrs.dimRoundingMode, false, 'channelsLast');
  const { batchSize, inHeight, inWidth, inChannels: CI, outHeight: oh, outWidth: ow, outChannels: CO } = info;
  const { filterHeight: fh, filterWidth: fw, strideHeight, strideWidth } = info;
  if (strideHeight !== 1 || strideWidth !== 1) return undefined;
  if (CO % NR !== 0 || ow % 4 !== 0 || ow === 0 || CI < MR) return undefined;
  if (batchSize * oh * ow * CI * CO * fh * fw < MIN_MACS) return undefined;
  const k = kernelsFor(backend);
  if (k == null) return undefined;

  const { top, left } = info.padInfo;
  const hp = fh + oh - 1;
  const wp = fw + ow - 1;
  const out = backend.makeOutput([fh, fw, CI, CO], 'float32');
  const padded = backend.wasm._malloc(batchSize * hp * wp * CI * 4);
  const full = Math.floor(CI / MR);
  const tail = CI - full * MR;
  const ldc = CO * 4;
  const scratch = tail > 0 ? backend.wasm._malloc(fh * fw * MR * ldc + 64) : 0;
  try {
    const px = backend.dataIdMap.get(x.dataId).memoryOffset / 4;
    const pdy = backend.dataIdMap.get(dy.dataId).memoryOffset;
    const pc = backend.dataIdMap.get(out.dataId).memoryOffset;
    const f = new Float32Array(k.memory.buffer);
    // Exactly the rows and columns the taps read (as the library's own filter gradient).
    const pp = padded / 4;
    f.fill(0, pp, pp + batchSize * hp * wp * CI);
    for (let b = 0; b < batchSize; b++) {
      for (let yp = 0; yp < hp; yp++) {
        const iy = yp - top;
        if (iy < 0 || iy >= inHeight) continue;
        const x0 = Math.max(0, left);
        const x1 = Math.min(wp, inWidth + left);
        if (x1 <= x0) continue;
        const src = px + ((b * inHeight + iy) * inWidth + (x0 - left)) * CI;
        f.copyWithin(pp + ((b * hp + yp) * wp + x0) * CI, src, src + (x1 - x0) * CI);
      }
    }
    const tileBase = (scratch + 15) & ~15;
    const nPanels = CO / NR;
    for (let tap = 0; tap < fh * fw; tap++) {
      const ky = Math.floor(tap / fw);
      const kx = tap - ky * fw;
      const c = pc + tap * CI * ldc;
      const tileC = tileBase + tap * MR * ldc;
      let first = 1;
      for (let b = 0; b < batchSize; b++) {
        for (let oy = 0; oy < oh; oy++) {
          const a = padded + ((b * hp + oy + ky) * wp + kx) * CI * 4;
          const bRow = pdy + ((b * oh + oy) * ow) * CO * 4;
          const acc = first ? 0 : 1;
          if (full > 0) k.cols(a, CI * 4, bRow, CO * 4, c, ldc, full, nPanels, ow, acc);
          if (tail > 0) k.cols(a + (CI - MR) * 4, CI * 4, bRow, CO * 4, tileC, ldc, 1, nPanels, ow, acc);
          first = 0;
        }
      }
      if (tail > 0) {
        const g = new Float32Array(k.memory.buffer);
        const from = tileC / 4 + (MR - tail) * CO;
        g.copyWithin(c / 4 + full * MR * CO, from, from + tail * CO);
      }
    }
  } finally {
    backend.wasm._free(padded);
    if (scratch) backend.wasm._free(scratch);
  }
  return out;
}

/** The activations the fused matMul finishes with the backend's own kernel. */
const ACTIVATION_KERNELS: Record<string, string | null> = { linear: null, relu: tf.Relu, elu: tf.Elu, relu6: tf.Relu6 };

/**
 * `_FusedMatMul` (`tf.fused.matMul`, the library's 1x1 convolutions forward): our GEMM,
 * then the bias and the activation with the backend's own `Add` and activation kernels
 * (one pass each over the output), or undefined for the backend's fused kernel.
 */
function relaxedFusedMatMul(args: {
  inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap;
}): tf.TensorInfo | undefined {
  return fused(args, relaxedBatchMatMul);
}

/** `FusedConv2D`: {@link relaxedConv2D}, then bias and activation as for the matMul. */
function relaxedFusedConv2D(args: {
  inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap;
}): tf.TensorInfo | undefined {
  return fused(args, relaxedConv2D);
}

function fused(
  args: { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap },
  core: (a: { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap }) => tf.TensorInfo | undefined,
): tf.TensorInfo | undefined {
  const backend = args.backend as WasmBackendLike;
  const { bias, preluActivationWeights } = args.inputs as { bias?: tf.TensorInfo; preluActivationWeights?: tf.TensorInfo };
  const activation = String(args.attrs?.activation ?? 'linear');
  if (preluActivationWeights != null || !(activation in ACTIVATION_KERNELS)) return undefined;
  if (bias != null && (bias.shape.length !== 1 || bias.dtype !== 'float32')) return undefined;
  let out = core(args);
  if (out == null) return undefined;
  const then = (kernelName: string, inputs: tf.NamedTensorInfoMap): void => {
    const next = tf.getKernel(kernelName, WASM)!.kernelFunc({ inputs, backend, attrs: {} }) as tf.TensorInfo;
    backend.disposeData(out!.dataId);
    out = next;
  };
  if (bias != null) then(tf.Add, { a: out, b: bias });
  const act = ACTIVATION_KERNELS[activation];
  if (act != null) then(act, { x: out });
  return out;
}

/**
 * `Conv2D` / `FusedConv2D` (NHWC, any stride, dilation and padding) as an implicit GEMM:
 * C[rows = batch * outH * outW, outC] = sum over the filter's taps of
 * X_tap[rows, inC] W_tap[inC, outC], where row r of X_tap is the input pixel that tap
 * reads for output pixel r (a zero row outside the image). One row-address table per tap,
 * no im2col copy. Undefined for the backend's own kernel (inC not a multiple of 4, outC
 * not a multiple of 8, fewer than 6 output pixels, small convolutions, NCHW).
 */
function relaxedConv2D(args: {
  inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap;
}): tf.TensorInfo | undefined {
  const backend = args.backend as WasmBackendLike;
  const { x, filter } = args.inputs as { x: tf.TensorInfo; filter: tf.TensorInfo };
  const attrs = (args.attrs ?? {}) as unknown as {
    strides: number | [number, number]; pad: 'same' | 'valid' | number | tf.backend_util.ExplicitPadding;
    dataFormat?: 'NHWC' | 'NCHW'; dilations?: number | [number, number]; dimRoundingMode?: 'floor' | 'round' | 'ceil';
  };
  if (x.dtype !== 'float32' || filter.dtype !== 'float32' || x.shape.length !== 4 || filter.shape.length !== 4) return undefined;
  if ((attrs.dataFormat ?? 'NHWC') !== 'NHWC') return undefined;
  const info = tf.backend_util.computeConv2DInfo(
    x.shape as [number, number, number, number], filter.shape as [number, number, number, number],
    attrs.strides, attrs.dilations ?? 1, attrs.pad, attrs.dimRoundingMode, false, 'channelsLast');
  const { batchSize, inHeight, inWidth, inChannels, outHeight, outWidth, outChannels } = info;
  const { filterHeight, filterWidth, strideHeight, strideWidth, dilationHeight, dilationWidth } = info;
  const M = batchSize * outHeight * outWidth;
  const K = inChannels;
  const N = outChannels;
  const taps = filterHeight * filterWidth;
  // Few input channels (the library's filter gradient: a forward conv over the batch, 4
  // channels and 1024 taps) would reload the output tile once per 4 steps of k.
  if (N % NR !== 0 || K % 4 !== 0 || K < MIN_CONV_CHANNELS || M < MR) return undefined;
  if (M * N * K * taps < MIN_MACS) return undefined;
  const k = kernelsFor(backend);
  if (k == null) return undefined;

  const out = backend.makeOutput([batchSize, outHeight, outWidth, N], 'float32');
  const px = backend.dataIdMap.get(x.dataId).memoryOffset;
  const pf = backend.dataIdMap.get(filter.dataId).memoryOffset;
  const pc = backend.dataIdMap.get(out.dataId).memoryOffset;
  const full = Math.floor(M / MR);
  const tail = M - full * MR;
  const rowsPerTable = (full + 1) * MR;
  const ldc = N * 4;
  const zero = backend.wasm._malloc(K * 4 + 16);
  const tables = backend.wasm._malloc(taps * rowsPerTable * 4);
  const scratch = tail > 0 ? backend.wasm._malloc(MR * ldc + 64) : 0;
  try {
    const f = new Float32Array(k.memory.buffer);
    f.fill(0, zero / 4, zero / 4 + K);
    const t = new Int32Array(k.memory.buffer, tables, taps * rowsPerTable);
    const top = info.padInfo.top;
    const left = info.padInfo.left;
    for (let ky = 0; ky < filterHeight; ky++) {
      for (let kx = 0; kx < filterWidth; kx++) {
        const base = (ky * filterWidth + kx) * rowsPerTable;
        const rowAddress = (r: number): number => {
          const b = Math.floor(r / (outHeight * outWidth));
          const rem = r - b * outHeight * outWidth;
          const oy = Math.floor(rem / outWidth);
          const ox = rem - oy * outWidth;
          const iy = oy * strideHeight + ky * dilationHeight - top;
          const ix = ox * strideWidth + kx * dilationWidth - left;
          if (iy < 0 || iy >= inHeight || ix < 0 || ix >= inWidth) return zero;
          return px + ((b * inHeight + iy) * inWidth + ix) * K * 4;
        };
        for (let r = 0; r < full * MR; r++) t[base + r] = rowAddress(r);
        for (let r = 0; r < MR; r++) t[base + full * MR + r] = rowAddress(M - MR + r);
      }
    }
    const tileC = (scratch + 15) & ~15;
    const nPanels = N / NR;
    for (let ip = 0; ip <= full; ip += MC_PANELS) {
      const mp = Math.min(MC_PANELS, full - ip);
      const withTail = tail > 0 && ip + MC_PANELS > full;
      for (let tap = 0; tap < taps; tap++) {
        const tbl = tables + tap * rowsPerTable * 4;
        for (let k0 = 0; k0 < K; k0 += KC_ROWS) {
          const kc = Math.min(KC_ROWS, K - k0);
          const b = pf + (tap * K + k0) * N * 4;
          const acc = tap > 0 || k0 > 0 ? 1 : 0;
          if (mp > 0) k.rows(tbl + ip * MR * 4, k0 * 4, b, N * 4, pc + ip * MR * ldc, ldc, mp, nPanels, kc, acc);
          if (withTail) k.rows(tbl + full * MR * 4, k0 * 4, b, N * 4, tileC, ldc, 1, nPanels, kc, acc);
        }
      }
    }
    if (tail > 0) {
      const g = new Float32Array(k.memory.buffer);
      const from = tileC / 4 + (MR - tail) * N;
      g.copyWithin(pc / 4 + full * MR * N, from, from + tail * N);
    }
  } finally {
    backend.wasm._free(zero);
    backend.wasm._free(tables);
    if (scratch) backend.wasm._free(scratch);
  }
  return out;
}

/**
 * Makes the `'wasm'` backend run large float32 matMuls and convolutions (`BatchMatMul`,
 * `_FusedMatMul`, `Conv2D`, `FusedConv2D`: `tf.matMul`, `tf.conv2d`, their fused forms and
 * the gradients the library builds from them) with relaxed-SIMD FMA kernels,
 * where the runtime has relaxed SIMD. Other calls, and every other kernel, keep the
 * backend's own path. Call it after `tf.setBackend('wasm')` (or once the backend is
 * registered); calling it again is harmless; {@link disableRelaxedSimdKernels} undoes it.
 *
 * @returns `true` if the kernels are now in use, `false` if the runtime lacks relaxed
 *   SIMD or the `'wasm'` backend is not registered (nothing changed).
 * @example
 * ```ts
 * await tf.setBackend('wasm');
 * await enableRelaxedSimdKernels(); // false on Node 20: today's path stays
 * ```
 * @category Backends
 */
export async function enableRelaxedSimdKernels(): Promise<boolean> {
  if (originals.size > 0) return true;
  if (!isRelaxedSimdSupported()) return false;
  const replaced: [string, typeof relaxedBatchMatMul][] = [
    [tf.BatchMatMul, relaxedBatchMatMul],
    [tf._FusedMatMul, relaxedFusedMatMul],
    [tf.Conv2D, relaxedConv2D],
    [tf.FusedConv2D, relaxedFusedConv2D],
  ];
  if (replaced.some(([name]) => tf.getKernel(name, WASM) == null)) return false;
  // The backend has no Conv2DBackpropFilter: vnca's enableWasmTraining() provides it.
  // Replaced when present (call enableWasmTraining() first), left out otherwise.
  if (tf.getKernel(tf.Conv2DBackpropFilter, WASM) != null) {
    replaced.push([tf.Conv2DBackpropFilter, relaxedConv2DBackpropFilter]);
  }
  await compileGemm();
  for (const [kernelName, ours] of replaced) {
    const own = tf.getKernel(kernelName, WASM)!;
    originals.set(kernelName, own);
    const fallback = own.kernelFunc;
    tf.unregisterKernel(kernelName, WASM);
    tf.registerKernel({
      kernelName,
      backendName: WASM,
      setupFunc: own.setupFunc,
      disposeFunc: own.disposeFunc,
      kernelFunc: (args) => ours(args) ?? fallback(args),
    });
  }
  return true;
}

/**
 * Puts the `'wasm'` backend's own `BatchMatMul` back after {@link enableRelaxedSimdKernels}.
 * @category Backends
 */
export function disableRelaxedSimdKernels(): void {
  for (const [kernelName, own] of originals) {
    tf.unregisterKernel(kernelName, WASM);
    tf.registerKernel(own);
  }
  originals.clear();
}

/**
 * Whether {@link enableRelaxedSimdKernels} is in effect.
 * @category Backends
 */
export function isRelaxedSimdEnabled(): boolean {
  return originals.size > 0;
}
