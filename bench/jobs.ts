/**
 * The jobs `bench/run.ts` hands to a fresh process (`bench/worker.ts` for tfjs,
 * `bench/peer/vnca_peer.py` for PyTorch), and what comes back. One job per process keeps
 * each row's peak RSS its own (wasm memory never shrinks) and lets a job that runs out of
 * memory fail without taking the benchmark down.
 */
import type { VNCAOptions } from '../src/index.js';

/** A model size of the benchmark: a name and the `VNCA` options (`{}` = the paper's model). */
export interface ModelSpec {
  name: string;
  options: VNCAOptions;
}

/** Time `runs` calls of `trainStep(batch)` or `sample(batch)` after a warm-up call. */
export interface TimedJob {
  kind: 'train' | 'generate';
  backend: string;
  /** wasm only: start the backend's multi-threaded build with this many threads (experiment, see wasmThreads.ts). */
  threads?: number;
  /** Run the calls through `ParallelVNCA` (vnca/node) with this many worker threads besides the main one. */
  workers?: number;
  /**
   * wasm only: turn on the relaxed-SIMD FMA kernels (`enableRelaxedSimdKernels()`, and in every
   * ParallelVNCA worker). The job fails if they do not turn on (a runtime without relaxed SIMD).
   */
  relaxedSimd?: boolean;
  model: ModelSpec;
  batch: number;
  runs: number;
  /** Batch of the warm-up call (0: none). Slow rows warm up on a smaller batch. */
  warmupBatch: number;
  /** Sample tensor bytes / RSS at every kernel call during the timed runs. */
  memoryProbe: boolean;
  /** After the timed runs, one more run with per-kernel timing. */
  profile: boolean;
}

/**
 * One training step per entry of `checkpoints` (each on its own model), with the memory
 * probe: peak tensor bytes against rollout length.
 */
export interface CheckpointJob {
  kind: 'checkpoint';
  backend: string;
  model: ModelSpec;
  batch: number;
  checkpoints: (boolean | number)[];
  runs: number;
}

/** Kernel micro-benchmarks on one backend. */
export interface MicroJob {
  kind: 'micro';
  backend: string;
  /** Batch, grid size, channels, hidden channels of the shapes tried. */
  shapes: { batch: number; grid: number; channels: number; hidden: number }[];
  runs: number;
}

export type Job = TimedJob | CheckpointJob | MicroJob;

/** Memory readings of a run. */
export interface MemoryReading {
  /** Bytes of live tensors before the step (weights, optimiser state, the batch). */
  baseBytes: number;
  /** Highest `tf.memory().numBytes` sampled at kernel calls during the step. */
  peakBytes: number;
  /** Phase and kernel at that peak (`backward/Conv2D`, ...). */
  peakAt?: string;
  /** Highest process RSS sampled, bytes. */
  peakRss: number;
  /** Size of the wasm heap after the step (wasm backend only; it never shrinks), bytes. */
  wasmHeap?: number;
}

/** A per-kernel profile of one call. */
export interface Profile {
  /** Wall and CPU time of the whole profiled call, ms. */
  totalMs: number;
  totalCpuMs: number;
  /** Sums of the kernels' self times, ms. */
  kernelMs: number;
  kernelCpuMs: number;
  rows: ProfileRow[];
}

/** One row of a per-kernel profile. */
export interface ProfileRow {
  phase: string;
  kernel: string;
  label: string;
  calls: number;
  /** Self wall time, ms. */
  ms: number;
  /** Self CPU time, ms. */
  cpuMs: number;
}

export interface TimedResult {
  kind: 'train' | 'generate';
  /** `process.version` of the process that ran the job. */
  node: string;
  /** Whether the relaxed-SIMD FMA kernels were on (`isRelaxedSimdEnabled()`; with ParallelVNCA, in every thread). */
  relaxedSimd: boolean;
  /** Wall time of each timed run, ms. */
  ms: number[];
  /** CPU time (user + system, all threads) of each timed run, ms. */
  cpuMs: number[];
  memory: MemoryReading;
  /** Kernel calls in one step. */
  kernelCalls: number;
  /** Kernel calls of one step that recomputed a forward pass (gradient checkpointing was on). */
  recomputeCalls?: number;
  profile?: Profile;
  /** Loss of the last step (train), to show the step did real work. */
  loss?: number;
  /** Set when a run threw (e.g. out of memory): its message, and how long the run had gone. */
  error?: string;
  failedAfterMs?: number;
  failedAfterCpuMs?: number;
}

export interface CheckpointResult {
  kind: 'checkpoint';
  entries: { checkpoint: boolean | number; ms: number[]; cpuMs: number[]; memory: MemoryReading; loss: number }[];
}

export interface MicroRow {
  group: string;
  name: string;
  shape: string;
  /** Median wall time per call, ms. */
  ms: number;
  /** Median CPU time per call, ms (robust against waiting for a busy core). */
  cpuMs: number;
  /** MACs of the operation (0 for element-wise ones). */
  macs: number;
}

export interface MicroResult {
  kind: 'micro';
  rows: MicroRow[];
}

export type JobResult = TimedResult | CheckpointResult | MicroResult;

/** The line prefix a worker writes its result after. */
export const RESULT_MARK = '@@bench-result ';
