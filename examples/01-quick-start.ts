/**
 * 01 — Quick start: load the shipped pretrained VNCA and draw new digits.
 *
 * The model in models/mnist-small/ is a doubling VNCA trained on 32x32 binarised MNIST
 * digits (docs/pretrained.md). Sampling draws z ~ N(0, I), copies it into every cell of a
 * 2x2 grid, and lets the update rule grow the grid (8 steps, divide, 8 steps, ...) to
 * 32x32; channel 0 of each cell is a pixel's logit. Writes <out>/samples.png.
 *
 * Usage:
 *   npx tsx examples/01-quick-start.ts
 *   npx tsx examples/01-quick-start.ts --n 64 --seed 7 --backend cpu --out out/quick-start
 */
import * as tf from '@tensorflow/tfjs-core';
import { join } from 'node:path';
import { Command } from 'commander';
import { savePngGrid } from '../src/node.js';
import { SHIPPED_MODEL, backendOption, int, loadModel, positiveInt, since, useBackend, type BackendName } from './common.js';

const opts = backendOption(new Command()
  .name('01-quick-start')
  .description('Load the pretrained VNCA and save a grid of new samples.')
  .option('--model <name|dir>', 'shipped model name or model folder', SHIPPED_MODEL)
  .option('--n <n>', 'number of samples', positiveInt, 16)
  .option('--seed <n>', 'random seed', int, 0)
  .option('--scale <n>', 'pixels per image pixel', positiveInt, 4)
  .option('--out <dir>', 'output folder', 'out/quick-start'))
  .parse()
  .opts<{ model: string; n: number; seed: number; scale: number; out: string; backend: BackendName }>();

// 1. Pick a backend. The library imports none: the application does (here in common.ts).
await useBackend(opts.backend);

// 2. Load the model: VNCA.load(fileSystem(dir)) reads model.json + weights.bin.
const model = await loadModel(opts.model);
console.log(`loaded ${opts.model}: ${model.countParams().toLocaleString('en-US')} parameters, backend ${tf.getBackend()}`);

// 3. Sample: images [n, 32, 32, 1], each pixel's probability of being white.
const start = performance.now();
const images = model.sample(opts.n, { seed: opts.seed });
console.log(`sampled ${opts.n} digits in ${since(start)}`);

// 4. Save them as one PNG grid.
const path = join(opts.out, 'samples.png');
const { width, height } = savePngGrid(path, images, { scale: opts.scale });
console.log(`wrote ${path} (${width}x${height})`);

images.dispose();
model.dispose();
