/**
 * `vnca train`: the training loop of examples 02 and 08 (examples/common.ts: new model or
 * --resume from the checkpoint, progress bar, atomic checkpoints) on the data named by --data.
 */
import type { Command } from 'commander';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { loadAmat, loadMnistDigits, loadPngFolder, type ImageDataset } from '../node.js';
import { savePreview, startOrResume, trainAndReport, type TrainingFlags } from '../../examples/common.js';
import { useBackend } from './backend.js';

/** Side of the images `vnca train` trains on (the doubling VNCA's default: 2x2 doubled four times). */
const SIZE = 32;

/** Training and held-out images from `--data`: 'mnist', a folder of PNGs, or an .amat file. */
export function trainingData(data: string): { train: ImageDataset; test: ImageDataset } {
  if (data === 'mnist') return { train: loadMnistDigits({ split: 'train' }), test: loadMnistDigits({ split: 'test' }) };
  if (statSync(data, { throwIfNoEntry: false })?.isDirectory()) {
    // A folder: its images are the training data; the preview reconstructs the first few of them.
    const all = toGrey(loadPngFolder(data, { size: SIZE }));
    return { train: all, test: all };
  }
  const all = loadAmat(data);
  return { train: all, test: all };
}

/**
 * An RGB data set as grey, the mean of its channels: the command trains the Bernoulli
 * (binary-pixel) VNCA, whose targets may be any value in [0, 1].
 */
export function toGrey(ds: ImageDataset): ImageDataset {
  if (ds.channels === 1) return ds;
  const pixels = ds.count * ds.height * ds.width;
  const grey = new Float32Array(pixels);
  for (let p = 0; p < pixels; p++) {
    let sum = 0;
    for (let c = 0; c < ds.channels; c++) sum += ds.images[p * ds.channels + c]!;
    grey[p] = sum / ds.channels;
  }
  return { ...ds, images: grey, channels: 1 };
}

/** Runs `vnca train` (the command's parsed flags are read from `command`). */
export async function train(command: Command): Promise<void> {
  const opts = command.opts<TrainingFlags & { data: string }>();
  await useBackend(opts.backend);
  const { train: data, test } = trainingData(opts.data);
  if (data.height !== SIZE || data.width !== SIZE) {
    throw new RangeError(`--data: vnca train grows ${SIZE}x${SIZE} images, but ${opts.data} holds ${data.height}x${data.width} images.`);
  }
  const checkpointDir = join(opts.out, 'checkpoint');
  const { model, startStep, batchSize, seed } = await startOrResume(command, checkpointDir);
  const c = model.config;
  console.log(`VNCA zSize ${c.zSize}, hidden ${c.hidden}, ${c.nBlocks} blocks: ${model.countParams().toLocaleString('en-US')} parameters; `
    + `${data.count} training images, batch ${batchSize}, lr ${c.learningRate}`);
  await trainAndReport({
    model, data, startStep, steps: opts.steps, batchSize, seed, checkpointDir, checkpointEvery: opts.checkpointEvery, workers: opts.workers,
  });
  savePreview(model, test, opts.out);
  console.log(`sample from it: vnca sample --model ${checkpointDir}`);
  model.dispose();
}
