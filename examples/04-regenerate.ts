/**
 * 04 — Regeneration: damage a grown digit and let the automaton run on.
 *
 * The decoder of a VNCA is a cellular automaton: every cell of the grid holds a
 * zSize-channel state, and the same small network updates every cell from its 3x3
 * neighbourhood. `model.regenerate(state, region, { steps })` zeroes every channel of the
 * cells in `region` (a square, a circle or any mask) and applies the update rule `steps`
 * more times; whatever comes back in the damaged cells comes from their neighbours.
 *
 * The default model is `mnist-regen`, the paper's non-doubling VNCA trained from a pool of
 * damaged states (28x28): it regrows the hole. `--model mnist-small`, the doubling model,
 * was trained without damage and only to grow for 40 steps: it does not refill the hole,
 * and running it longer lets stripes grow from the hole's border. Writes into --out:
 *
 *   regrowth.gif   the grown digits, the damage, then every step of regrowth
 *   regrowth.png   the same as a strip: one row per digit; columns: grown, damaged, then
 *                  every --every-th step
 *
 * Usage:
 *   npx tsx examples/04-regenerate.ts
 *   npx tsx examples/04-regenerate.ts --shape circle --size 12 --steps 128 --every 8
 *   npx tsx examples/04-regenerate.ts --model mnist-small --source samples   # a model that does not heal
 */
import * as tf from '@tensorflow/tfjs-core';
import { join } from 'node:path';
import { Command, Option } from 'commander';
import { regrowFrames } from '../src/cli/regrow.js';
import { datasetToTensor, loadMnistDigits, saveGif, savePngGrid } from '../src/node.js';
import {
  backendOption, int, loadModel, positiveInt, rowsOfColumns, since, useBackend, type BackendName,
} from './common.js';

const program = backendOption(new Command()
  .name('04-regenerate')
  .description('Damage grown digits and let the cellular automaton regrow them.')
  .option('--model <name|dir>', 'shipped model name or model folder', 'mnist-regen')
  .addOption(new Option('--source <what>', 'digits to damage: new samples, or held-out digits grown from their posterior mean')
    .choices(['samples', 'digits']).default('digits'))
  .option('--n <n>', 'number of digits', positiveInt, 4)
  .addOption(new Option('--shape <shape>', 'damaged region, centred').choices(['square', 'circle']).default('square'))
  .option('--size <n>', 'side of the square or diameter of the circle, in cells (default: half the grid side)', positiveInt)
  .option('--steps <n>', "regrowth steps after the damage (default: the model's, regenerate's default)", int)
  .option('--every <n>', 'regrowth steps between columns of regrowth.png', positiveInt, 1)
  .option('--seed <n>', 'random seed', int, 0)
  .option('--scale <n>', 'pixels per image pixel', positiveInt, 3)
  .option('--out <dir>', 'output folder', 'out/regenerate'))
  .parse();
const opts = program.opts<{
  model: string; source: 'samples' | 'digits'; n: number; shape: 'square' | 'circle'; size?: number; steps?: number;
  every: number; seed: number; scale: number; out: string; backend: BackendName;
}>();

await useBackend(opts.backend);
const model = await loadModel(opts.model);
const { imageSize } = model.config;
opts.size ??= Math.floor(imageSize / 2);
if (opts.size > imageSize) program.error(`error: --size ${opts.size} does not fit: the model's grid is ${imageSize}x${imageSize}.`);
const start = performance.now();

// 1-2. Grow digits (from z ~ N(0, I), or from the posterior mean of held-out digits), zero a
// centred region of every cell state, and run the update rule on, keeping every state
// (regrowFrames in src/cli/regrow.ts, shared with `vnca regrow`: model.decode, then
// model.regenerate(state, region, { steps, returnStates: true }), then model.render).
const pad = (imageSize - 28) / 2;
const images = opts.source === 'digits' ? datasetToTensor(loadMnistDigits({ split: 'test', pad }), 0, opts.n) : undefined;
const { frames, steps } = regrowFrames(model, { n: opts.n, images, shape: opts.shape, size: opts.size, steps: opts.steps, seed: opts.seed });
images?.dispose();
const digits = `${opts.n} ${opts.source === 'samples' ? 'new sample' : 'held-out digit'}${opts.n === 1 ? '' : 's'}`;
const region = opts.shape === 'square' ? `a ${opts.size}x${opts.size}-cell square` : `a circle of diameter ${opts.size} cells`;
console.log(`grew ${digits}, damaged ${region}, ran ${steps} steps in ${since(start)}`);

// 3. Pictures: what each state shows (sigmoid of channel 0): grown, damaged, then every step.
const strip = frames.filter((_, i) => i <= 1 || (i - 1) % opts.every === 0 || i === frames.length - 1);
const grid = rowsOfColumns(strip);
savePngGrid(join(opts.out, 'regrowth.png'), grid, { scale: opts.scale, cols: strip.length });
// In the GIF, hold the grown digits a moment before the damage.
saveGif(join(opts.out, 'regrowth.gif'), [frames[0]!, frames[0]!, frames[0]!, ...frames],
  { scale: opts.scale, cols: opts.n, gap: 2, delay: 150, lastDelay: 2000 });
console.log(`wrote ${join(opts.out, 'regrowth.png')} (${strip.length} columns) and regrowth.gif (${frames.length + 3} frames)`);

tf.dispose([...frames, grid]);
model.dispose();
