/**
 * Trains a VNCA with the library's own trainer (`VNCA.trainStep`, or `ParallelVNCA` with
 * --workers), checkpointing so that it resumes where it stopped. A new run builds the
 * damage-trained non-doubling VNCA of `models/mnist-regen` (sample pool with damage);
 * `--from` fine-tunes a shipped model or a model folder instead (its own config: pool and
 * damage only if it has them):
 *
 *   npx tsx tools/train-vnca.ts --out .tmp/regen --deadline-utc 03:00                 # new run, or resumes <out>
 *   npx tsx tools/train-vnca.ts --from mnist-small --lr 1e-4 --out .tmp/ft-small     # fine-tune a shipped model
 *
 * On the wasm backend it turns on vnca's relaxed-SIMD kernels where the runtime has them
 * (Node 22+); the digits are padded to the model's image size (28: none, 32: 2 pixels).
 *
 *   npx tsx tools/train-vnca.ts --out .tmp/ft-regen --export models/mnist-regen        # ship the run's weights
 *
 * Writes into --out: checkpoint/ (model.json and its weights with the optimiser's moments
 * and step, `save(…, { includeOptimizer: true })`; progress.json), curve.csv (step, seconds, loss, recon, kl,
 * gradNorm: the mean over each --log-every steps). Copy the checkpoint to `models/` (and
 * `docs/img/regen-curve.csv`) when it is good: --export writes the checkpoint's weights (no
 * optimiser state, no pool) into a model folder and adds a `finetune` record (steps, lr, loss
 * at the start and the end, time per step, Node and kernels) to its training.json.
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-wasm';
import { appendFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Command } from 'commander';
import { NON_DOUBLING_MNIST, VNCA, enableRelaxedSimdKernels, enableWasmTraining, mulberry32, shuffleInPlace } from '../src/index.js';
import { ParallelVNCA, datasetToTensor, fileSystem, loadMnistDigits, writeFileAtomic } from '../src/node.js';
import { float, int, positiveInt } from '../examples/common.js';
import { loadModel } from '../src/cli/model.js';

const opts = new Command()
  .name('train-vnca')
  .option('--out <dir>', 'output folder', '.tmp/regen')
  .option('--from <model>', 'fine-tune this shipped model (name) or model folder instead of building a new one')
  .option('--step-offset <n>', 'with --from: steps the model was trained for before (the curve continues from it)', int, 0)
  .option('--export <dir>', 'train nothing: write the checkpoint in --out as a model folder (weights only) with a finetune record in its training.json')
  .option('--workers <n>', 'ParallelVNCA worker threads besides the main one (0: train on the main thread)', int, 0)
  .option('--steps <n>', 'train until the step counter reaches this', positiveInt, 100_000)
  .option('--deadline-utc <hh:mm>', 'stop (with a checkpoint) at this UTC time')
  .option('--batch <n>', 'images per step', positiveInt, 32)
  .option('--z-size <n>', 'latent size = channels per cell', positiveInt, 32)
  .option('--hidden <n>', 'channels of the rule\'s hidden layer', positiveInt, 64)
  .option('--p-update <x>', 'cell update probability', float, 0.5)
  .option('--lr <x>', 'Adam learning rate (with --from: replaces the model\'s)', float)
  .option('--seed <n>', 'seed of the batch sampler', int, 0)
  .option('--ckpt-every <n>', 'steps between checkpoints', positiveInt, 25)
  .option('--log-every <n>', 'steps per curve.csv row', positiveInt, 10)
  .parse()
  .opts<{ out: string; export?: string; from?: string; stepOffset: number; workers: number; steps: number; deadlineUtc?: string; batch: number; zSize: number; hidden: number;
    pUpdate: number; lr?: number; seed: number; ckptEvery: number; logEvery: number }>();

function deadline(text?: string): number {
  if (!text) return Infinity;
  const [hh, mm] = text.split(':').map(Number);
  const d = new Date();
  d.setUTCHours(hh, mm, 0, 0);
  if (d.getTime() < Date.now() - 12 * 3600e3) d.setUTCDate(d.getUTCDate() + 1);
  return d.getTime();
}

await tf.setBackend('wasm');
enableWasmTraining();
const fma = await enableRelaxedSimdKernels();
console.log(`node ${process.version}, wasm backend, relaxed-SIMD FMA kernels ${fma ? 'on' : 'off (this runtime lacks relaxed SIMD)'}`);
const stopAt = deadline(opts.deadlineUtc);
const ckpt = join(opts.out, 'checkpoint');
mkdirSync(ckpt, { recursive: true });

if (opts.export) {
  await exportRun(opts.export);
  process.exit(0);
}

/** --export: the checkpoint's weights into a model folder, and what the run did into its training.json. */
async function exportRun(dir: string): Promise<void> {
  const progress = JSON.parse(readFileSync(join(ckpt, 'progress.json'), 'utf8'));
  const trained = await VNCA.load(fileSystem(ckpt));
  const rows = readFileSync(join(opts.out, 'curve.csv'), 'utf8').trim().split('\n').slice(1).map((l) => l.split(',').map(Number));
  if (rows.length < 2) throw new Error(`${opts.out}/curve.csv has ${rows.length} rows: nothing to export`);
  const mean = (rs: number[][]) => rs.reduce((a, r) => a + r[2]!, 0) / rs.length;
  // The run's first step (older progress files lack it: the curve's first interval then).
  const first: number = progress.startStep ?? rows[0]![0]! - (rows[1]![0]! - rows[0]![0]!);
  const record = {
    tool: 'tools/train-vnca.ts (model.trainStep: vnca\'s own trainer, wasm backend)',
    node: process.version,
    relaxedSimdKernels: fma,
    fromStep: first,
    toStep: progress.step,
    steps: progress.step - first,
    batch: progress.batch,
    learningRate: trained.config.learningRate,
    seconds: Math.round(progress.seconds),
    secondsPerStep: progress.seconds / (progress.step - first),
    lossFirstRows: mean(rows.slice(0, 5)),
    lossLastRows: mean(rows.slice(-5)),
    curve: `${opts.out}/curve.csv (mean over each ${rows[1]![0]! - rows[0]![0]!} steps)`,
  };
  await trained.save(fileSystem(dir));
  const trainingJson = join(dir, 'training.json');
  const existing = existsSync(trainingJson) ? JSON.parse(readFileSync(trainingJson, 'utf8')) : {};
  writeFileAtomic(trainingJson, `${JSON.stringify({ ...existing, finetune: record }, null, 2)}\n`);
  console.log(`wrote ${dir}: step ${progress.step}, finetune ${JSON.stringify(record)}`);
  trained.dispose();
}

let model: VNCA;
let step = 0;
let seconds = 0;
if (existsSync(join(ckpt, 'progress.json'))) {
  const progress = JSON.parse(readFileSync(join(ckpt, 'progress.json'), 'utf8'));
  model = await VNCA.load(fileSystem(ckpt));
  step = progress.step;
  seconds = progress.seconds;
  console.log(`resumed ${ckpt} at step ${step}`);
} else if (opts.from) {
  const shipped = await loadModel(opts.from);
  // A fresh model with the shipped config (built-in rule; the new learning rate), its weights copied in.
  model = new VNCA({ ...shipped.config, ...(opts.lr !== undefined ? { learningRate: opts.lr } : {}) });
  model.setNamedWeights(Object.fromEntries(shipped.namedWeights().map((w) => [w.name, w.variable])));
  shipped.dispose();
  step = opts.stepOffset;
  writeFileAtomic(join(opts.out, 'curve.csv'), 'step,seconds,loss,recon,kl,gradNorm\n');
  console.log(`fine-tuning ${opts.from} from step ${step}: ${model.countParams()} parameters, config ${JSON.stringify(model.config)}`);
} else {
  model = new VNCA({
    ...NON_DOUBLING_MNIST,
    zSize: opts.zSize,
    hidden: opts.hidden,
    pUpdate: opts.pUpdate,
    encoderChannels: [16, 32, 64, 128, 256],
    learningRate: opts.lr ?? 1e-3,
  });
  writeFileAtomic(join(opts.out, 'curve.csv'), 'step,seconds,loss,recon,kl,gradNorm\n');
  console.log(`new run: ${model.countParams()} parameters, config ${JSON.stringify(model.config)}`);
}

async function checkpoint(): Promise<void> {
  // Weights, Adam's moments and step in one atomic save; VNCA.load restores them all.
  await model.save(fileSystem(ckpt), { includeOptimizer: true });
  writeFileAtomic(join(ckpt, 'progress.json'), JSON.stringify({ step, startStep, seconds, batch: opts.batch, seed: opts.seed, savedAt: new Date().toISOString() }));
}

/** Where this run (new, or fine-tuning) began: kept in progress.json for --export. */
const startStep: number = existsSync(join(ckpt, 'progress.json'))
  ? JSON.parse(readFileSync(join(ckpt, 'progress.json'), 'utf8')).startStep ?? 0
  : step;
const data = loadMnistDigits({ split: 'train', pad: (model.config.imageSize - 28) / 2 });
const images = datasetToTensor(data);
const par = opts.workers > 0 ? await ParallelVNCA.create(model, { workers: opts.workers }) : null;

// Batches: a fresh permutation each epoch, seeded by (seed, epoch), so a resumed run continues the same order.
function batchIndices(stepIndex: number): number[] {
  const perEpoch = Math.floor(data.count / opts.batch);
  const epoch = Math.floor(stepIndex / perEpoch);
  const perm = shuffleInPlace(Array.from({ length: data.count }, (_, i) => i), mulberry32(opts.seed * 1_000_003 + epoch));
  const at = (stepIndex % perEpoch) * opts.batch;
  return perm.slice(at, at + opts.batch);
}

const firstStep = step;
const firstSeconds = seconds;
let acc = [0, 0, 0, 0];
let n = 0;
while (step < opts.steps && Date.now() < stopAt) {
  const t0 = performance.now();
  const batch = tf.tidy(() => tf.gather(images, tf.tensor1d(batchIndices(step), 'int32')) as tf.Tensor4D);
  const r = par ? await par.trainStep(batch) : model.trainStep(batch);
  batch.dispose();
  step++;
  seconds += (performance.now() - t0) / 1000;
  if (!Number.isFinite(r.loss)) throw new Error(`non-finite loss at step ${step}`);
  acc = [acc[0] + r.loss, acc[1] + r.reconstruction, acc[2] + r.kl, acc[3] + r.gradNorm];
  n++;
  if (step % opts.logEvery === 0) {
    const m = acc.map((v) => v / n);
    appendFileSync(join(opts.out, 'curve.csv'), `${step},${seconds.toFixed(1)},${m.map((v) => v.toFixed(3)).join(',')}\n`);
    console.log(`[${new Date().toISOString().slice(11, 19)}] step ${step}: loss ${m[0].toFixed(1)} recon ${m[1].toFixed(1)} kl ${m[2].toFixed(1)} |g| ${m[3].toFixed(0)}; ${((seconds - firstSeconds) / (step - firstStep)).toFixed(2)} s/step; pool ${model.poolSize}`);
    acc = [0, 0, 0, 0];
    n = 0;
  }
  if (step % opts.ckptEvery === 0) await checkpoint();
}
await checkpoint();
await par?.dispose();
console.log(`stopped at step ${step}`);
