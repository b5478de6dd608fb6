/** `vnca sample`: new images from a model, as a PNG grid (and a GIF of their growth). */
import * as tf from '@tensorflow/tfjs-core';
import { saveGif, savePngGrid } from '../node.js';
import { useBackend, type BackendName } from './backend.js';
import { loadModel } from './model.js';
import { since } from './progress.js';
import { tfSeed } from '../core/random.js';

/** Flags of `vnca sample`. */
export interface SampleFlags {
  model: string; n: number; seed: number; scale: number; out: string; gif?: string; backend: BackendName;
}

/** Runs `vnca sample`. */
export async function sample(o: SampleFlags): Promise<void> {
  await useBackend(o.backend);
  const model = await loadModel(o.model);
  const start = performance.now();
  const z = tf.randomNormal([o.n, model.config.zSize], 0, 1, 'float32', tfSeed(o.seed)) as tf.Tensor2D;
  const { state, states } = model.decode(z, { returnStates: true, seed: o.seed });
  const images = model.render(state);
  const { imageSize } = model.config;
  const { width, height } = savePngGrid(o.out, images, { scale: o.scale });
  console.log(`${o.model}: ${o.n} samples in ${since(start)}; wrote ${o.out} (${width}x${height})`);
  if (o.gif) {
    // Every state, small grids shown as blocks at the final size; the finished images held at the end.
    const frames = states.map((s) => tf.tidy(() => {
      const r = model.render(s);
      return (r.shape[1] === imageSize ? r : tf.image.resizeNearestNeighbor(r, [imageSize, imageSize])) as tf.Tensor4D;
    }));
    saveGif(o.gif, frames, { scale: o.scale, delay: 80, lastDelay: 1500 });
    console.log(`wrote ${o.gif} (${frames.length} frames)`);
    tf.dispose(frames);
  }
  tf.dispose([z, state, ...states, images]);
  model.dispose();
}
