/**
 * Trains the damage-trained non-doubling VNCA shipped as `models/mnist-regen` with the
 * library's own trainer (`VNCA.trainStep`, sample pool with damage), checkpointing so that
 * it resumes where it stopped:
 *
 *   npx tsx tools/train-regen.ts --out .tmp/regen --deadline-utc 03:00   # new run, or resumes <out>
 *
 * Writes into --out: checkpoint/ (model.json, weights.bin, adam.json + adam.bin: the
 * optimiser's moments and step, progress.json), curve.csv (step, seconds, loss, recon, kl,
 * gradNorm: the mean over each --log-every steps). Copy the checkpoint to `models/` (and
 * `docs/img/regen-curve.csv`) when it is good.
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-wasm';
import { appendFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Command } from 'commander';
import { NON_DOUBLING_MNIST, VNCA } from '../src/index.js';
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

type Internals = { optimizer: tf.Optimizer | null };
let model: VNCA;
let step = 0;
let seconds = 0;
if (existsSync(join(ckpt, 'progress.json'))) {
  const progress = JSON.parse(readFileSync(join(ckpt, 'progress.json'), 'utf8'));
  model = await VNCA.load(fileSystem(ckpt));
  step = progress.step;
  seconds = progress.seconds;
  if (existsSync(join(ckpt, 'adam.json'))) {
    const specs: { name: string; shape: number[] }[] = JSON.parse(readFileSync(join(ckpt, 'adam.json'), 'utf8'));
    const buf = readFileSync(join(ckpt, 'adam.bin'));
    const all = new Float32Array(buf.buffer, buf.byteOffset, buf.byteLength / 4);
    let at = 0;
    const named = specs.map((s) => {
      const n = s.shape.reduce((a, b) => a * b, 1);
      const t = tf.tensor(all.slice(at, at + n), s.shape);
      at += n;
      return { name: s.name, tensor: t };
    });
    const opt = tf.train.adam(model.config.learningRate);
    await opt.setWeights(named);
    named.forEach((w) => w.tensor.dispose());
    (model as unknown as Internals).optimizer = opt;
  }
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
  await model.save(fileSystem(ckpt));
  const opt = (model as unknown as Internals).optimizer;
  if (opt) {
    const weights = await opt.getWeights();
    const arrays = await Promise.all(weights.map((w) => w.tensor.data() as Promise<Float32Array>));
    const total = arrays.reduce((a, v) => a + v.length, 0);
    const all = new Float32Array(total);
    let at = 0;
    for (const a of arrays) { all.set(a, at); at += a.length; }
    writeFileAtomic(join(ckpt, 'adam.bin'), Buffer.from(all.buffer));
    writeFileAtomic(join(ckpt, 'adam.json'), JSON.stringify(weights.map((w) => ({ name: w.name, shape: w.tensor.shape }))));
  }
  writeFileAtomic(join(ckpt, 'progress.json'), JSON.stringify({ step, seconds, batch: opts.batch, seed: opts.seed, savedAt: new Date().toISOString() }));
}

// Batches: a fresh permutation each epoch, seeded by (seed, epoch), so a resumed run continues the same order.
function batchIndices(stepIndex: number): number[] {
  const perEpoch = Math.floor(data.count / opts.batch);
  const epoch = Math.floor(stepIndex / perEpoch);
  let s = (opts.seed * 1_000_003 + epoch) >>> 0;
  const rnd = () => { s = (s + 0x6d2b79f5) >>> 0; let t = s; t = Math.imul(t ^ (t >>> 15), t | 1); t ^= t + Math.imul(t ^ (t >>> 7), t | 61); return ((t ^ (t >>> 14)) >>> 0) / 4294967296; };
  const perm = Array.from({ length: data.count }, (_, i) => i);
  for (let i = perm.length - 1; i > 0; i--) { const j = Math.floor(rnd() * (i + 1)); [perm[i], perm[j]] = [perm[j], perm[i]]; }
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
