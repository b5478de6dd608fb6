/**
 * Up-front memory estimates of a {@link VNCA}'s big calls, against the backends whose memory
 * is known to be limited: the wasm backend's heap has 32-bit addresses (4 GiB; tfjs-backend-wasm
 * 4.22 stops at 4 GiB less 64 KiB), and a call that runs past it kills the backend for the
 * rest of the process (`Aborted()`, `memory access out of bounds`). Calls whose work splits
 * into independent samples (sample, decode, evaluate's importance samples) run in chunks that
 * fit; a training step, which cannot, is refused with a {@link VncaError} before anything is
 * allocated. Other backends (cpu, webgl, webgpu) have no known limit here and are left alone.
 *
 * The estimates were measured on wasm with `tf.profile` (peak bytes per sample, the same at
 * batch 1 and 4):
 * - decoding (forward only): paper model 34 MiB a sample (8,850 floats per cell of the 32x32
 *   grid), mnist-small's sizes (zSize 64) 5 MiB, the non-doubling MNIST model 2.4 MiB;
 *   estimated as 36 x max(zSize, hidden) floats per final cell.
 * - a training step without checkpointing keeps every step's activations: paper model
 *   165 MiB a sample (3,955 floats per cell-step), zSize 64: 752, non-doubling: 910;
 *   estimated as 16 x max(zSize, hidden) floats per cell-step.
 * - with checkpointing: 26 MiB a sample for the paper model (625 floats per cell-step),
 *   estimated as 3 x zSize floats per cell-step, plus one recomputed chunk of
 *   `checkpointCells` (8192) cells.
 * @module
 */
import * as tf from '@tensorflow/tfjs-core';
import type { VNCAConfig } from './config.js';

/** Bytes of the wasm backend's heap. */
const WASM_HEAP_BYTES = 2 ** 32;
/** Kept free for what the estimates leave out (kernel scratch space, the encoder, Adam's temporaries). */
const RESERVE_BYTES = 512 * 2 ** 20;
/** Cells of one recomputed chunk of a checkpointed backward pass (grow.ts's default `checkpointCells`). */
const CHECKPOINT_CELLS = 8192;
/** `'auto'` checkpoints when the rollout's activations would exceed this (grow.ts's default budget). */
const CHECKPOINT_BUDGET = 2 ** 30;

let limitOverride: number | null = null;

/**
 * Runs `f` as if the backend's memory were limited to `bytes` (for tests of the limits without
 * allocating gigabytes). @internal
 */
export function withMemoryLimit<T>(bytes: number, f: () => T): T {
  const before = limitOverride;
  limitOverride = bytes;
  try {
    return f();
  } finally {
    limitOverride = before;
  }
}

/** The memory limit of the current backend in bytes, or null where none is known. @internal */
export function memoryLimit(): number | null {
  if (limitOverride !== null) return limitOverride;
  return tf.getBackend() === 'wasm' ? WASM_HEAP_BYTES : null;
}

/**
 * Bytes new tensors may still take on the current backend: the limit less what tensors hold
 * now and a reserve; Infinity where no limit is known. @internal
 */
export function memoryHeadroom(): number {
  const limit = memoryLimit();
  if (limit === null) return Infinity;
  return limit - tf.memory().numBytes - (limitOverride === null ? RESERVE_BYTES : 0);
}

/** A byte count for messages: `3.2 GiB`, `140 MiB`. @internal */
export function formatBytes(bytes: number): string {
  if (!Number.isFinite(bytes)) return `${bytes} bytes`;
  if (bytes >= 2 ** 30) return `${(bytes / 2 ** 30).toFixed(1)} GiB`;
  if (bytes >= 2 ** 20) return `${(bytes / 2 ** 20).toFixed(1)} MiB`;
  return `${Math.max(0, Math.round(bytes / 1024))} KiB`;
}

/** The backend's limit, for messages: `the wasm backend's 4 GiB heap`. */
export function describeLimit(): string {
  const limit = memoryLimit();
  return limitOverride === null && tf.getBackend() === 'wasm' ? `the wasm backend's ${formatBytes(limit!)} heap` : `a memory limit of ${formatBytes(limit ?? Infinity)}`;
}

/** Cell updates of one sample's rollout: every step of every grid size. `steps`: a fixed model's length. @internal */
export function cellStepsPerSample(c: VNCAConfig, steps?: number): number {
  if (c.growth === 'fixed') return (steps ?? c.stepsRange[1]) * c.imageSize * c.imageSize;
  const seed = c.imageSize / 2 ** c.nDoublings;
  let cells = 0;
  for (let d = 0; d <= c.nDoublings; d++) cells += c.stepsPerDoubling * (seed * 2 ** d) ** 2;
  return cells;
}

/** Estimated peak bytes of decoding one sample (forward only, no gradient). @internal */
export function decodeBytesPerSample(c: VNCAConfig): number {
  return 4 * 36 * Math.max(c.zSize, c.hidden) * c.imageSize * c.imageSize;
}

/**
 * Estimated bytes of one training step of `batch` images: `perSample` for each image and
 * `fixed` once (the recomputed chunk of a checkpointed backward pass), for the config's
 * `checkpoint` (`'auto'` decides by the whole batch, as grow.ts does). @internal
 */
export function trainStepBytes(c: VNCAConfig, steps?: number, batch = 1): { perSample: number; fixed: number; checkpointed: boolean } {
  const width = Math.max(c.zSize, c.hidden);
  const cellSteps = cellStepsPerSample(c, steps);
  const plain = { perSample: 4 * 16 * width * cellSteps, fixed: 0, checkpointed: false };
  const segment = typeof c.checkpoint === 'number' ? c.checkpoint : 1;
  const checkpointed = { perSample: 4 * 3 * c.zSize * cellSteps, fixed: 4 * 16 * width * CHECKPOINT_CELLS * segment, checkpointed: true };
  if (c.checkpoint === false) return plain;
  // 'auto' runs the whole batch unchecked while its activations stay within the budget.
  if (c.checkpoint === 'auto' && batch * plain.perSample <= CHECKPOINT_BUDGET) return plain;
  return checkpointed;
}

/**
 * How many samples to decode at once so that a decode of `wanted` fits beside `keep` bytes
 * that must stay (e.g. the whole output): `wanted` where no limit is known or all fit, else
 * fewer, at least 0 (0: not even one sample fits). @internal
 */
export function decodeChunk(c: VNCAConfig, wanted: number, keep = 0): number {
  const room = memoryHeadroom() - keep;
  if (room === Infinity) return wanted;
  return Math.max(0, Math.min(wanted, Math.floor(room / decodeBytesPerSample(c))));
}
