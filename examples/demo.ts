/**
 * The demo (`npm run demo`): what the shipped pretrained VNCA does, in pictures and one number.
 *
 * Loads the two shipped models (docs/pretrained.md): mnist-small, a doubling VNCA for 32x32
 * binarised MNIST digits (samples, growth, reconstructions, interpolation, nats), and
 * mnist-regen, the non-doubling VNCA trained from a sample pool with damage (regrowth and
 * inpainting: the doubling model was never trained to heal), and writes into --out (default out/demo):
 *
 *   samples.png          new digits: z ~ N(0, I), grown from a 2x2 seed to 32x32
 *   growth.png           how a few samples grow: one row per sample, columns from the 2x2 seed
 *                        to the 32x32 image (the first, middle and last state of each grid size)
 *   growth.gif           the same growth, every step
 *   reconstructions.png  held-out digits (top row) and their reconstructions (bottom row)
 *   regrowth.png         with the damage-trained model (models/mnist-regen): held-out digits
 *                        grown from their posterior means, the same damaged (a square of half
 *                        the grid's side zeroed), and the automaton regrowing them: one row each
 *   regrowth.gif         the same, animated
 *   inpainting.png       (mnist-regen) held-out digits with half hidden, one row each: original / masked
 *                        input / model.inpaint (rounds of completion: the completed digit encoded
 *                        again and its hidden part redrawn from the posterior-mean decode) / the hidden
 *                        part from the decode of the masked digit's posterior mean, in one pass
 *   interpolation.png    decodes along the line between the posteriors of two held-out digits
 *
 * and prints the model's held-out log-likelihood bound in nats: a live IWAE bound (K samples
 * per image) on the first --eval-images digits of the held-out split, and the full evaluation
 * recorded when the model was trained (models/mnist-small/training.json).
 *
 * Usage:
 *   npm run demo                                   # about a minute on 2 cores (wasm)
 *   npm run demo -- --out /tmp/demo --k 64 --eval-images 32
 *   npx tsx examples/demo.ts --samples 4 --k 4 --eval-images 2     # quick check
 */
import * as tf from '@tensorflow/tfjs-core';
import { join } from 'node:path';
import { Command } from 'commander';
import { natsToBitsPerDim } from '../src/index.js';
import { loadMnistDigits, datasetToTensor, gatherImages, saveGif, savePngGrid } from '../src/node.js';
import {
  SHIPPED_MODEL, backendOption, halfMask, inpaintFromPosterior, inpaintingRows, int, loadModel, positiveInt, progress, readTrainingRecord, rowsOfColumns,
  since, upscale, useBackend, type BackendName,
} from './common.js';

const program = backendOption(new Command()
  .name('demo')
  .description('Pictures and the held-out log-likelihood of the shipped pretrained VNCA.')
  .option('--model <name|dir>', 'shipped model name or model folder (samples, growth, reconstructions, interpolation, nats)', SHIPPED_MODEL)
  .option('--regen-model <name|dir>', 'shipped model name or model folder for regrowth and inpainting', 'mnist-regen')
  .option('--out <dir>', 'output folder', 'out/demo')
  .option('--samples <n>', 'new samples in samples.png', positiveInt, 36)
  .option('--k <n>', 'importance samples per image of the live IWAE bound', positiveInt, 32)
  .option('--eval-images <n>', 'held-out digits of the live IWAE bound (0: skip it)', int, 16)
  .option('--scale <n>', 'pixels per image pixel in the pictures', positiveInt, 3)
  .option('--seed <n>', 'random seed', int, 1))
  .parse();
const opts = program.opts<{
  model: string; regenModel: string; out: string; samples: number; k: number; evalImages: number; scale: number; seed: number;
  backend: BackendName;
}>();

const written: { file: string; what: string; time: string }[] = [];
/** Runs one part of the demo, times it and records the file it wrote. */
async function part(file: string, what: string, fn: () => void | Promise<void>): Promise<void> {
  const start = performance.now();
  process.stdout.write(`  ${file.padEnd(20)} ${what} ... `);
  await fn();
  const time = since(start);
  console.log(time);
  written.push({ file, what, time });
}

await useBackend(opts.backend);
const model = await loadModel(opts.model);
const c = model.config;
const size = c.imageSize;
const record = readTrainingRecord(opts.model);
console.log(`VNCA from ${opts.model}: ${model.countParams().toLocaleString('en-US')} parameters, zSize ${c.zSize}, `
  + `${model.seedSize}x${model.seedSize} seed -> ${size}x${size} in `
  + `${c.stepsPerDoubling * (c.nDoublings + 1)} steps`
  + `${record?.training?.step ? `, trained ${record.training.step} steps` : ''}; backend ${tf.getBackend()}`);

// Held-out digits: the test split of the bundled MNIST digits (never seen in training).
const test = loadMnistDigits({ split: 'test' });
/** The first held-out digit of each class 0..9, in class order. */
const firstOfEach = Array.from({ length: 10 }, (_, d) => test.labels!.indexOf(d));
const { scale } = opts;

console.log(`writing to ${opts.out}/`);

// 1. New digits from the prior.
await part('samples.png', `${opts.samples} new samples`, () => {
  const images = model.sample(opts.samples, { seed: opts.seed });
  savePngGrid(join(opts.out, 'samples.png'), images, { scale, cols: Math.ceil(Math.sqrt(opts.samples)) });
  images.dispose();
});

// 2. Growth: every state from the 2x2 seed grid to the 32x32 image, for 4 samples.
const z = tf.randomNormal([4, c.zSize], 0, 1, 'float32', opts.seed + 1) as tf.Tensor2D;
let grown!: { state: tf.Tensor4D; states: tf.Tensor4D[] };
let growthFrames: tf.Tensor4D[] = [];
await part('growth.png', `every state of 4 samples, 2x2 -> ${size}x${size}`, () => {
  grown = model.decode(z, { returnStates: true, seed: opts.seed });
  growthFrames = grown.states.map((s) => model.render(s)); // [4, h, w, 1], h = 2, 4, ..., 32
  // Columns: the first, middle and last state of each grid size, upscaled to 32x32.
  const columns: number[] = [];
  let runStart = 0;
  growthFrames.forEach((f, i) => {
    const next = growthFrames[i + 1];
    if (next && next.shape[1] === f.shape[1]) return;
    columns.push(runStart, Math.floor((runStart + i) / 2), i);
    runStart = i + 1;
  });
  const picked = [...new Set(columns)].map((i) => upscale(growthFrames[i]!, size));
  const grid = rowsOfColumns(picked);
  savePngGrid(join(opts.out, 'growth.png'), grid, { scale, cols: picked.length });
  tf.dispose([grid, ...picked]);
});
await part('growth.gif', `${growthFrames.length} frames`, () => {
  saveGif(join(opts.out, 'growth.gif'), growthFrames, { scale: scale + 1, cols: 4, gap: 2, delay: 120, lastDelay: 2000 });
});

// 3. Reconstructions of held-out digits: one of each class.
await part('reconstructions.png', '10 held-out digits and their reconstructions', () => {
  const x = gatherImages(test, firstOfEach);
  const recon = model.reconstruct(x);
  const both = tf.concat([x, recon]) as tf.Tensor4D; // row 1: originals, row 2: reconstructions
  savePngGrid(join(opts.out, 'reconstructions.png'), both, { scale, cols: 10 });
  tf.dispose([x, recon, both]);
});

// 4. Regeneration, with the damage-trained model (--regen-model, default mnist-regen: the
// doubling model above was never trained to heal). Held-out digits are grown from their
// posterior means, a square of half the grid's side is zeroed, and the automaton runs on.
const regen = await loadModel(opts.regenModel);
const rsize = regen.config.imageSize;
const regenTest = loadMnistDigits({ split: 'test', pad: (rsize - 28) / 2 });
let regrowthFrames: tf.Tensor4D[] = [];
await part('regrowth.png', `${opts.regenModel}: damage, then regenerate's default steps of regrowth`, () => {
  const x = gatherImages(regenTest, firstOfEach.slice(0, 4));
  const q = regen.encode(x);
  const grownDigits = regen.decode(q.mean as tf.Tensor2D, { seed: opts.seed });
  const half = Math.floor(rsize / 2);
  const region = { shape: 'square' as const, top: Math.floor(rsize / 4), left: Math.floor(rsize / 4), size: half };
  const regrown = regen.regenerate(grownDigits, region, { returnStates: true, seed: opts.seed });
  // Columns: grown, damaged, then every 4th step of regrowth (and the last).
  const keep = regrown.states.filter((_, i) => i % 4 === 0 || i === regrown.states.length - 1);
  const columns = [regen.render(grownDigits), ...keep.map((s) => regen.render(s))];
  const grid = rowsOfColumns(columns);
  savePngGrid(join(opts.out, 'regrowth.png'), grid, { scale, cols: columns.length });
  regrowthFrames = [regen.render(grownDigits), ...regrown.states.map((s) => regen.render(s))];
  tf.dispose([x, grownDigits, grid, regrown.state, ...regrown.states, ...columns]);
  q.dispose();
});
await part('regrowth.gif', `${regrowthFrames.length + 6} frames`, () => {
  // Hold the grown digits for a few frames before the damage.
  const frames = [...Array(6).fill(regrowthFrames[0]!), ...regrowthFrames];
  saveGif(join(opts.out, 'regrowth.gif'), frames, { scale: scale + 1, cols: 4, gap: 2, delay: 100, lastDelay: 2000 });
});

// 5. Inpainting, with the damage-trained model: hide the bottom half (even columns) or the
// right half (odd columns) of held-out digits.
await part('inpainting.png', `${opts.regenModel}: 8 digits: original / masked / inpainted / posterior decode`, () => {
  const n = 8;
  const x = gatherImages(regenTest, firstOfEach.slice(0, n));
  const bottom = halfMask('bottom', rsize);
  const right = halfMask('right', rsize);
  const mask = tf.stack(Array.from({ length: n }, (_, i) => (i % 2 === 0 ? bottom : right))) as tf.Tensor3D; // 1 = unknown
  // model.inpaint: rounds of completion. Round 1 fills the unknown part (for this fixed model:
  // from the posterior-mean decode; a doubling model zeroes the unknown cells and regrows them);
  // each later round encodes the completed digit and takes the unknown part from the decode of
  // its posterior mean; the result's unknown part is the mean of rounds 2 on.
  const filled = regen.inpaint(x, mask, { seed: opts.seed });
  // For comparison: the unknown part straight from the decode of the posterior mean, in one pass.
  const decoded = inpaintFromPosterior(regen, x, mask);
  // In colour: the unknown part of the input blue, the new part of each output tinted blue.
  const grid = inpaintingRows(x, mask, [filled, decoded]);
  savePngGrid(join(opts.out, 'inpainting.png'), grid, { scale, cols: n });
  tf.dispose([x, bottom, right, mask, filled, decoded, grid]);
});
regen.dispose();

// 6. Latent interpolation between pairs of held-out digits.
await part('interpolation.png', '4 pairs of held-out digits, 8 steps each', () => {
  const pairs: [number, number][] = [[0, 6], [1, 7], [3, 8], [4, 9]];
  const rows = pairs.map(([a, b]) => {
    const xa = gatherImages(test, [firstOfEach[a]!]);
    const xb = gatherImages(test, [firstOfEach[b]!]);
    const line = model.interpolate(xa, xb, 8);
    tf.dispose([xa, xb]);
    return line;
  });
  const grid = tf.concat(rows) as tf.Tensor4D;
  savePngGrid(join(opts.out, 'interpolation.png'), grid, { scale, cols: 8 });
  tf.dispose([grid, ...rows]);
});
tf.dispose([z, grown.state, ...grown.states, ...growthFrames, ...regrowthFrames]);

// 7. Held-out log-likelihood: IWAE bound with K importance samples per image, image by image.
let liveLine = '';
if (opts.evalImages > 0) {
  const n = Math.min(opts.evalImages, test.count);
  const start = performance.now();
  const bar = progress(`IWAE (K=${opts.k})`, n, 0, ['nats']);
  const bounds: number[] = [];
  for (let i = 0; i < n; i++) {
    const x = datasetToTensor(test, i, i + 1);
    const r = model.evaluate(x, { importanceSamples: opts.k, seed: opts.seed * 1000 + i });
    x.dispose();
    bounds.push(r.logLikelihood);
    bar.update(i + 1, { nats: (bounds.reduce((a, b) => a + b, 0) / bounds.length).toFixed(1) });
  }
  bar.stop();
  const mean = bounds.reduce((a, b) => a + b, 0) / n;
  const sd = Math.sqrt(bounds.reduce((a, b) => a + (b - mean) ** 2, 0) / Math.max(1, n - 1));
  const bitsPerDim = natsToBitsPerDim(mean, size * size * c.imageChannels);
  liveLine = `IWAE (K=${opts.k}) on ${n} held-out digit${n === 1 ? '' : 's'}: ${mean.toFixed(1)} nats`
    + `${n > 1 ? ` (± ${(sd / Math.sqrt(n)).toFixed(1)} standard error)` : ''}, ${bitsPerDim.toFixed(4)} bits/dim [${since(start)}]`;
}
model.dispose();

// Summary.
const e = record?.evaluation;
console.log('');
console.log(`wrote ${written.length} files to ${opts.out}/:`);
for (const w of written) console.log(`  ${w.file.padEnd(20)} ${w.what} (${w.time})`);
console.log('');
console.log('held-out log-likelihood, lower bound log p(x) >= (higher is better):');
if (liveLine) console.log(`  ${liveLine}`);
else console.log('  live IWAE skipped (--eval-images 0)');
if (e?.log_px_lower_bound_nats !== undefined) {
  const trainedTo = record?.finetune?.toStep ?? record?.training?.step;
  const stale = e.step !== undefined && trainedTo !== undefined && e.step !== trainedTo;
  console.log(`  IWAE (K=${e.iwae_k}) on ${e.test_images} of ${e.test_total} held-out digits: `
    + `${e.log_px_lower_bound_nats.toFixed(1)} nats${e.std_err ? ` (± ${e.std_err.toFixed(1)})` : ''}`
    + ` [recorded in ${opts.model}/training.json by the PyTorch trainer at step ${e.step}${stale ? `; these weights are from step ${trainedTo}` : ''}]`);
} else {
  console.log(`  (no full evaluation recorded in ${opts.model}/training.json)`);
}
console.log(`  (the paper's full-size model: -84.23 nats on the MNIST test set, K=128)`);
// performance.now() counts from the start of the process; CPU time shows how busy the machine was.
const cpu = process.cpuUsage();
console.log(`total ${since(0)} wall time, ${((cpu.user + cpu.system) / 1e6).toFixed(1)} s CPU time`);
