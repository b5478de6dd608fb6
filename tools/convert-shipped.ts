/**
 * Converts the shipped model trained by tools/train_torch.py (PyTorch reference layout,
 * safetensors) into the library's own format under models/mnist-small/ (model.json +
 * weights.bin), through VNCA.fromPyTorch, and copies the training record beside it.
 * An evaluation split over processes (`train_torch.py --eval-only --eval-offset N` writes
 * eval.json for offset 0 and eval-N.json for the others) is merged: the per-image bounds
 * are joined in test order, and the mean and its standard error are computed over all of
 * them. Evaluations of other weights (another step) are refused, not copied.
 *
 *   npx tsx tools/convert-shipped.ts [--from .tmp/shipped] [--to models/mnist-small]
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { readFileSync, readdirSync } from 'node:fs';
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
// Merged (and checked) before anything is written: a refused evaluation leaves --to as it was.
const evaluation = mergeEvaluations(opts.from, Number(meta.step));
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
if (evaluation) record.evaluation = evaluation;
writeFileAtomic(join(opts.to, 'training.json'), `${JSON.stringify(record, null, 2)}\n`);
console.log(`wrote ${opts.to} (${model.countParams()} parameters, step ${record.training && (record.training as { step?: number }).step})`);
model.dispose();

interface Evaluation {
  step: number; iwae_k: number; test_images: number; test_total: number; eval_offset: number;
  log_px_lower_bound_nats: number; std_err: number | null; eval_seconds: number; per_image: number[]; data?: string;
  [key: string]: unknown;
}

/** eval.json and eval-<offset>.json of `dir`, joined into one record; undefined when none. */
function mergeEvaluations(dir: string, step: number): Evaluation | undefined {
  const parts = readdirSync(dir).filter((f) => /^eval(-\d+)?\.json$/.test(f))
    .map((f) => ({ file: f, ...(JSON.parse(readFileSync(join(dir, f), 'utf8')) as Evaluation) }))
    .sort((a, b) => a.eval_offset - b.eval_offset);
  if (parts.length === 0) return undefined;
  for (const p of parts) {
    if (p.step !== step || p.iwae_k !== parts[0].iwae_k || !Array.isArray(p.per_image)) {
      throw new Error(`convert-shipped: ${join(dir, p.file)} evaluates step ${p.step} with K=${p.iwae_k}; `
        + `expected step ${step} (model.safetensors) and K=${parts[0].iwae_k} like the other parts, with per_image`);
    }
  }
  let next = 0;
  for (const p of parts) {
    if (p.eval_offset !== next) {
      throw new Error(`convert-shipped: the evaluations in ${dir} cover test images up to ${next}, `
        + `then ${p.file} starts at ${p.eval_offset}; expected contiguous parts from 0`);
    }
    next += p.per_image.length;
  }
  if (parts.length === 1) return parts[0];
  const all = parts.flatMap((p) => p.per_image);
  const mean = all.reduce((a, b) => a + b, 0) / all.length;
  // Sample standard deviation (n - 1), as torch's std() in train_torch.py.
  const sd = Math.sqrt(all.reduce((a, b) => a + (b - mean) ** 2, 0) / (all.length - 1));
  return {
    ...parts[0],
    test_images: all.length,
    log_px_lower_bound_nats: mean,
    std_err: sd / Math.sqrt(all.length),
    eval_seconds: parts.reduce((a, p) => a + p.eval_seconds, 0),
    per_image: all,
    data: `${parts[0].data ?? ''}; ${all.length} images in ${parts.length} runs (offsets ${parts.map((p) => p.eval_offset).join(', ')}), merged by tools/convert-shipped.ts`,
  };
}
