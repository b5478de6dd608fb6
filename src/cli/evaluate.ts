/** `vnca evaluate`: the IWAE lower bound on log p(x), in nats and bits/dim, with a progress bar. */
import { natsToBitsPerDim } from '../index.js';
import { datasetToTensor, loadAmat, loadMnistDigits, type ImageDataset } from '../node.js';
import { useBackend, type BackendName } from './backend.js';
import { loadModel } from './model.js';
import { progress, since } from './progress.js';

/** Flags of `vnca evaluate`. */
export interface EvaluateFlags {
  model: string; data: string; k: number; images: number; chunk: number; seed: number; backend: BackendName;
}

/** Held-out images padded to the model's size: the bundled digits' test split, or an .amat file. */
export function heldOut(data: string, imageSize: number): ImageDataset {
  const pad = (imageSize - 28) / 2;
  if (!Number.isInteger(pad) || pad < 0) throw new RangeError(`the model's images are ${imageSize}x${imageSize}: MNIST digits (28x28) cannot be padded to that size.`);
  return data === 'mnist' ? loadMnistDigits({ split: 'test', pad }) : loadAmat(data, { pad });
}

/** Runs `vnca evaluate`. Returns the mean bound in nats. */
export async function evaluate(o: EvaluateFlags): Promise<number> {
  await useBackend(o.backend);
  const model = await loadModel(o.model);
  const test = heldOut(o.data, model.config.imageSize);
  const n = Math.min(o.images, test.count);
  console.log(`${o.model} (${model.countParams().toLocaleString('en-US')} parameters): IWAE with K = ${o.k} on ${n} of ${test.count} held-out images`);
  const start = performance.now();
  const bar = progress('IWAE', n, 0, ['nats']);
  const bounds = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const x = datasetToTensor(test, i, i + 1);
    bounds[i] = model.evaluate(x, { importanceSamples: o.k, decodeBatchSize: o.chunk, seed: o.seed * 100_003 + i }).logLikelihood;
    x.dispose();
    bar.update(i + 1, { nats: (bounds.subarray(0, i + 1).reduce((a, b) => a + b, 0) / (i + 1)).toFixed(2) });
  }
  bar.stop();
  const mean = bounds.reduce((a, b) => a + b, 0) / n;
  const stdErr = n > 1 ? Math.sqrt(bounds.reduce((a, b) => a + (b - mean) ** 2, 0) / (n - 1) / n) : NaN;
  const dims = model.config.imageSize ** 2 * model.config.imageChannels;
  console.log(`log p(x) >= ${mean.toFixed(2)} nats${n > 1 ? ` ± ${stdErr.toFixed(2)} (standard error)` : ''}, `
    + `${natsToBitsPerDim(mean, dims).toFixed(4)} bits/dim (IWAE, K=${o.k}, ${n} images) in ${since(start)}`);
  model.dispose();
  return mean;
}
