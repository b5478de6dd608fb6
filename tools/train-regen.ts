/**
 * Trains the damage-trained non-doubling VNCA shipped as `models/mnist-regen` with the
 * library's own trainer (`VNCA.trainStep`, sample pool with damage), checkpointing so that
 * it resumes where it stopped:
 *
 *   npx tsx tools/train-regen.ts --out .tmp/regen --deadline-utc 03:00   # new run, or resumes <out>
 *
 * Writes into --out: checkpoint/ (model.json and its weights with the optimiser's moments
 * and step, `save(…, { includeOptimizer: true })`; progress.json), curve.csv (step, seconds, loss, recon, kl,
 * gradNorm: the mean over each --log-every steps). Copy the checkpoint to `models/` (and
 * `docs/img/regen-curve.csv`) when it is good.
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-wasm';
import { appendFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Command } from 'commander';
import { NON_DOUBLING_MNIST, VNCA, mulberry32, shuffleInPlace } from '../src/index.js';
import { datasetToTensor, fileSystem, loadMnistDigits, writeFileAtomic } from '../src/node.js';
import { float, int, positiveInt } from '../examples/common.js';

const opts = new Command()
  .name('train-regen')
  .option('--out <dir>', 'output folder', '.tmp/regen')
  .option('--steps <n>', 'train until the step counter reaches this', positiveInt, 100_000)
  .option('--deadline-utc <hh:mm>', 'stop (with a checkpoint) at this UTC time')
  .option('--batch <n>', 'images per step', positiveInt, 32)
  .option('--z-size <n>', 'latent size = channels per cell', positiveInt, 32)
  .option('--hidden <n>', 'channels of the rule\'s hidden layer', positiveInt, 64)
  .option('--p-update <x>', 'cell update probability', float, 0.5)
  .option('--lr <x>', 'Adam learning rate', float, 1e-3)
  .option('--seed <n>', 'seed of the batch sampler', int, 0)
  .option('--ckpt-every <n>', 'steps between checkpoints', positiveInt, 25)
  .option('--log-every <n>', 'steps per curve.csv row', positiveInt, 10)
  .parse()
  .opts<{ out: string; steps: number; deadlineUtc?: string; batch: number; zSize: number; hidden: number;
    pUpdate: number; lr: number; seed: number; ckptEvery: number; logEvery: number }>();

function deadline(text?: string): number {
  if (!text) return Infinity;
  const [hh, mm] = text.split(':').map(Number);
  const d = new Date();
  d.setUTCHours(hh, mm, 0, 0);
  if (d.getTime() < Date.now() - 12 * 3600e3) d.setUTCDate(d.getUTCDate() + 1);
  return d.getTime();
}

await tf.setBackend('wasm');
const stopAt = deadline(opts.deadlineUtc);
const ckpt = join(opts.out, 'checkpoint');
mkdirSync(ckpt, { recursive: true });
const data = loadMnistDigits({ split: 'train', pad: 0 });
const images = datasetToTensor(data);

let model: VNCA;
let step = 0;
let seconds = 0;
if (existsSync(join(ckpt, 'progress.json'))) {
  const progress = JSON.parse(readFileSync(join(ckpt, 'progress.json'), 'utf8'));
  model = await VNCA.load(fileSystem(ckpt));
  step = progress.step;
  seconds = progress.seconds;
  console.log(`resumed ${ckpt} at step ${step}`);
} else {
  model = new VNCA({
    ...NON_DOUBLING_MNIST,
    zSize: opts.zSize,
    hidden: opts.hidden,
    pUpdate: opts.pUpdate,
    encoderChannels: [16, 32, 64, 128, 256],
    learningRate: opts.lr,
  });
  writeFileAtomic(join(opts.out, 'curve.csv'), 'step,seconds,loss,recon,kl,gradNorm\n');
  console.log(`new run: ${model.countParams()} parameters, config ${JSON.stringify(model.config)}`);
}

async function checkpoint(): Promise<void> {
  // Weights, Adam's moments and step in one atomic save; VNCA.load restores them all.
  await model.save(fileSystem(ckpt), { includeOptimizer: true });
  writeFileAtomic(join(ckpt, 'progress.json'), JSON.stringify({ step, seconds, batch: opts.batch, seed: opts.seed, savedAt: new Date().toISOString() }));
}

// Batches: a fresh permutation each epoch, seeded by (seed, epoch), so a resumed run continues the same order.
function batchIndices(stepIndex: number): number[] {
  const perEpoch = Math.floor(data.count / opts.batch);
  const epoch = Math.floor(stepIndex / perEpoch);
  const perm = shuffleInPlace(Array.from({ length: data.count }, (_, i) => i), mulberry32(opts.seed * 1_000_003 + epoch));
  const at = (stepIndex % perEpoch) * opts.batch;
  return perm.slice(at, at + opts.batch);
}

let acc = [0, 0, 0, 0];
let n = 0;
while (step < opts.steps && Date.now() < stopAt) {
  const t0 = performance.now();
  const batch = tf.tidy(() => tf.gather(images, tf.tensor1d(batchIndices(step), 'int32')) as tf.Tensor4D);
  const r = model.trainStep(batch);
  batch.dispose();
  step++;
  seconds += (performance.now() - t0) / 1000;
  if (!Number.isFinite(r.loss)) throw new Error(`non-finite loss at step ${step}`);
  acc = [acc[0] + r.loss, acc[1] + r.reconstruction, acc[2] + r.kl, acc[3] + r.gradNorm];
  n++;
  if (step % opts.logEvery === 0) {
    const m = acc.map((v) => v / n);
    appendFileSync(join(opts.out, 'curve.csv'), `${step},${seconds.toFixed(1)},${m.map((v) => v.toFixed(3)).join(',')}\n`);
    console.log(`[${new Date().toISOString().slice(11, 19)}] step ${step}: loss ${m[0].toFixed(1)} recon ${m[1].toFixed(1)} kl ${m[2].toFixed(1)} |g| ${m[3].toFixed(0)}; ${(seconds / step).toFixed(2)} s/step; pool ${model.poolSize}`);
    acc = [0, 0, 0, 0];
    n = 0;
  }
  if (step % opts.ckptEvery === 0) await checkpoint();
}
await checkpoint();
console.log(`stopped at step ${step}`);
