/**
 * 03 — Evaluate: the held-out log-likelihood of a VNCA, in nats and bits per dimension.
 *
 * A VAE gives a lower bound on log p(x). The importance-weighted bound (IWAE, Burda et al.
 * 2016) with K samples z_k ~ q(z|x),
 *
 *   log p(x) >= log (1/K) sum_k p(x|z_k) p(z_k) / q(z_k|x),
 *
 * is the ELBO for K = 1 and tightens as K grows; the paper reports K = 128 (-84.23 nats on
 * binarised MNIST). `model.evaluate(x, { importanceSamples: K })` computes it per image; this
 * example runs it on the first --images digits of the held-out split (the digits the shipped
 * model never saw) and prints the mean, its standard error, and bits/dim = -nats / (32*32 ln 2)
 * (per pixel of the 32x32 input, the zero padding included).
 * Every decode grows a 32x32 grid over 40 steps, so the cost is images x K decodes: on 2
 * cores about 0.2 s per decode for the shipped model (wasm).
 *
 * Usage:
 *   npx tsx examples/03-evaluate.ts                           # shipped model, K = 32, 16 digits
 *   npx tsx examples/03-evaluate.ts --k 128 --images 100      # the paper's K (slow)
 *   npx tsx examples/03-evaluate.ts --model out/train-mnist/checkpoint
 */
import * as tf from '@tensorflow/tfjs-core';
import { Command } from 'commander';
import { natsToBitsPerDim } from '../src/index.js';
import { datasetToTensor, loadMnistDigits } from '../src/node.js';
import {
  SHIPPED_MODEL, backendOption, int, loadModel, positiveInt, progress, since, useBackend, type BackendName,
} from './common.js';

const opts = backendOption(new Command()
  .name('03-evaluate')
  .description('IWAE bound on log p(x) of held-out MNIST digits, in nats and bits/dim.')
  .option('--model <name|dir>', 'shipped model name or model folder', SHIPPED_MODEL)
  .option('--k <n>', 'importance samples per image', positiveInt, 32)
  .option('--images <n>', 'held-out digits to evaluate (the first n of the test split)', positiveInt, 16)
  .option('--chunk <n>', 'decodes per batch (memory)', positiveInt, 32)
  .option('--seed <n>', 'seed of the importance samples', int, 0))
  .parse()
  .opts<{ model: string; k: number; images: number; chunk: number; seed: number; backend: BackendName }>();

await useBackend(opts.backend);
const model = await loadModel(opts.model);
const test = loadMnistDigits({ split: 'test' });
const n = Math.min(opts.images, test.count);
console.log(`${opts.model} (${model.countParams().toLocaleString('en-US')} parameters) on ${tf.getBackend()}: `
  + `IWAE with K = ${opts.k} on ${n} of ${test.count} held-out digits`);

// One image at a time, so progress shows; evaluate() takes a whole batch just as well.
const start = performance.now();
const bar = progress('IWAE', n, 0, ['nats']);
const bounds = new Float64Array(n);
for (let i = 0; i < n; i++) {
  const x = datasetToTensor(test, i, i + 1); // [1, 32, 32, 1]
  const r = model.evaluate(x, { importanceSamples: opts.k, decodeBatchSize: opts.chunk, seed: opts.seed * 100_003 + i });
  x.dispose();
  bounds[i] = r.logLikelihood;
  bar.update(i + 1, { nats: (bounds.subarray(0, i + 1).reduce((a, b) => a + b, 0) / (i + 1)).toFixed(2) });
}
bar.stop();

const mean = bounds.reduce((a, b) => a + b, 0) / n;
const stdErr = n > 1 ? Math.sqrt(bounds.reduce((a, b) => a + (b - mean) ** 2, 0) / (n - 1) / n) : NaN;
// Bits per dimension over the 32x32 pixels the model sees (the zero padding included).
const dims = model.config.imageSize ** 2 * model.config.imageChannels;
const bitsPerDim = natsToBitsPerDim(mean, dims);
console.log(`IWAE (K=${opts.k}) on ${n} held-out digits: ${mean.toFixed(2)} nats`
  + `${n > 1 ? ` ± ${stdErr.toFixed(2)} (standard error)` : ''}, ${bitsPerDim.toFixed(4)} bits/dim, in ${since(start)}`);
model.dispose();
