/**
 * The relaxed-SIMD GEMM module and how to call it: tile sizes, the slice of the wasm
 * backend it reads, instantiation on the backend's memory, `gemm` and B-panel packing.
 * The kernels in relaxedMatMul.ts are built on it.
 * @module
 */
import type * as tf from '@tensorflow/tfjs-core';
import { GEMM_WASM_BASE64 } from './gemmWasm.js';

/** Rows of a micro-tile (the generated module's MR) and columns (NR). */
export const MR = 6;
export const NR = 8;
/** Micro-tiles of A per call: MR * 16 = 96 rows, about 96 KB of A at K = 256 (L2). */
export const MC_PANELS = 16;
/** Depth per call: B panel 256 x 8 in L1; 128 for transposed A (1 KB strides). */
export const KC_ROWS = 256;
export const KC_COLS = 128;
/** Below this many multiply-adds the backend's kernel is as good (and has no set-up). */
export const MIN_MACS = 1 << 16;
/** Fewer input channels than this: the backend's convolution. */
export const MIN_CONV_CHANNELS = 16;

/** The slice of tfjs-backend-wasm's BackendWasm this file uses. */
export interface WasmBackendLike extends tf.KernelBackend {
  wasm: {
    asm?: { memory?: WebAssembly.Memory };
    wasmMemory?: WebAssembly.Memory;
    _malloc(bytes: number): number;
    _free(ptr: number): void;
  };
  dataIdMap: { get(dataId: tf.DataId): { memoryOffset: number } };
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
}

export type GemmRows = (
  tbl: number, aoff: number, pb: number, bs: number, pc: number, ldc: number,
  mPanels: number, nPanels: number, kc: number, acc: number,
) => void;
export type GemmCols = (
  pa: number, ks: number, pb: number, bs: number, pc: number, ldc: number,
  mPanels: number, nPanels: number, kc: number, acc: number,
) => void;

export interface Kernels {
  memory: WebAssembly.Memory;
  rows: GemmRows;
  cols: GemmCols;
}

let moduleBytes: Uint8Array<ArrayBuffer> | undefined;
export function gemmBytes(): Uint8Array<ArrayBuffer> {
  if (moduleBytes == null) {
    const text = atob(GEMM_WASM_BASE64);
    moduleBytes = new Uint8Array(text.length);
    for (let i = 0; i < text.length; i++) moduleBytes[i] = text.charCodeAt(i);
  }
  return moduleBytes;
}

/**
 * Whether this JavaScript runtime runs relaxed SIMD: it validates the kernels' module.
 *
 * @returns `true` on Node 22+, Chromium 114+ and other runtimes with relaxed SIMD.
 * @category Backends
 */
export function isRelaxedSimdSupported(): boolean {
  return typeof WebAssembly === 'object' && WebAssembly.validate(gemmBytes());
}

let compiled: WebAssembly.Module | undefined;

/** Compiles the GEMM module (once); {@link kernelsFor} finds nothing before. */
export async function compileGemm(): Promise<void> {
  compiled ??= await WebAssembly.compile(gemmBytes());
}

let instance: Kernels | undefined;

export function memoryOf(backend: WasmBackendLike): WebAssembly.Memory | undefined {
  return backend.wasm.asm?.memory ?? backend.wasm.wasmMemory;
}

/** Our module, instantiated on the backend's memory (once; again if it changes). */
export function kernelsFor(backend: WasmBackendLike): Kernels | undefined {
  const memory = memoryOf(backend);
  if (compiled == null || memory == null) return undefined;
  if (instance?.memory !== memory) {
    let exports: WebAssembly.Exports;
    try {
      // 3.3 KB: under the 4 KB Chromium allows synchronously on the main thread.
      exports = new WebAssembly.Instance(compiled, { env: { memory } }).exports;
    } catch {
      // A shared memory (the backend's multi-threaded build) does not link with our
      // unshared import: that build keeps the backend's own kernels.
      return undefined;
    }
    instance = { memory, rows: exports.gemm_rows_fma as GemmRows, cols: exports.gemm_cols_fma as GemmCols };
  }
  return instance;
}

/**
 * C = A B for one batch entry, all addresses in bytes in the backend's memory.
 * A is [M, K] (or [K, M] when transposeA), B [K, N] (or packed [N/8][K][8] when bs = 32
 * and panelStride is K * 32), C [M, N]. M >= MR, N % 8 == 0, K % 4 == 0.
 */
export function gemm(
  k: Kernels, backend: WasmBackendLike,
  pa: number, transposeA: boolean, pb: number, bs: number, panelStride: number,
  pc: number, M: number, N: number, K: number,
): void {
  const ldc = N * 4;
  const full = Math.floor(M / MR);
  const tail = M - full * MR;
  const nPanels = N / NR;
  // The last MR rows (overlapping the full tiles when M % MR != 0) go to a scratch tile
  // and their new rows are copied out: every read stays inside A.
  const scratch = tail > 0 ? backend.wasm._malloc(MR * ldc + 64) : 0;
  const tileC = (scratch + 15) & ~15;
  // For a packed B (bs = 32) every panel is its own call: panels are panelStride apart.
  const panelCalls = bs === 32 ? nPanels : 1;
  const panelsPerCall = bs === 32 ? 1 : nPanels;
  try {
    if (!transposeA) {
      const tbl = backend.wasm._malloc((full + 1) * MR * 4);
      try {
        const t = new Int32Array(k.memory.buffer, tbl, (full + 1) * MR);
        for (let r = 0; r < full * MR; r++) t[r] = pa + r * K * 4;
        for (let r = 0; r < MR; r++) t[full * MR + r] = pa + (M - MR + r) * K * 4;
        for (let ip = 0; ip <= full; ip += MC_PANELS) {
          const mp = Math.min(MC_PANELS, full - ip);
          for (let k0 = 0; k0 < K; k0 += KC_ROWS) {
            const kc = Math.min(KC_ROWS, K - k0);
            for (let j = 0; j < panelCalls; j++) {
              const b = pb + j * panelStride + k0 * bs;
              if (mp > 0) k.rows(tbl + ip * MR * 4, k0 * 4, b, bs, pc + ip * MR * ldc + j * 32, ldc, mp, panelsPerCall, kc, k0 > 0 ? 1 : 0);
              if (tail > 0 && ip + MC_PANELS > full) {
                k.rows(tbl + full * MR * 4, k0 * 4, b, bs, tileC + j * 32, ldc, 1, panelsPerCall, kc, k0 > 0 ? 1 : 0);
              }
            }
          }
        }
      } finally {
        backend.wasm._free(tbl);
      }
    } else {
      // A is stored [K, M]: tile ip reads columns ip*MR.. at a stride of M floats.
      for (let k0 = 0; k0 < K; k0 += KC_COLS) {
        const kc = Math.min(KC_COLS, K - k0);
        for (let j = 0; j < panelCalls; j++) {
          const b = pb + j * panelStride + k0 * bs;
          const a = pa + k0 * M * 4;
          k.cols(a, M * 4, b, bs, pc + j * 32, ldc, full, panelsPerCall, kc, k0 > 0 ? 1 : 0);
          if (tail > 0) k.cols(a + (M - MR) * 4, M * 4, b, bs, tileC + j * 32, ldc, 1, panelsPerCall, kc, k0 > 0 ? 1 : 0);
        }
      }
    }
    if (tail > 0) {
      const f = new Float32Array(k.memory.buffer);
      const from = tileC / 4 + (MR - tail) * N;
      f.copyWithin(pc / 4 + full * MR * N, from, from + tail * N);
    }
  } finally {
    if (scratch) backend.wasm._free(scratch);
  }
}

/** Packs B^T (B stored [N, K]) into 8-column panels [N/8][K][8] at dst. */
export function packTransposedB(memory: WebAssembly.Memory, pb: number, dst: number, N: number, K: number): void {
  const f = new Float32Array(memory.buffer);
  const src = pb / 4;
  let d = dst / 4;
  for (let jp = 0; jp < N; jp += NR) {
    for (let kk = 0; kk < K; kk++) {
      for (let n = 0; n < NR; n++) f[d++] = f[src + (jp + n) * K + kk]!;
    }
  }
}
