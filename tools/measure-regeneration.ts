/**
 * The regeneration and inpainting measures (measureRegeneration, measureInpainting) of a model
 * on the held-out digits, written as JSON (the numbers of docs/pretrained.md):
 *
 *   npx tsx tools/measure-regeneration.ts --model mnist-regen --images 999 --out .tmp/regen-torch/regeneration.json
 *
 * --model is a pretrained name (see PRETRAINED_MODELS) or a model folder.
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-wasm';
import { Command } from 'commander';
import { enableRelaxedSimdKernels, measureInpainting, measureRegeneration } from '../src/index.js';
import { loadModel } from '../src/cli/model.js';
import { datasetToTensor, loadMnistDigits, writeFileAtomic } from '../src/node.js';

const program = new Command()
  .option('--model <name|dir>', 'pretrained name or model folder', 'mnist-regen')
  .option('--images <n>', 'held-out digits (from the first)', (v) => Number(v), 999)
  .option('--seed <n>', 'seed of the damage positions', (v) => Number(v), 0)
  .option('--iterations <n>', 'inpainting rounds (default: model.inpaint\'s own)', (v) => Number(v))
  .option('--inpaint-steps <n>', 'regrowth steps of inpainting\'s first round (default: model.inpaint\'s own)', (v) => Number(v))
  .option('--inpaint-damage', 'inpainting: zero the hole\'s cells before its first-round regrowth (default: model.inpaint\'s own)')
  .option('--no-inpaint-damage', 'inpainting: regrow the hole without zeroing its cells first')
  .option('--out <file>', 'JSON output (default: print only)')
  .parse();
const opts = program.opts<{ model: string; images: number; seed: number; iterations?: number; inpaintSteps?: number; inpaintDamage: boolean; out?: string }>();
// Only an explicit --inpaint-damage / --no-inpaint-damage overrides inpaint's per-model default.
const inpaintDamage = program.getOptionValueSource('inpaintDamage') === 'cli' ? opts.inpaintDamage : undefined;

await tf.setBackend('wasm');
await enableRelaxedSimdKernels(); // FMA kernels where the runtime has relaxed SIMD (Node 22+): same numbers, faster
const model = await loadModel(opts.model); // a shipped model's name or a folder, as the vnca command takes
const pad = (model.config.imageSize - 28) / 2;
const test = loadMnistDigits({ split: 'test', pad });
const x = datasetToTensor(test, 0, Math.min(opts.images, test.count));
const start = performance.now();
const r = measureRegeneration(model, x, { seed: opts.seed });
const ip = measureInpainting(model, x, {
  seed: opts.seed, iterations: opts.iterations, damage: inpaintDamage,
  steps: opts.inpaintSteps === undefined ? undefined : [opts.inpaintSteps],
});
const result = {
  model: opts.model,
  images: x.shape[0],
  data: `loadMnistDigits test split (pad ${pad}), first ${x.shape[0]} digits`,
  damage: `a ${r.size}x${r.size} square of cells zeroed at a random position inside the grid (seed ${opts.seed}); z = posterior mean`,
  undamaged: r.undamaged,
  damaged: r.damaged,
  regrown: r.regrown.map((g) => ({ steps: g.steps, logLikelihood: g.logLikelihood, recovery: g.recovery })),
  inpainting: {
    hole: `${ip.size}x${ip.size} square of pixels`,
    options: `iterations ${opts.iterations ?? 'default'}, steps ${opts.inpaintSteps ?? 'default'}, damage ${inpaintDamage ?? 'default'}`,
    inpainted: ip.inpainted,
    posteriorMean: ip.posteriorMean,
  },
  seconds: (performance.now() - start) / 1000,
};
const text = `${JSON.stringify(result, null, 2)}\n`;
if (opts.out) writeFileAtomic(opts.out, text);
console.log(text);
