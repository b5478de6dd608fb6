/**
 * 06 — Growing Neural Cellular Automata (Mordvintsev et al., Distill 2020).
 *
 * Trains a GrowingNCA to grow a 40x40 smiley (examples/assets/target-40.png) from one
 * live cell, with sample-pool training and damage so that it also regrows what is cut
 * away. Then writes, under --out:
 *
 *   growth.gif    the pattern growing from the seed
 *   regrowth.gif  the grown pattern with a circle cut out, growing back
 *   final.png     target | grown | damaged | regrown
 *   model/        the trained model with its training run (Adam's moments, step count, pool;
 *                 saved every --save-every steps and at the end): --resume <dir> continues
 *                 the run where it stopped, GrowingNCA.load(fileSystem(dir)) reads it back
 *
 * Usage:
 *   npx tsx examples/06-growing-nca.ts                     # defaults: a few minutes on wasm
 *   npx tsx examples/06-growing-nca.ts --steps 2000 --backend wasm --out out/growing
 *   npx tsx examples/06-growing-nca.ts --tiny              # smoke test: seconds
 *
 * The model and its training are smaller than the article's (hidden 64 instead of 128,
 * batch 4 instead of 8, rollouts of 32 to 48 steps instead of 64 to 96, a pool of 64
 * instead of 1024, one damaged state per batch instead of 3, learning rate 5e-3 instead
 * of 2e-3) so that it learns on two CPU cores in minutes rather than hours; pass
 * --hidden 128 --batch 8 --min-steps 64 --max-steps 96 --pool 1024 --damage 3 --lr 2e-3
 * for the article's settings (about 10 s per training step on wasm).
 */
import * as tf from '@tensorflow/tfjs-core';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Command } from 'commander';
import { PNG } from 'pngjs';
import { GrowingNCA } from '../src/growing/index.js';
import { fileSystem, saveGif, savePngGrid } from '../src/node.js';
import { backendOption, float, int, progress, useBackend, type BackendName } from './common.js';

const program = backendOption(new Command()
  .name('06-growing-nca')
  .description('Train a Growing NCA on a 40x40 smiley and render its growth and regrowth.')
  .option('--steps <n>', 'training steps', int, 300)
  .option('--out <dir>', 'output folder', 'out/growing')
  .option('--target <png>', 'target RGBA PNG (a transparent border of a few pixels helps)', 'examples/assets/target-40.png')
  .option('--channels <n>', 'state channels per cell (RGBA, alpha, hidden)', int, 16)
  .option('--hidden <n>', 'hidden units of the update rule', int, 64)
  .option('--batch <n>', 'states per training step', int, 4)
  .option('--min-steps <n>', 'shortest training rollout', int, 32)
  .option('--max-steps <n>', 'longest training rollout', int, 48)
  .option('--damage <n>', 'states of each batch damaged in training', int, 1)
  .option('--damage-after <n>', 'training steps before damage starts', int, 0)
  .option('--pool <n>', 'states in the sample pool', int, 64)
  .option('--lr <x>', 'Adam learning rate', float, 2e-3)
  .option('--decay-steps <n>', 'steps after which the learning rate drops tenfold', int, 2000)
  .option('--seed <n>', 'random seed', int, 0)
  .option('--resume <dir>', 'continue the run saved in <dir> (its settings replace the flags above; --steps more steps)')
  .option('--save-every <n>', 'save the model to <out>/model every n steps', int, 100)
  .option('--tiny', 'smoke test: 3 training steps, short rollouts'))
  .parse();

const opts = program.opts<{
  steps: number; backend: BackendName; out: string; target: string; channels: number; hidden: number; batch: number;
  minSteps: number; maxSteps: number; damage: number; damageAfter: number; pool: number; lr: number; decaySteps: number; seed: number; tiny?: boolean;
  resume?: string; saveEvery: number;
}>();
if (opts.tiny) Object.assign(opts, { steps: 3, minSteps: 8, maxSteps: 10, hidden: 16, batch: 2 });

/** Reads an RGBA PNG as premultiplied RGBA in [0, 1], `[height, width, 4]`. */
function loadTarget(path: string): tf.Tensor3D {
  const png = PNG.sync.read(readFileSync(path));
  const values = new Float32Array(png.width * png.height * 4);
  for (let i = 0; i < png.width * png.height; i++) {
    const alpha = png.data[4 * i + 3]! / 255;
    for (let c = 0; c < 3; c++) values[4 * i + c] = (png.data[4 * i + c]! / 255) * alpha;
    values[4 * i + 3] = alpha;
  }
  return tf.tensor3d(values, [png.height, png.width, 4]);
}

await useBackend(opts.backend);

async function makeModel(): Promise<GrowingNCA> {
  if (opts.resume) return GrowingNCA.load(fileSystem(opts.resume));
  const picture = loadTarget(opts.target);
  try {
    return new GrowingNCA({
      target: picture, // the model keeps a copy
      channels: opts.channels,
      hidden: opts.hidden,
      batchSize: opts.batch,
      stepsRange: [opts.minSteps, opts.maxSteps],
      damageCount: Math.min(opts.damage, opts.batch - 1),
      damageAfter: opts.damageAfter,
      learningRate: opts.lr,
      decaySteps: opts.decaySteps,
      poolSize: Math.max(opts.pool, opts.batch),
      seed: opts.seed,
    });
  } finally {
    picture.dispose();
  }
}

const nca = await makeModel();
const target = nca.getTarget();
const [height, width] = target.shape;
const modelDir = join(opts.out, 'model');
console.log(`GrowingNCA on ${tf.getBackend()}: ${height}x${width} target, ${nca.countParams()} parameters, ${opts.steps} training steps${
  opts.resume ? ` after loading ${opts.resume} (trained ${nca.trainingSteps} steps)` : ''}`);

// --- Training -----------------------------------------------------------------------
// A progress bar on a terminal; plain lines (about ten) when the output is a file or a pipe.
const bar = progress('training', opts.steps, 0, ['loss']);
const started = performance.now();
let lossAverage = NaN;
for (let i = 1; i <= opts.steps; i++) {
  const { loss } = nca.trainStep();
  lossAverage = Number.isNaN(lossAverage) ? loss : 0.9 * lossAverage + 0.1 * loss;
  bar.update(i, { loss: lossAverage.toFixed(4) });
  if (opts.saveEvery > 0 && i % opts.saveEvery === 0) await nca.save(fileSystem(modelDir), { includeOptimizer: true });
}
bar.stop();
const seconds = (performance.now() - started) / 1000;
if (opts.steps > 0) {
  console.log(`trained in ${seconds.toFixed(0)} s (${(opts.steps / seconds).toFixed(2)} steps/s), final loss ${lossAverage.toFixed(4)}`);
}

// --- Pictures -------------------------------------------------------------------------
const growSteps = opts.tiny ? 12 : 120;
const regrowSteps = opts.tiny ? 12 : 120;
const every = opts.tiny ? 3 : 4;
const frameOf = (state: tf.Tensor4D) => nca.toRgb(state);
const pick = (states: tf.Tensor4D[]) => states.filter((_, i) => i % every === 0 || i === states.length - 1);

// Growth from the seed.
const growth = nca.grow(growSteps, { returnStates: true, seed: opts.seed });
const growthFrames = pick(growth.states).map(frameOf);
saveGif(join(opts.out, 'growth.gif'), growthFrames, { scale: 3, delay: 80, lastDelay: 1500 });

// Regrowth: cut a circle out of the lower right of the grown pattern.
const region = { shape: 'circle' as const, centerY: height * 0.62, centerX: width * 0.62, radius: width * 0.2 };
const regrowth = nca.regenerate(growth.state, region, regrowSteps, { returnStates: true, seed: opts.seed + 1 });
const regrowthFrames = [...Array(4).fill(growth.state), ...pick(regrowth.states)].map(frameOf);
saveGif(join(opts.out, 'regrowth.gif'), regrowthFrames, { scale: 3, delay: 80, lastDelay: 1500 });

// target | grown | damaged | regrown (toRgb reads the RGBA channels of any state, the target too)
const row = tf.tidy(() => tf.concat([
  frameOf(tf.expandDims(target, 0) as tf.Tensor4D), frameOf(growth.state), frameOf(regrowth.states[0]!), frameOf(regrowth.state),
], 0) as tf.Tensor4D);
savePngGrid(join(opts.out, 'final.png'), row, { scale: 4, cols: 4, gap: 4, background: 0.8 });

await nca.save(fileSystem(modelDir), { includeOptimizer: true });
// How much of the cut came back: the distance to the target (the training loss) grown, just
// after the cut, and regrown; 1 is all of it, 0 none.
const distance = (s: tf.Tensor4D) => tf.tidy(() => nca.loss(s).dataSync()[0]!);
const [dGrown, dCut, dRegrown] = [growth.state, regrowth.states[0]!, regrowth.state].map(distance) as [number, number, number];
console.log(`wrote ${join(opts.out, 'growth.gif')}, regrowth.gif, final.png and model/`);
console.log(`distance to the target: grown ${dGrown.toFixed(4)}, cut ${dCut.toFixed(4)}, regrown ${dRegrown.toFixed(4)} `
  + `after ${regrowSteps} steps: ${(100 * (dCut - dRegrown) / (dCut - dGrown)).toFixed(0)} % of the cut regrown`);

tf.dispose([target, row, growth.state, ...growth.states, ...growthFrames, regrowth.state,
  ...regrowth.states, ...regrowthFrames]);
nca.dispose();
