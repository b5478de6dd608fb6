/**
 * The pictures of docs/pretrained.md and the README: the damage-trained model healing.
 *
 *   npx tsx tools/make-figures.ts [--model mnist-regen] [--out docs/img]
 *
 * Writes <out>/regrowth.gif (8 held-out digits grown from their posterior means, a square
 * of cells zeroed in each, regrowing) and <out>/regrowth.png (columns: the digit, grown,
 * damaged, then after 8, 16, 32 (the default) and 128 steps of regrowth).
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-wasm';
import { join } from 'node:path';
import { Command } from 'commander';
import { loadModel } from '../src/cli/model.js';
import { gatherImages, loadMnistDigits, saveGif, savePngGrid } from '../src/node.js';

const opts = new Command()
  .option('--model <name|dir>', 'pretrained name or model folder', 'mnist-regen')
  .option('--out <dir>', 'output folder', 'docs/img')
  .option('--prefix <text>', 'file name prefix', '')
  .parse()
  .opts<{ model: string; out: string; prefix: string }>();

await tf.setBackend('wasm');
const model = await loadModel(opts.model); // a shipped model's name or a folder, as the vnca command takes
const side = model.config.imageSize;
const test = loadMnistDigits({ split: 'test', pad: (side - 28) / 2 });
// One held-out digit of each class 0..7.
const picks = Array.from({ length: 8 }, (_, d) => test.labels!.indexOf(d));
const x = gatherImages(test, picks);
const q = model.encode(x);
const { state: grown, states: growth } = model.decode(q.mean as tf.Tensor2D, { returnStates: true, seed: 1 });
// A half-side square of cells in a different place in each digit.
const half = Math.floor(side / 2);
const spots = [[0, 0], [0, half], [half, 0], [half, half], [7, 7], [0, 7], [7, 0], [14, 7]].map(([t, l]) => [Math.min(t!, side - half), Math.min(l!, side - half)]);
const mask = tf.tidy(() => tf.stack(spots.map(([t, l]) => tf.pad(tf.ones([half, half]), [[t!, side - half - t!], [l!, side - half - l!]]))));
const regrown = model.regenerate(grown, { shape: 'mask', mask }, { steps: 32, returnStates: true, seed: 2 });
const longer = model.regenerate(regrown.state, { shape: 'square', top: 0, left: 0, size: 0 }, { steps: 96, seed: 3 });

const render = (s: tf.Tensor4D) => model.render(s);
const frames = [
  ...growth.filter((_, i) => i % 2 === 0).map(render),
  ...Array.from({ length: 4 }, () => render(grown)),
  ...regrown.states.map(render),
];
saveGif(join(opts.out, `${opts.prefix}regrowth.gif`), frames, { scale: 3, cols: 8, gap: 2, delay: 80, lastDelay: 2500 });
const at = (k: number) => render(regrown.states[k]!); // states[0] is the damaged state
const columns = [x, render(grown), at(0), at(8), at(16), at(32), render(longer.state)];
const grid = tf.reshape(tf.stack(columns, 1), [8 * columns.length, side, side, 1]) as tf.Tensor4D;
savePngGrid(join(opts.out, `${opts.prefix}regrowth.png`), grid, { scale: 3, cols: columns.length, gap: 2 });
console.log(`wrote ${join(opts.out, `${opts.prefix}regrowth.gif`)} (${frames.length} frames) and regrowth.png (columns: digit, grown, damaged, +8, +16, +32, +128 steps)`);
