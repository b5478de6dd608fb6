/**
 * Data parallelism over Node worker threads: {@link ParallelVNCA}.
 * @module
 */
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Worker, type WorkerOptions } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs-core';
import { assertInt, assertRank, describe, VncaError } from '../core/errors.js';
import { isBuiltInRule } from '../layers/registry.js';
import { VNCA, type GradientOptions, type Gradients, type TrainStepResult } from '../vae/VNCA.js';
import { checkGradientOptions, checkTrainingImages } from '../vae/trainingChecks.js';
import { dataIdOf } from '../backend/tfjsInternals.js';
import { tfSeed } from '../core/random.js';
import { isRelaxedSimdEnabled } from '../backend/relaxed/relaxedMatMul.js';
import type { GradientsRequest, Reply, Request, SampleRequest } from './parallelProtocol.js';

/**
 * Options of {@link ParallelVNCA.create}.
 *
 * @category Parallel
 */
export interface ParallelOptions {
  /**
   * Extra threads, each with its own backend and its own copy of the model; the main thread
   * computes a share too. Default `os.availableParallelism() - 1` (one per further core).
   * 0 runs everything on the main thread: every method is then the model's own.
   */
  workers?: number;
  /** The tfjs backend of the workers. Default: the main thread's, `tf.getBackend()`. */
  backend?: string;
  /**
   * The module a worker imports (by name, at run time) to register `backend`. Default
   * `'@tensorflow/tfjs-backend-<backend>'` (`'@tensorflow/tfjs-node'` for `'tensorflow'`).
   * It is resolved from the `vnca` package's folder, or pass an absolute `file:` URL.
   */
  backendModule?: string;
}

/** One worker thread and its requests in flight. */
interface Thread {
  worker: Worker;
  pending: Map<number, { resolve: (r: Reply) => void; reject: (e: Error) => void }>;
  /** Version of the weights the worker holds (-1: none yet). */
  version: number;
  /** Set once the thread has failed or exited; every later request rejects with it. */
  failure: Error | null;
}

type GradientsReply = Extract<Reply, { type: 'gradients' }>;
type SampleReply = Extract<Reply, { type: 'sample' }>;

/**
 * Whether `x` is a VNCA: an instance of this copy of the class, or of another copy of the
 * library (say, a second installed version) with the methods used here.
 */
function isVnca(x: unknown): x is VNCA {
  if (x instanceof VNCA) return true;
  const m = x as Partial<Record<keyof VNCA, unknown>> | null;
  return typeof m === 'object' && m !== null && typeof m.config === 'object'
    && ['computeGradients', 'applyGradients', 'trainStep', 'sample', 'decode', 'render', 'namedWeights', 'nextRolloutSteps']
      .every((k) => typeof m[k as keyof VNCA] === 'function');
}

/** Near-equal shares of `n` items over `parts` threads, the larger ones first (the main thread's is first). */
function splitEvenly(n: number, parts: number): number[] {
  return Array.from({ length: parts }, (_, i) => Math.floor(n / parts) + (i < n % parts ? 1 : 0));
}

/** The worker script and how to start it: the built file next to this one, or the TypeScript source through tsx. */
function workerEntry(): { script: URL | string; options: WorkerOptions } {
  const here = import.meta.url;
  if (!/\.[cm]?ts$/.test(new URL(here).pathname)) {
    const ext = here.endsWith('.cjs') ? 'cjs' : 'js';
    // The worker needs none of the parent's Node flags, and some (--input-type) would stop it.
    return { script: new URL(`./parallelWorker.${ext}`, here), options: { execArgv: [] } };
  }
  // Running from the sources (tests, examples, benchmarks under tsx or vitest): the worker
  // registers tsx's loader, then imports its TypeScript source.
  const source = new URL('./parallelWorker.ts', here);
  let tsxApi: string;
  try {
    // tsx's ESM API (its `import` export: the CommonJS one cannot register the ESM loader).
    const pkg = createRequire(here).resolve('tsx/package.json');
    const api = (JSON.parse(readFileSync(pkg, 'utf8')) as { exports: Record<string, { import: string | { default: string } }> }).exports['./esm/api']!.import;
    tsxApi = pathToFileURL(path.join(path.dirname(pkg), typeof api === 'string' ? api : api.default)).href;
  } catch {
    throw new VncaError('ParallelVNCA.create', 'worker', `runs from TypeScript sources only with the dev dependency tsx installed; build the package (npm run build) and import 'vnca/node' instead.`);
  }
  if (!existsSync(fileURLToPath(source))) {
    throw new VncaError('ParallelVNCA.create', 'worker', `script is missing: expected ${fileURLToPath(source)}.`);
  }
  const code = `import(${JSON.stringify(tsxApi)}).then((m) => { m.register(); return import(${JSON.stringify(source.href)}); });`;
  return { script: code, options: { eval: true, execArgv: [] } };
}

/** Flat float32 copy of a tensor's values (safe to transfer: never the backend's own store). */
function copyOf(values: tf.TypedArray, start = 0, end = values.length): Float32Array {
  return Float32Array.from(values.subarray(start, end) as Float32Array);
}

/**
 * Data-parallel training and sampling of a {@link VNCA} over Node worker threads, to use more
 * than one core with backends that run on one (tfjs-backend-wasm and tfjs-backend-cpu are
 * single-threaded in Node). Each worker runs its own tfjs backend and its own copy of the
 * model, rebuilt from `model.config`; a batch is split into near-equal shares, one per thread
 * (the main thread computes one too), and the threads synchronise once per call.
 *
 * `trainStep` is the same maths as `model.trainStep`: each thread computes the gradients of
 * its share's mean loss, the main thread combines them weighted by share size (so they are
 * the whole batch's mean-loss gradients), clips them to global norm `clipNorm` and applies them
 * with the model's own Adam. The model's weights are sent to the workers (as one transferred
 * float32 array each) before a call that needs them, and only when they changed since the
 * last call: any change counts, also by `model.trainStep` or `model.setNamedWeights`.
 *
 * Needs a model whose workers can rebuild it from `model.config`: a built-in update rule
 * (`ResidualUpdateRule`, `PerceptionUpdateRule`) and no sample pool (pool training
 * keeps its state on the main thread). With `workers: 0` any model works, and every method is
 * the model's own. Calls are queued: one runs at a time. Tensors passed in must stay alive
 * until the call's promise settles.
 *
 * Kernels are registered per thread, so the workers follow the main thread: if
 * `isRelaxedSimdEnabled()` (the relaxed-SIMD FMA kernels of `enableRelaxedSimdKernels()`) is
 * true when {@link ParallelVNCA.create} runs, each wasm worker calls `enableWasmTraining()` and
 * `enableRelaxedSimdKernels()` itself; {@link ParallelVNCA.relaxedSimd} says, per worker,
 * whether they are on. Enable them on the main thread before `create`: a later change there
 * does not reach workers already made.
 *
 * Whether it pays depends on the model and the machine: see docs/parallel.md. The workers
 * are idle threads between calls; {@link ParallelVNCA.dispose} ends them.
 *
 * @example
 * ```ts
 * import * as tf from '@tensorflow/tfjs-core';
 * import '@tensorflow/tfjs-backend-wasm';
 * import { VNCA } from 'vnca';
 * import { ParallelVNCA } from 'vnca/node';
 * await tf.setBackend('wasm');
 * const model = new VNCA({ zSize: 64, hidden: 64 });
 * const par = await ParallelVNCA.create(model, { workers: 1 });
 * const stats = await par.trainStep(batch);    // batch: [8, 32, 32, 1]; updates model's weights
 * const images = await par.sample(16, { seed: 1 });
 * await par.dispose();                         // ends the workers; the model stays the caller's
 * ```
 * @category Parallel
 */
export class ParallelVNCA {
  /** The model trained and sampled (the caller's; not disposed by {@link ParallelVNCA.dispose}). */
  readonly model: VNCA;
  /** The workers' backend (the main thread's when there are no workers). */
  readonly backend: string;
  /**
   * Per worker thread, in order, whether it runs the relaxed-SIMD FMA kernels
   * (`enableRelaxedSimdKernels()`): `true` when the main thread had them on at
   * {@link ParallelVNCA.create}, the workers run wasm and the runtime has relaxed SIMD
   * (Node 22+); `false` otherwise. Empty with `workers: 0`.
   */
  readonly relaxedSimd: readonly boolean[];
  private readonly threads: Thread[];
  private nextId = 1;
  private version = 0;
  private dataIds: unknown[] = [];
  private chain: Promise<unknown> = Promise.resolve();
  private disposed = false;

  private constructor(model: VNCA, backend: string, threads: Thread[], relaxedSimd: boolean[] = []) {
    this.model = model;
    this.backend = backend;
    this.threads = threads;
    this.relaxedSimd = relaxedSimd;
  }

  /** Number of worker threads (the main thread not counted). */
  get workers(): number {
    return this.threads.length;
  }

  /**
   * Starts the worker threads: each imports its backend module, starts the backend and builds
   * the model from `model.config`.
   *
   * @param model A live {@link VNCA}; with `workers > 0`, one with a built-in update rule and no sample pool.
   * @param options `workers` (default `os.availableParallelism() - 1`), `backend`, `backendModule`.
   * @returns The parallel trainer, once every worker is ready; {@link ParallelVNCA.dispose} ends it.
   */
  static async create(model: VNCA, options: ParallelOptions = {}): Promise<ParallelVNCA> {
    const fn = 'ParallelVNCA.create';
    if (!isVnca(model)) throw new VncaError(fn, 'model', `must be a VNCA, but got ${describe(model)}.`);
    let live: boolean;
    try {
      live = model.trainableVariables.every((v) => !v.isDisposed);
    } catch {
      live = false; // reading a disposed layer weight throws
    }
    if (!live) throw new VncaError(fn, 'model', 'is a disposed VNCA; create or load a new one.');
    if (typeof options !== 'object' || options === null) throw new VncaError(fn, 'options', `must be an object, but got ${describe(options)}.`);
    const known = ['workers', 'backend', 'backendModule'];
    for (const key of Object.keys(options)) {
      if (!known.includes(key)) throw new VncaError(fn, `options.${key}`, `is not an option (known: ${known.join(', ')}).`);
    }
    const workers = options.workers ?? Math.max(0, os.availableParallelism() - 1);
    assertInt(workers, fn, 'options.workers', 0, 256);
    const backend = options.backend ?? tf.getBackend();
    if (typeof backend !== 'string' || backend === '') throw new VncaError(fn, 'options.backend', `must be a backend name, but got ${describe(backend)}.`);
    const backendModule = options.backendModule ?? (backend === 'tensorflow' ? '@tensorflow/tfjs-node' : `@tensorflow/tfjs-backend-${backend}`);
    if (typeof backendModule !== 'string' || backendModule === '') {
      throw new VncaError(fn, 'options.backendModule', `must be a module name, but got ${describe(backendModule)}.`);
    }
    if (workers === 0) return new ParallelVNCA(model, backend, []);

    // By className, not identity (a model from another copy of the library is fine). A
    // subclass that does not declare its own className is custom.
    const ctor = model.rule.constructor as unknown as { className?: string };
    if (!Object.hasOwn(ctor, 'className') || !isBuiltInRule(ctor.className)) {
      throw new VncaError(fn, 'model.rule', `is a custom update rule ('${ctor.className ?? 'unnamed'}') that a worker thread cannot rebuild from model.config; only the built-in ResidualUpdateRule and PerceptionUpdateRule can. Use workers: 0 (or the model's own methods).`);
    }
    const c = model.config;
    if (c.growth === 'fixed' && c.poolSize > 0) {
      throw new VncaError(fn, 'model', `trains with a sample pool (poolSize ${c.poolSize}), whose states live on the main thread between steps; parallel training does not support it. Use workers: 0 (or model.trainStep), or poolSize 0.`);
    }
    const rule = { className: ctor.className!, config: JSON.parse(JSON.stringify(model.rule.getConfig())) as Record<string, unknown> };
    const entry = workerEntry();
    const threads: Thread[] = [];
    const relaxedSimd: boolean[] = [];
    const par = new ParallelVNCA(model, backend, threads, relaxedSimd);
    try {
      for (let i = 0; i < workers; i++) threads.push(par.startThread(entry, i + 1));
      const ready = await Promise.all(threads.map((t) => par.request(t, {
        type: 'init', id: par.nextId++, backend, backendModule, config: c, rule, relaxedSimd: isRelaxedSimdEnabled(),
      })));
      const weightShapes = model.namedWeights().map((w) => w.variable.shape);
      const trainableShapes = model.trainableVariables.map((v) => v.shape);
      for (const r of ready) {
        if (r.type !== 'ready') throw new Error(`unexpected reply '${r.type}'`);
        if (r.backend !== backend) throw new Error(`the worker runs on '${r.backend}'`);
        if (JSON.stringify(r.weightShapes) !== JSON.stringify(weightShapes) || JSON.stringify(r.trainableShapes) !== JSON.stringify(trainableShapes)) {
          throw new Error('the model rebuilt in the worker has other weights than the main thread\'s');
        }
        relaxedSimd.push(r.relaxedSimd);
      }
      Object.freeze(relaxedSimd);
    } catch (e) {
      par.disposed = true;
      await Promise.all(threads.map((t) => t.worker.terminate()));
      const why = e instanceof Error ? e.message : String(e);
      throw new VncaError(fn, 'options.backend', `'${backend}' could not start in a worker thread (backend module '${backendModule}'): ${why}`);
    }
    return par;
  }

  private startThread(entry: { script: URL | string; options: WorkerOptions }, index: number): Thread {
    const worker = new Worker(entry.script, { ...entry.options, name: `vnca-parallel-${index}` });
    const thread: Thread = { worker, pending: new Map(), version: -1, failure: null };
    const fail = (error: Error): void => {
      thread.failure ??= error;
      for (const p of thread.pending.values()) p.reject(thread.failure);
      thread.pending.clear();
      worker.unref();
    };
    worker.on('message', (reply: Reply) => {
      const p = thread.pending.get(reply.id);
      if (!p) return;
      thread.pending.delete(reply.id);
      if (thread.pending.size === 0) worker.unref();
      if (reply.type === 'error') p.reject(new Error(`worker ${index}: ${reply.message}`));
      else p.resolve(reply);
    });
    worker.on('error', (e) => fail(new Error(`worker ${index} failed: ${e.message}`)));
    worker.on('exit', (code) => fail(new Error(`worker ${index} exited (code ${code})`)));
    // An idle worker does not keep the process alive; one with a request in flight does.
    worker.unref();
    return thread;
  }

  private request(thread: Thread, req: Exclude<Request, { type: 'weights' }>, transfer: ArrayBuffer[] = []): Promise<Reply> {
    if (thread.failure) return Promise.reject(thread.failure);
    return new Promise<Reply>((resolve, reject) => {
      thread.pending.set(req.id, { resolve, reject });
      thread.worker.ref();
      thread.worker.postMessage(req, transfer);
    });
  }

  private checkNotDisposed(fn: string): void {
    if (this.disposed) throw new VncaError(fn, 'this', 'is a disposed ParallelVNCA; create a new one with ParallelVNCA.create.');
  }

  /** Runs calls one at a time, in call order. */
  private enqueue<T>(op: () => Promise<T>): Promise<T> {
    const run = this.chain.then(op, op);
    this.chain = run.catch(() => undefined);
    return run;
  }

  private checkBatch(batch: unknown, fn: string): asserts batch is tf.Tensor4D {
    assertRank(batch, 4, fn, 'batch', '[batch, height, width, channels]');
    const c = this.model.config;
    const [, h, w, ch] = batch.shape;
    if (batch.dtype !== 'float32' || h !== c.imageSize || w !== c.imageSize || ch !== c.imageChannels) {
      throw new VncaError(fn, 'batch', `must be a float32 tensor of shape [batch, ${c.imageSize}, ${c.imageSize}, ${c.imageChannels}], but got ${describe(batch)}.`);
    }
    checkTrainingImages(batch, fn, 'batch');
  }

  /** Sends the model's weights to every worker that lacks their current version. */
  private syncWeights(): void {
    const named = this.model.namedWeights();
    // A variable's dataId changes on every assign, so this notices any change of the weights.
    const ids = named.map((w) => dataIdOf(w.variable));
    if (ids.length !== this.dataIds.length || ids.some((d, i) => d !== this.dataIds[i])) {
      this.version++;
      this.dataIds = ids;
    }
    const stale = this.threads.filter((t) => t.version !== this.version && !t.failure);
    if (stale.length === 0) return;
    const packed = new Float32Array(named.reduce((a, w) => a + w.variable.size, 0));
    let offset = 0;
    for (const { variable } of named) {
      packed.set(variable.dataSync() as Float32Array, offset);
      offset += variable.size;
    }
    stale.forEach((t, i) => {
      const data = i === stale.length - 1 ? packed : packed.slice();
      t.worker.postMessage({ type: 'weights', version: this.version, data } satisfies Request, [data.buffer as ArrayBuffer]);
      t.version = this.version;
    });
  }

  /** The combined gradients of a batch (runs inside the queue). */
  private async gradients(batch: tf.Tensor4D, options: GradientOptions): Promise<Gradients> {
    const m = this.model;
    const b = batch.shape[0];
    const zSize = m.config.zSize;
    const steps = options.steps ?? m.nextRolloutSteps();
    const sizes = splitEvenly(b, this.threads.length + 1);
    const noise = options.noise ? tf.clone(options.noise) : tf.randomNormal([b, zSize], 0, 1, 'float32', tfSeed(options.seed)) as tf.Tensor2D;
    let mainThreadGradients: Gradients | null = null;
    try {
      this.syncWeights();
      const pixels = batch.dataSync();
      const eps = noise.dataSync();
      const pixelsPerImage = pixels.length / b;
      const replies: Promise<Reply>[] = [];
      let start = sizes[0]!;
      this.threads.forEach((t, i) => {
        const n = sizes[i + 1]!;
        if (n === 0) return;
        const req: GradientsRequest = {
          type: 'gradients', id: this.nextId++, steps,
          images: copyOf(pixels, start * pixelsPerImage, (start + n) * pixelsPerImage),
          shape: [n, batch.shape[1], batch.shape[2], batch.shape[3]],
          noise: copyOf(eps, start * zSize, (start + n) * zSize),
        };
        replies.push(this.request(t, req, [req.images.buffer as ArrayBuffer, req.noise.buffer as ArrayBuffer]));
        start += n;
      });
      const n0 = sizes[0]!;
      const x0 = tf.slice(batch, 0, n0);
      const e0 = tf.slice(noise, 0, n0);
      try {
        mainThreadGradients = m.computeGradients(x0, { noise: e0, steps });
      } finally {
        tf.dispose([x0, e0]);
      }
      const results = (await Promise.all(replies)) as GradientsReply[];
      const weights = [n0 / b, ...sizes.slice(1).filter((n) => n > 0).map((n) => n / b)];
      const grads: tf.NamedTensorMap = {};
      let offset = 0;
      for (const v of m.trainableVariables) {
        const mine = mainThreadGradients.grads[v.name] ?? null;
        grads[v.name] = tf.tidy(() => {
          const terms: tf.Tensor[] = [mine ? tf.mul(mine, weights[0]!) : tf.zeros(v.shape)];
          results.forEach((r, k) => {
            terms.push(tf.mul(tf.tensor(r.grads.subarray(offset, offset + v.size), v.shape, 'float32'), weights[k + 1]!));
          });
          return terms.length === 1 ? terms[0]! : tf.addN(terms);
        });
        offset += v.size;
      }
      const weightedMean = (key: 'loss' | 'reconstruction' | 'kl'): number =>
        weights[0]! * mainThreadGradients![key] + results.reduce((a, r, k) => a + weights[k + 1]! * r[key], 0);
      return { grads, loss: weightedMean('loss'), reconstruction: weightedMean('reconstruction'), kl: weightedMean('kl') };
    } finally {
      noise.dispose();
      if (mainThreadGradients) tf.dispose(Object.values((mainThreadGradients as Gradients).grads));
    }
  }

  /**
   * The gradients of a batch's loss, computed in parallel: {@link VNCA.computeGradients} of
   * each thread's share, combined weighted by share size into the whole batch's. Equal to
   * `model.computeGradients(batch, options)` up to float rounding, given the same noise.
   *
   * @param batch Images `[batch, imageSize, imageSize, imageChannels]` in [0, 1] (kept alive until the promise settles).
   * @param options `seed` or `noise` of the posterior sample (drawn for the whole batch on the
   *   main thread, then split), `steps` of a fixed model (default: drawn by the model).
   * @returns The gradients keyed by the model's variable names (the caller disposes them) and the loss terms.
   */
  async computeGradients(batch: tf.Tensor4D, options: GradientOptions = {}): Promise<Gradients> {
    const fn = 'ParallelVNCA.computeGradients';
    this.checkNotDisposed(fn);
    this.checkBatch(batch, fn);
    checkGradientOptions(options, batch.shape[0], this.model.config.zSize, fn);
    if (this.threads.length === 0) return this.enqueue(async () => this.model.computeGradients(batch, options));
    return this.enqueue(() => this.gradients(batch, options));
  }

  /**
   * One training step on a batch split across the threads: the same maths as
   * {@link VNCA.trainStep} (gradients of the whole batch's mean loss, clipped to global norm
   * `clipNorm`, applied with the model's own Adam on the main thread). With `workers: 0` it is
   * `model.trainStep(batch, options)`.
   *
   * @param batch Images `[batch, imageSize, imageSize, imageChannels]` in [0, 1] (kept alive until the promise settles).
   * @param options The step's randomness: `seed` or `noise` of the posterior sample (`seed: s`
   *   draws the noise `model.trainStep(batch, { seed: s })` draws), `steps` of a fixed model.
   * @returns Plain numbers: loss (negative ELBO), reconstruction, KL, gradient norm before clipping.
   */
  async trainStep(batch: tf.Tensor4D, options: GradientOptions = {}): Promise<TrainStepResult> {
    const fn = 'ParallelVNCA.trainStep';
    this.checkNotDisposed(fn);
    this.checkBatch(batch, fn);
    checkGradientOptions(options, batch.shape[0], this.model.config.zSize, fn);
    if (this.threads.length === 0) return this.enqueue(async () => this.model.trainStep(batch, options));
    return this.enqueue(async () => {
      const g = await this.gradients(batch, options);
      try {
        // A non-finite loss or gradient norm skips the step, as model.trainStep does.
        const { gradNorm, skipped } = this.model.applyStep(g.grads, g.loss, fn);
        return { loss: g.loss, reconstruction: g.reconstruction, kl: g.kl, gradNorm, skipped };
      } finally {
        tf.dispose(Object.values(g.grads));
      }
    });
  }

  /**
   * New images from the prior, split across the threads: z ~ N(0, I) is drawn on the main
   * thread exactly as {@link VNCA.sample} draws it, each thread grows and renders its rows.
   * With `pUpdate = 1` (the doubling model) the result equals `model.sample(n, options)` up
   * to float rounding; with `pUpdate < 1` each thread draws the update masks of its own rows.
   *
   * @param n Number of images.
   * @param options `seed` for z (and the update masks).
   * @returns Images `[n, imageSize, imageSize, imageChannels]` in [0, 1]; the caller owns them.
   */
  async sample(n: number, options: { seed?: number } = {}): Promise<tf.Tensor4D> {
    const fn = 'ParallelVNCA.sample';
    this.checkNotDisposed(fn);
    assertInt(n, fn, 'n', 1);
    if (typeof options !== 'object' || options === null) throw new VncaError(fn, 'options', `must be an object, but got ${describe(options)}.`);
    if (options.seed !== undefined) assertInt(options.seed, fn, 'options.seed');
    if (this.threads.length === 0) return this.enqueue(async () => this.model.sample(n, options));
    return this.enqueue(async () => {
      const m = this.model;
      const zSize = m.config.zSize;
      const sizes = splitEvenly(n, this.threads.length + 1);
      const z = tf.randomNormal([n, zSize], 0, 1, 'float32', tfSeed(options.seed)) as tf.Tensor2D;
      const parts: tf.Tensor4D[] = [];
      try {
        this.syncWeights();
        const all = z.dataSync();
        const replies: Promise<Reply>[] = [];
        let start = sizes[0]!;
        this.threads.forEach((t, i) => {
          const k = sizes[i + 1]!;
          if (k === 0) return;
          const req: SampleRequest = { type: 'sample', id: this.nextId++, n: k, seed: options.seed, z: copyOf(all, start * zSize, (start + k) * zSize) };
          replies.push(this.request(t, req, [req.z.buffer as ArrayBuffer]));
          start += k;
        });
        parts.push(tf.tidy(() => m.render(m.decode(tf.slice(z, 0, sizes[0]!), { seed: options.seed }))));
        for (const r of (await Promise.all(replies)) as SampleReply[]) parts.push(tf.tensor4d(r.images, r.shape, 'float32'));
        return tf.concat(parts) as tf.Tensor4D;
      } finally {
        tf.dispose([z, ...parts]);
      }
    });
  }

  /**
   * Ends the worker threads (after the calls already queued). The model is not disposed.
   * Calling it twice is harmless; other methods reject afterwards.
   *
   * @returns Once every worker has exited.
   */
  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    await this.chain;
    await Promise.all(this.threads.map((t) => t.worker.terminate()));
  }
}
