/**
 * The worker thread of {@link ParallelVNCA}: its own tfjs backend and its own copy of the
 * model, rebuilt from the main thread's config, computing gradients and samples of its share
 * of each batch. The backend module is imported by name at run time (the main thread passes
 * it), so no backend is bundled with the library.
 * @internal
 * @module
 */
import { parentPort } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs-core';
import { VNCA } from '../vae/VNCA.js';
import { ResidualUpdateRule } from '../layers/ResidualUpdateRule.js';
import { PerceptionUpdateRule } from '../layers/PerceptionUpdateRule.js';
import type { UpdateRule } from '../layers/UpdateRule.js';
import { enableWasmTraining } from '../backend/wasm/register.js';
import { enableRelaxedSimdKernels } from '../backend/relaxed/relaxedMatMul.js';
import type { GradientsRequest, InitRequest, Reply, Request, SampleRequest } from './parallelProtocol.js';

const port = parentPort;
if (!port) throw new Error('vnca: parallelWorker must run in a worker thread (it is started by ParallelVNCA).');

let model: VNCA | null = null;
/** A failure to set weights, reported with the next reply (weights messages have none). */
let weightsError: string | null = null;

function send(reply: Reply, transfer: ArrayBuffer[] = []): void {
  port!.postMessage(reply, transfer);
}

function live(): VNCA {
  if (!model) throw new Error('the worker has no model yet (init must come first)');
  return model;
}

async function init(req: InitRequest): Promise<Reply> {
  await import(req.backendModule);
  if (!(await tf.setBackend(req.backend))) {
    throw new Error(`tf.setBackend('${req.backend}') failed after importing '${req.backendModule}'`);
  }
  await tf.ready();
  // The worker runs the backend the main thread chose: tfjs-backend-cpu's one-time "install
  // tfjs-node" banner, if any, was the main thread's to show, not each worker's again.
  const backend = tf.backend() as unknown as { firstUse?: boolean };
  if (typeof backend.firstUse === 'boolean') backend.firstUse = false;
  // Kernels are registered per thread: a wasm worker follows the main thread's relaxed-SIMD
  // (FMA) kernels, after the training kernels so that the 3x3 filter gradient is replaced too.
  let relaxedSimd = false;
  if (req.relaxedSimd && tf.getBackend() === 'wasm') {
    enableWasmTraining();
    relaxedSimd = await enableRelaxedSimdKernels();
  }
  const classes = [ResidualUpdateRule, PerceptionUpdateRule];
  const cls = classes.find((c) => c.className === req.rule.className);
  if (!cls) throw new Error(`update rule '${req.rule.className}' is not a built-in rule`);
  const rule = new cls(req.rule.config as never) as UpdateRule;
  model = new VNCA({ ...req.config, updateRule: rule });
  return {
    type: 'ready',
    id: req.id,
    backend: tf.getBackend(),
    relaxedSimd,
    weightShapes: model.namedWeights().map((w) => w.variable.shape),
    trainableShapes: model.trainableVariables.map((v) => v.shape),
  };
}

function setWeights(data: Float32Array): void {
  let offset = 0;
  for (const { variable } of live().namedWeights()) {
    const size = variable.size;
    tf.tidy(() => variable.assign(tf.tensor(data.subarray(offset, offset + size), variable.shape, 'float32')));
    offset += size;
  }
}

function gradients(req: GradientsRequest): [Reply, ArrayBuffer[]] {
  const m = live();
  const [b] = req.shape;
  const images = tf.tensor4d(req.images, req.shape, 'float32');
  const noise = tf.tensor2d(req.noise, [b, m.config.zSize], 'float32');
  try {
    const g = m.computeGradients(images, { noise, steps: req.steps });
    const vars = m.trainableVariables;
    const total = vars.reduce((a, v) => a + v.size, 0);
    const packed = new Float32Array(total);
    let offset = 0;
    try {
      for (const v of vars) {
        const grad = g.grads[v.name];
        if (grad) packed.set(grad.dataSync(), offset); // a variable the loss does not reach keeps zeros
        offset += v.size;
      }
    } finally {
      tf.dispose(Object.values(g.grads));
    }
    const reply: Reply = { type: 'gradients', id: req.id, grads: packed, loss: g.loss, reconstruction: g.reconstruction, kl: g.kl };
    return [reply, [packed.buffer as ArrayBuffer]];
  } finally {
    tf.dispose([images, noise]);
  }
}

function sample(req: SampleRequest): [Reply, ArrayBuffer[]] {
  const m = live();
  const z = tf.tensor2d(req.z, [req.n, m.config.zSize], 'float32');
  try {
    const images = tf.tidy(() => m.render(m.decode(z, { seed: req.seed })));
    const data = new Float32Array(images.dataSync());
    const shape = images.shape as [number, number, number, number];
    images.dispose();
    return [{ type: 'sample', id: req.id, images: data, shape }, [data.buffer as ArrayBuffer]];
  } finally {
    z.dispose();
  }
}

// Requests are handled one at a time, in order (a weights message is applied before the
// request that follows it).
let queue: Promise<void> = Promise.resolve();
port.on('message', (req: Request) => {
  queue = queue.then(async () => {
    if (req.type === 'weights') {
      try {
        setWeights(req.data);
      } catch (e) {
        weightsError = `setting weights version ${req.version} failed: ${e instanceof Error ? e.message : String(e)}`;
      }
      return;
    }
    try {
      if (weightsError) throw new Error(weightsError);
      if (req.type === 'init') send(await init(req));
      else if (req.type === 'gradients') send(...gradients(req));
      else send(...sample(req));
    } catch (e) {
      send({ type: 'error', id: req.id, message: e instanceof Error ? e.message : String(e) });
    }
  });
});

