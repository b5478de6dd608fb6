/**
 * The training page's worker: trains a `GrowingNCA` off the main thread, so the page stays
 * responsive however long one training step takes (seconds on wasm with big settings).
 *
 * Messages in ({@link ToWorker}): start (target and options), pause, resume, snapshot.
 * Messages out ({@link FromWorker}): ready (backend), step (loss, timing) after each step,
 * snapshot (saved weights as tfjs model artifacts, and a few pool states as RGBA) every
 * `previewEvery` steps, on pause and on request; error.
 */
import * as tf from '@tensorflow/tfjs-core';
import { GrowingNCA, type GrowingNCAOptions } from '../../src/index.js';
import { startBackend, type BackendChoice } from './backend.js';

/** Messages to the worker. */
export type ToWorker =
  | {
    type: 'start';
    backend: string | null;
    /** Premultiplied RGBA `[size, size, 4]`, row-major. */
    target: Float32Array;
    size: number;
    options: Omit<GrowingNCAOptions, 'target'>;
    previewEvery: number;
    poolShown: number;
  }
  | { type: 'pause' }
  | { type: 'resume' }
  | { type: 'snapshot' };

/** Messages from the worker. */
export type FromWorker =
  | { type: 'ready'; backend: BackendChoice; params: number }
  | { type: 'step'; step: number; loss: number; ms: number; rolloutSteps: number; damaged: boolean; learningRate: number }
  | {
    type: 'snapshot';
    step: number;
    artifacts: tf.io.ModelArtifacts;
    /** RGB on white of `count` pool states, `[count, size, size, 3]` in [0, 1]. */
    pool: Float32Array;
    count: number;
  }
  | { type: 'paused'; step: number }
  | { type: 'error'; message: string };

const post = (m: FromWorker, transfer: Transferable[] = []): void => (self as unknown as Worker).postMessage(m, transfer);

let nca: GrowingNCA | null = null;
let running = false;
let looping = false;
let previewEvery = 50;
let poolShown = 6;

async function snapshot(): Promise<void> {
  if (!nca) return;
  const model = nca;
  let artifacts: tf.io.ModelArtifacts | null = null;
  await model.save(tf.io.withSaveHandler(async (a) => {
    artifacts = a;
    return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
  }));
  const n = Math.min(poolShown, model.pool.size);
  // Evenly spread pool entries: after sorting and replacing they are a fair sample.
  const indices = Array.from({ length: n }, (_, k) => Math.floor((k * model.pool.size) / n));
  const { states } = model.pool.get(indices);
  const rgb = model.toRgb(states);
  states.dispose();
  const pool = (await rgb.data()) as Float32Array;
  rgb.dispose();
  post({ type: 'snapshot', step: model.trainingSteps, artifacts: artifacts!, pool, count: n }, [pool.buffer]);
}

/** Trains while `running`, yielding to the message queue after each step. */
async function loop(): Promise<void> {
  if (looping) return;
  looping = true;
  try {
    while (running && nca) {
      const t0 = performance.now();
      const r = nca.trainStep();
      const ms = performance.now() - t0;
      const step = nca.trainingSteps;
      post({
        type: 'step', step, loss: r.loss, ms, rolloutSteps: r.steps, learningRate: r.learningRate,
        damaged: step > nca.config.damageAfter && nca.config.damageCount > 0,
      });
      if (step % previewEvery === 0 || step === 1) await snapshot();
      await new Promise((resolve) => setTimeout(resolve, 0)); // let pause/snapshot messages in
    }
  } finally {
    looping = false;
  }
}

self.onmessage = async (e: MessageEvent<ToWorker>) => {
  const m = e.data;
  try {
    if (m.type === 'start') {
      const backend = await startBackend(m.backend);
      nca?.dispose();
      const target = tf.tensor3d(m.target, [m.size, m.size, 4]);
      nca = new GrowingNCA({ ...m.options, target });
      target.dispose();
      previewEvery = Math.max(1, m.previewEvery);
      poolShown = m.poolShown;
      post({ type: 'ready', backend, params: nca.countParams() });
      running = true;
      void loop().catch(fail);
    } else if (m.type === 'pause') {
      running = false;
      while (looping) await new Promise((resolve) => setTimeout(resolve, 5));
      await snapshot();
      post({ type: 'paused', step: nca?.trainingSteps ?? 0 });
    } else if (m.type === 'resume') {
      running = true;
      void loop().catch(fail);
    } else if (m.type === 'snapshot') {
      await snapshot();
    }
  } catch (err) {
    fail(err);
  }
};

function fail(err: unknown): void {
  running = false;
  console.error(err);
  post({ type: 'error', message: err instanceof Error ? err.message : String(err) });
}
