/** `vnca regrow`: damage grown digits and write a GIF (and a PNG strip) of their regrowth. */
import * as tf from '@tensorflow/tfjs-core';
import { datasetToTensor, saveGif, savePngGrid } from '../node.js';
import { useBackend, type BackendName } from './backend.js';
import { heldOut } from './evaluate.js';
import { loadModel } from './model.js';
import { since } from './progress.js';
import { regrowFrames } from './regrow.js';

/** Flags of `vnca regrow`. */
export interface RegrowFlags {
  model: string; source: 'samples' | 'digits'; n: number; shape: 'square' | 'circle'; size: number; steps?: number;
  seed: number; scale: number; out: string; png?: string; backend: BackendName;
}

/** Runs `vnca regrow`. */
export async function regrow(o: RegrowFlags): Promise<void> {
  await useBackend(o.backend);
  const model = await loadModel(o.model);
  const start = performance.now();
  const images = o.source === 'digits' ? datasetToTensor(heldOut('mnist', model.config.imageSize), 0, o.n) : undefined;
  const { frames, steps } = regrowFrames(model, { n: o.n, images, shape: o.shape, size: o.size, steps: o.steps, seed: o.seed });
  images?.dispose();
  const what = o.shape === 'square' ? `a ${o.size}x${o.size}-cell square` : `a circle of diameter ${o.size} cells`;
  console.log(`${o.model}: grew ${o.n} ${o.source === 'samples' ? 'sample' : 'held-out digit'}${o.n === 1 ? '' : 's'}, damaged ${what}, ran ${steps} steps in ${since(start)}`);
  // Hold the grown digits a moment before the damage, and the last frame at the end.
  saveGif(o.out, [frames[0]!, frames[0]!, frames[0]!, ...frames], { scale: o.scale, cols: o.n, gap: 2, delay: 150, lastDelay: 2000 });
  console.log(`wrote ${o.out} (${frames.length + 3} frames)`);
  if (o.png) {
    const grid = tf.tidy(() => {
      const stacked = tf.stack(frames, 1); // [n, frames, h, w, c]
      const [n, f, h, w, c] = stacked.shape;
      return tf.reshape(stacked, [n! * f!, h!, w!, c!]) as tf.Tensor4D;
    });
    savePngGrid(o.png, grid, { scale: o.scale, cols: frames.length });
    console.log(`wrote ${o.png} (one row per digit: grown, damaged, then every step)`);
    grid.dispose();
  }
  tf.dispose(frames);
  model.dispose();
}
