/**
 * 05 — Inpainting: fill in the hidden part of a digit.
 *
 * `model.inpaint(x, mask)` (mask `[size, size]` or `[n, size, size]`, 1 = unknown) fills the
 * hidden part in rounds. Round 1 encodes the image with its unknown pixels zeroed and decodes
 * the posterior mean; with a doubling model (`mnist-small`) it then zeroes (damages) the cells
 * of the unknown region and lets the automaton grow new content there for 2 x stepsPerDoubling
 * steps while the known cells are held at their grown values, as a short article about the
 * paper suggests; with a fixed (non-doubling) model such as the default `mnist-regen` round 1
 * is the posterior-mean decode itself (`--steps` > 0 regrows it there too). Each later round
 * encodes the completed image (known pixels plus the previous round's fill), decodes its
 * posterior mean and takes the hidden part from that; the result's hidden part is the mean of
 * rounds 2 to `--iterations` (default 2 for a doubling model, 3 for a fixed one; 1 = round 1
 * alone). The known pixels of the result are the input's.
 *
 * For comparison this example also fills the hidden part from the decode of the posterior
 * mean alone (`inpaintFromPosterior` in common.ts: encode the masked digit, decode, paste),
 * which is what round 1 gives a fixed model. The models and how `measureInpainting` scores
 * both are in docs/pretrained.md; try `--model mnist-small` (see docs/concepts.md).
 *
 * Writes <out>/inpainting.png, one row each: held-out digits; the masked input (unknown part
 * blue); model.inpaint; the posterior decode (new parts tinted blue). Prints how far each
 * is from the hidden truth (mean pixel error and cross-entropy over the hidden pixels).
 *
 * Usage:
 *   npx tsx examples/05-inpaint.ts
 *   npx tsx examples/05-inpaint.ts --mask right --n 10 --iterations 4
 *   npx tsx examples/05-inpaint.ts --model mnist-small --steps 24
 */
import * as tf from '@tensorflow/tfjs-core';
import { join } from 'node:path';
import { Command, Option } from 'commander';
import { datasetToTensor, loadMnistDigits, savePngGrid } from '../src/node.js';
import {
  MASKS, backendOption, halfMask, inpaintFromPosterior, inpaintingRows, int, loadModel, positiveInt,
  since, useBackend, type BackendName, type MaskName,
} from './common.js';

const opts = backendOption(new Command()
  .name('05-inpaint')
  .description('Inpaint the hidden part of held-out MNIST digits with the pretrained VNCA.')
  .option('--model <name|dir>', 'shipped model name or model folder', 'mnist-regen')
  .addOption(new Option('--mask <which>', 'the hidden part').choices([...MASKS]).default('bottom'))
  .option('--n <n>', 'number of held-out digits', positiveInt, 8)
  .option('--steps <n>', 'steps of regrowth of the hidden cells, zeroed first, in round 1 (default: 2 x stepsPerDoubling for a doubling model; 0 for a fixed one, whose round 1 is the posterior-mean decode)', int)
  .option('--iterations <n>', 'rounds of completion: each after the first takes the hidden part from the posterior-mean decode of the completed digit; the result is the mean of rounds 2 on (default: 2 for a doubling model, 3 for a fixed one; 1 = round 1 alone)', positiveInt)
  .option('--seed <n>', 'random seed', int, 0)
  .option('--scale <n>', 'pixels per image pixel', positiveInt, 4)
  .option('--out <dir>', 'output folder', 'out/inpaint'))
  .parse()
  .opts<{ model: string; mask: MaskName; n: number; steps?: number; iterations?: number; seed: number; scale: number; out: string; backend: BackendName }>();

await useBackend(opts.backend);
const model = await loadModel(opts.model);
const size = model.config.imageSize;

// Held-out digits [n, size, size, 1] and the mask [size, size] (1 = unknown), shared by all of them.
const x = datasetToTensor(loadMnistDigits({ split: 'test', pad: (size - 28) / 2 }), 0, opts.n);
const mask = halfMask(opts.mask, size);

const start = performance.now();
const filled = model.inpaint(x, mask, { steps: opts.steps, iterations: opts.iterations, seed: opts.seed });
console.log(`inpainted the ${opts.mask} half of ${opts.n} held-out digits in ${since(start)}`);
const decoded = inpaintFromPosterior(model, x, mask);

// How close is each fill to the hidden truth, over the hidden pixels: the mean |p - x|, and
// the cross-entropy -[x log p + (1 - x) log(1 - p)] in nats per pixel (lower is better for both).
const score = (p: tf.Tensor4D) => tf.tidy(() => {
  const m = tf.reshape(mask, [1, size, size, 1]);
  const hiddenPixels = opts.n * tf.sum(m).dataSync()[0]!;
  const meanOverHidden = (t: tf.Tensor) => tf.sum(tf.mul(t, m)).dataSync()[0]! / hiddenPixels;
  const q = tf.clipByValue(p, 1e-4, 1 - 1e-4);
  const logLik = tf.add(tf.mul(x, tf.log(q)), tf.mul(tf.sub(1, x), tf.log(tf.sub(1, q))));
  return `mean |p - x| ${meanOverHidden(tf.abs(tf.sub(p, x))).toFixed(3)}, cross-entropy ${(-meanOverHidden(logLik)).toFixed(3)} nats/pixel`;
});
console.log(`hidden part, model.inpaint:   ${score(filled)}`);
console.log(`hidden part, posterior decode: ${score(decoded)}`);

const masks = tf.tidy(() => tf.tile(tf.expandDims(mask, 0), [opts.n, 1, 1]) as tf.Tensor3D);
const grid = inpaintingRows(x, masks, [filled, decoded]);
const path = join(opts.out, 'inpainting.png');
savePngGrid(path, grid, { scale: opts.scale, cols: opts.n });
console.log(`wrote ${path}: original / masked input / model.inpaint / posterior decode`);

tf.dispose([x, mask, masks, filled, decoded, grid]);
model.dispose();
