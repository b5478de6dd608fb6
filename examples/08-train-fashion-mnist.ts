/**
 * 08 — Train a VNCA on Fashion-MNIST (when its files are on this machine).
 *
 * The same training as 02-train-mnist.ts (same flags, checkpoints and --resume) on
 * Fashion-MNIST: 60,000 training and 10,000 test images of clothes, 28x28 grey, read from
 * the standard IDX files with `loadIdx(images, labels)`, statically binarised (each pixel
 * white with probability its grey value, drawn once) and padded to 32x32 as the VNCA
 * expects. Debian and Ubuntu ship the files in the package dataset-fashion-mnist:
 *
 *   sudo apt-get install dataset-fashion-mnist   # -> /usr/share/datasets/fashion-mnist/*.gz
 *
 * Without the files it says so and exits (status 0). Writes <out>/checkpoint/,
 * <out>/samples.png and <out>/reconstructions.png (test images, top row; reconstructions,
 * bottom row).
 *
 * Usage:
 *   npx tsx examples/08-train-fashion-mnist.ts
 *   npx tsx examples/08-train-fashion-mnist.ts --data ~/fashion-mnist --steps 1000 --resume
 */
import * as tf from '@tensorflow/tfjs-core';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Command } from 'commander';
import { loadIdx } from '../src/node.js';
import { savePreview, startOrResume, trainAndReport, trainingOptions, useBackend, type TrainingFlags } from './common.js';

const program = trainingOptions(new Command()
  .name('08-train-fashion-mnist')
  .description('Train a doubling VNCA on Fashion-MNIST (IDX files), with checkpoints and --resume.')
  .option('--data <dir>', 'folder of the Fashion-MNIST IDX files', '/usr/share/datasets/fashion-mnist'),
{ steps: 300, out: 'out/train-fashion-mnist' }).parse();
const opts = program.opts<TrainingFlags & { data: string }>();

// 1. The data, if present: the four standard files (gzipped or not).
const file = (name: string) => [join(opts.data, `${name}.gz`), join(opts.data, name)].find(existsSync);
const files = ['train-images-idx3-ubyte', 'train-labels-idx1-ubyte', 't10k-images-idx3-ubyte', 't10k-labels-idx1-ubyte'].map(file);
if (files.some((f) => f === undefined)) {
  console.log(`Fashion-MNIST is not in ${opts.data} (train-images-idx3-ubyte[.gz], t10k-images-idx3-ubyte[.gz] and their labels).`);
  console.log('Install it with `sudo apt-get install dataset-fashion-mnist` (Debian, Ubuntu), or download the four files');
  console.log('from https://github.com/zalandoresearch/fashion-mnist and pass --data <folder>. Nothing to do.');
  process.exit(0);
}
const [trainImages, trainLabels, testImages, testLabels] = files as string[];
const data = loadIdx(trainImages!, trainLabels); // [60000, 32, 32, 1], binarised, with labels
const test = loadIdx(testImages!, testLabels);

await useBackend(opts.backend);
const checkpointDir = join(opts.out, 'checkpoint');

// 2. The model: new from the flags, or (--resume) the checkpoint's, with its step counter.
const { model, startStep, batchSize, seed } = await startOrResume(program, checkpointDir);
console.log(`VNCA with ${model.countParams().toLocaleString('en-US')} parameters; ${data.count} Fashion-MNIST training images, `
  + `batch ${batchSize}, backend ${tf.getBackend()}`);

// 3. Train, checkpointing along the way.
await trainAndReport({
  model, data, startStep, steps: opts.steps, batchSize, seed, checkpointDir, checkpointEvery: opts.checkpointEvery, workers: opts.workers,
});

// 4. New samples, and reconstructions of test images.
savePreview(model, test, opts.out);
model.dispose();
