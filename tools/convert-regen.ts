/**
 * Converts the damage-trained non-doubling VNCA trained by tools/train_regen_torch.py
 * (weights.safetensors under vnca's weight names and layouts, the config in its metadata)
 * into the library's format under models/mnist-regen/ (model.json + weights.bin), with
 * training.json (config, step, wall time) and the evaluation records found in the folder.
 *
 *   npx tsx tools/convert-regen.ts [--from .tmp/regen-torch] [--to models/mnist-regen]
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Command } from 'commander';
import { NON_DOUBLING_MNIST, VNCA, parseSafetensors } from '../src/index.js';
import { fileSystem, writeFileAtomic } from '../src/node.js';

const opts = new Command()
  .option('--from <dir>', 'training output folder', '.tmp/regen-torch')
  .option('--to <dir>', 'model folder to write', 'models/mnist-regen')
  .option('--state-bound <x>', "the trainer's --state-bound (its default: 10), kept as the model's stateBound so that vnca's own trainer continues with the same objective", Number, 10)
  .parse()
  .opts<{ from: string; to: string; stateBound: number }>();

await tf.setBackend('cpu');
const st = parseSafetensors(readFileSync(join(opts.from, 'weights.safetensors')));
const config = JSON.parse(st.metadata.config!);
const model = new VNCA({ ...NON_DOUBLING_MNIST, ...config, stateBound: opts.stateBound });
const named = model.namedWeights();
const names = new Set(named.map((w) => w.name));
for (const key of st.tensors.keys()) if (!names.has(key)) throw new Error(`${key}: not a weight of the model`);
for (const { name, variable } of named) {
  const t = st.tensors.get(name);
  if (!t) throw new Error(`${name}: missing from ${opts.from}/weights.safetensors`);
  if (t.shape.join() !== variable.shape.join()) throw new Error(`${name}: shape [${t.shape}] != [${variable.shape}]`);
  variable.assign(tf.tensor(t.data, t.shape));
}
await model.save(fileSystem(opts.to));
const record: Record<string, unknown> = {
  source: 'tools/train_regen_torch.py, converted by tools/convert-regen.ts',
  parameters: model.countParams(),
  config: model.config,
  training: { step: Number(st.metadata.step), seconds: Number(st.metadata.seconds), ...config },
};
for (const file of ['eval.json', 'regeneration.json', 'finetune.json']) {
  const path = join(opts.from, file);
  if (existsSync(path)) record[file.replace('.json', '')] = JSON.parse(readFileSync(path, 'utf8'));
}
writeFileAtomic(join(opts.to, 'training.json'), `${JSON.stringify(record, null, 2)}\n`);
console.log(`wrote ${opts.to} (${model.countParams()} parameters, step ${st.metadata.step})`);
model.dispose();
