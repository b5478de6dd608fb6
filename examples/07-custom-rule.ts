/**
 * 07 — A custom update rule: subclass UpdateRule, train a VNCA with it, save and load it.
 *
 * The update rule is the automaton's "physics": the network every cell runs on its 3x3
 * neighbourhood to change its state. `UpdateRule` (a tfjs-layers Layer) does the
 * bookkeeping; a new rule creates its weights in `build()` and computes the change of
 * every cell in `delta(state)`: `[batch, h, w, channels]` in, the same shape out.
 *
 * The rule below is smaller than the paper's residual rule: one 3x3 convolution to
 * `hidden` channels with a ReLU, then a 1x1 convolution back to the cell channels whose
 * kernel starts at zero (so a fresh automaton leaves its seed unchanged, as in the paper).
 * `fastConv2d` is tf.conv2d with a gradient made of forward convolutions and matMuls,
 * which trains fast on the wasm and cpu backends.
 *
 * The example trains a VNCA with this rule for a few steps, saves it with
 * `model.save(fileSystem(dir))`, loads it back with `VNCA.load(..., { updateRules: [SmallRule] })`
 * and checks that both decode the same z to the same image. Writes <out>/model/ and
 * <out>/samples.png.
 *
 * Usage:
 *   npx tsx examples/07-custom-rule.ts
 *   npx tsx examples/07-custom-rule.ts --steps 200 --z-size 32 --hidden 64
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { join } from 'node:path';
import { Command } from 'commander';
import { UpdateRule, VNCA, fastConv2d, type UpdateRuleOptions } from '../src/index.js';
import { datasetToTensor, fileSystem, loadMnistDigits, savePngGrid } from '../src/node.js';
import { backendOption, float, int, intList, positiveInt, progress, useBackend, type BackendName } from './common.js';

// --- The rule --------------------------------------------------------------------------------
/** delta = conv1x1(relu(conv3x3(state))), the last convolution starting at zero. */
class SmallRule extends UpdateRule {
  static override className = 'example.SmallRule'; // the name saved in model.json
  readonly hidden: number;
  private w: tfl.LayerVariable[] = [];
  constructor(options: UpdateRuleOptions & { hidden?: number }) {
    super(options);
    this.hidden = options.hidden ?? 32;
  }
  override build(): void {
    const [c, h] = [this.channels, this.hidden];
    this.w = [
      this.addWeight('conv3/kernel', [3, 3, c, h], 'float32', tfl.initializers.heNormal({})),
      this.addWeight('conv3/bias', [h], 'float32', tfl.initializers.zeros()),
      this.addWeight('conv1/kernel', [1, 1, h, c], 'float32', tfl.initializers.zeros()),
    ];
    this.built = true;
  }
  delta(state: tf.Tensor4D): tf.Tensor4D {
    const [k3, b3, k1] = this.w.map((v) => v.read());
    const hidden = fastConv2d(state, k3 as tf.Tensor4D, { bias: b3 as tf.Tensor1D, activation: 'relu' });
    return fastConv2d(hidden, k1 as tf.Tensor4D);
  }
  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), hidden: this.hidden }; // what the constructor needs to rebuild it
  }
}
// ---------------------------------------------------------------------------------------------

const opts = backendOption(new Command()
  .name('07-custom-rule')
  .description('Train a VNCA whose update rule is a custom UpdateRule subclass; save and load it.')
  .option('--steps <n>', 'training steps', positiveInt, 20)
  .option('--batch <n>', 'images per step', positiveInt, 8)
  .option('--z-size <n>', 'latent size = channels per cell', positiveInt, 16)
  .option('--hidden <n>', 'hidden channels of the rule', positiveInt, 32)
  .option('--encoder-channels <list>', 'channels of the 5 encoder convolutions', intList, [8, 16, 32, 64, 128])
  .option('--lr <x>', 'Adam learning rate', float, 1e-3)
  .option('--seed <n>', 'seed of the batch sampler', int, 0)
  .option('--out <dir>', 'output folder', 'out/custom-rule'))
  .parse()
  .opts<{
    steps: number; batch: number; zSize: number; hidden: number; encoderChannels: number[]; lr: number; seed: number;
    out: string; backend: BackendName;
  }>();

await useBackend(opts.backend);

// A VNCA with the custom rule; everything else (encoder, growth 2x2 -> 32x32, ELBO) as usual.
const rule = new SmallRule({ channels: opts.zSize, hidden: opts.hidden });
const model = new VNCA({ zSize: opts.zSize, encoderChannels: opts.encoderChannels, learningRate: opts.lr, updateRule: rule });
console.log(`VNCA with ${SmallRule.className} (${rule.countParams().toLocaleString('en-US')} parameters in the rule, `
  + `${model.countParams().toLocaleString('en-US')} in all) on ${tf.getBackend()}`);

// Train a few steps with model.fit (random batches, Adam, the ELBO), showing the loss.
const data = datasetToTensor(loadMnistDigits()); // [~9000, 32, 32, 1], values 0/1
const bar = progress('training', opts.steps, 0, ['loss', 'KL']);
const history = await model.fit(data, {
  steps: opts.steps, batchSize: opts.batch, seed: opts.seed,
  onProgress: (p) => bar.update(p.step, { loss: p.loss.toFixed(1), KL: p.kl.toFixed(1) }),
});
bar.stop();
data.dispose();
console.log(`trained ${opts.steps} steps: loss ${history[0]!.loss.toFixed(1)} -> ${history.at(-1)!.loss.toFixed(1)} nats`);

// Save, and load back: VNCA.load rebuilds the rule from its className and getConfig().
const modelDir = join(opts.out, 'model');
await model.save(fileSystem(modelDir));
const loaded = await VNCA.load(fileSystem(modelDir), { updateRules: [SmallRule] });
console.log(`loaded ${modelDir}: rule ${loaded.rule.getClassName()}, hidden ${(loaded.rule as SmallRule).hidden}`);

// Same weights, same images: decode one z with both models.
const z = tf.randomNormal([8, opts.zSize], 0, 1, 'float32', 1) as tf.Tensor2D;
const [a, b] = [model, loaded].map((m) => tf.tidy(() => m.render(m.decode(z))));
const maxDiff = tf.tidy(() => tf.max(tf.abs(tf.sub(a!, b!))).dataSync()[0]!);
console.log(`largest pixel difference between the trained and the loaded model: ${maxDiff}`);
if (maxDiff > 1e-5) throw new Error('the loaded model differs from the saved one');

savePngGrid(join(opts.out, 'samples.png'), a!, { scale: 3, cols: 8 });
console.log(`wrote ${join(opts.out, 'samples.png')}`);
tf.dispose([z, a!, b!]);
model.dispose();
loaded.dispose();
