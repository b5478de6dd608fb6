/**
 * The messages between {@link ParallelVNCA} (main thread) and its worker threads
 * (src/node/parallelWorker.ts). Every request but `weights` carries an `id` that its reply repeats.
 * Tensors travel as flat float32 arrays (moved with transfer lists, not copied).
 * @internal
 * @module
 */
import type { VNCAConfig } from '../vae/VNCA.js';

/** Starts the worker's backend and builds its model. @internal */
export interface InitRequest {
  type: 'init';
  id: number;
  /** Backend name for `tf.setBackend`. */
  backend: string;
  /** Module that registers the backend (imported by name at run time). */
  backendModule: string;
  /** The model's resolved config. */
  config: VNCAConfig;
  /** The update rule's class name (a built-in one) and `getConfig()`. */
  rule: { className: string; config: Record<string, unknown> };
  /**
   * Whether the main thread runs the relaxed-SIMD FMA kernels (`isRelaxedSimdEnabled()` when
   * the workers are made): a wasm worker then enables them too (kernels are registered per thread).
   */
  relaxedSimd: boolean;
}

/** New weights: every weight of `namedWeights()`, in order, packed into one array. No reply. @internal */
export interface WeightsRequest {
  type: 'weights';
  version: number;
  data: Float32Array;
}

/** Gradients of a share of a batch. @internal */
export interface GradientsRequest {
  type: 'gradients';
  id: number;
  /** Images `[shape]`, flat. */
  images: Float32Array;
  shape: [number, number, number, number];
  /** Posterior-sample noise `[shape[0], zSize]`, flat. */
  noise: Float32Array;
  /** Rollout length of a fixed model. */
  steps?: number;
}

/** Images from latents: decode then render. @internal */
export interface SampleRequest {
  type: 'sample';
  id: number;
  /** Latents `[n, zSize]`, flat. */
  z: Float32Array;
  n: number;
  /** Seed of the update masks. */
  seed?: number;
}

/** A message from the main thread. @internal */
export type Request = InitRequest | WeightsRequest | GradientsRequest | SampleRequest;

/** A worker's answer. @internal */
export type Reply =
  | { type: 'ready'; id: number; backend: string; relaxedSimd: boolean; weightShapes: number[][]; trainableShapes: number[][] }
  | { type: 'gradients'; id: number; grads: Float32Array; loss: number; reconstruction: number; kl: number }
  | { type: 'sample'; id: number; images: Float32Array; shape: [number, number, number, number] }
  | { type: 'error'; id: number; message: string };
