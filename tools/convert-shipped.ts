/**
 * Converts the shipped model trained by tools/train_torch.py (PyTorch reference layout,
 * safetensors) into the library's own format under models/mnist-small/ (model.json +
 * weights.bin), through VNCA.fromPyTorch, and copies the training record beside it.
 *
 *   npx tsx tools/convert-shipped.ts [--from .tmp/shipped] [--to models/mnist-small]
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { Command } from 'commander';
import { VNCA, parseSafetensors } from '../src/index.js';
import { fileSystem, writeFileAtomic } from '../src/node.js';

const opts = new Command()
  .option('--from <dir>', 'training output folder', '.tmp/shipped')
  .option('--to <dir>', 'model folder to write', 'models/mnist-small')
  .parse()
  .opts<{ from: string; to: string }>();

await tf.setBackend('cpu');
const bytes = readFileSync(join(opts.from, 'model.safetensors'));
const meta = parseSafetensors(bytes).metadata;
const model = VNCA.fromPyTorch(bytes, { learningRate: Number(JSON.parse(meta.lr ?? '0.0003')) });
await model.save(fileSystem(opts.to));
const record: Record<string, unknown> = {
  source: 'tools/train_torch.py (PyTorch reference layout), converted by tools/convert-shipped.ts via VNCA.fromPyTorch',
  parameters: model.countParams(),
  config: model.config,
  training: Object.fromEntries(Object.entries(meta).map(([k, v]) => {
    try { return [k, JSON.parse(v)]; } catch { return [k, v]; }
  })),
};
const evalPath = join(opts.from, 'eval.json');
if (existsSync(evalPath)) record.evaluation = JSON.parse(readFileSync(evalPath, 'utf8'));
writeFileAtomic(join(opts.to, 'training.json'), `${JSON.stringify(record, null, 2)}\n`);
console.log(`wrote ${opts.to} (${model.countParams()} parameters, step ${record.training && (record.training as { step?: number }).step})`);
model.dispose();
