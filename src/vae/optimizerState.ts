/**
 * The Adam optimiser of a training run and its state as a checkpoint saves it: the
 * iteration count and the first and second moments, read out and put back.
 * @module
 */
import * as tf from '@tensorflow/tfjs-core';
import type { VNCAConfig } from './config.js';

/**
 * Adam's epsilon for a config on the current backend: `adamEpsilon`, or for `'auto'` 1e-8
 * (PyTorch's default and the reference's; tfjs's Adam would take the backend's epsilon, 1e-7
 * on cpu and wasm, which moves clipped steps by up to 1.7%) unless the backend's epsilon is
 * larger than 1e-7, which means 16-bit floats (WebGL without float32 textures: 1e-4), where
 * 1e-8 rounds to 0: then the backend's. @internal
 */
export function adamEpsilon(c: VNCAConfig): number {
  if (c.adamEpsilon !== 'auto') return c.adamEpsilon;
  const backendEpsilon = tf.backend().epsilon();
  return backendEpsilon > 1e-7 ? backendEpsilon : 1e-8;
}

/** A fresh Adam with a config's learning rate, betas and epsilon. @internal */
export function createAdam(c: VNCAConfig): tf.Optimizer {
  return tf.train.adam(c.learningRate, c.adamBeta1, c.adamBeta2, adamEpsilon(c));
}

/**
 * Adam's iteration count and first and second moments (`m`, `v`, in the order of the
 * variables it updates). The moments are the optimiser's own variables: do not dispose them. @internal
 */
export async function readAdamState(optimizer: tf.Optimizer): Promise<{ adamIterations: number; m: tf.Tensor[]; v: tf.Tensor[] }> {
  const [iter, ...moments] = await optimizer.getWeights();
  const adamIterations = (await iter!.tensor.data())[0]!;
  iter!.tensor.dispose();
  const n = moments.length / 2;
  return { adamIterations, m: moments.slice(0, n).map((w) => w.tensor), v: moments.slice(n).map((w) => w.tensor) };
}

/**
 * A new Adam (made by `create`) holding saved moments (`m`, `v` in the order of `vars`; not
 * disposed) and iteration count. @internal
 */
export async function adamFromState(
  create: () => tf.Optimizer, vars: tf.Variable[], state: { adamIterations: number; m: tf.Tensor[]; v: tf.Tensor[] },
): Promise<tf.Optimizer> {
  const optimizer = create();
  const iter = tf.scalar(state.adamIterations, 'int32');
  try {
    // Adam makes its own variables from these (tensor.variable() shares the data), so the caller may dispose them.
    await optimizer.setWeights([
      { name: 'iter', tensor: iter },
      ...state.m.map((t, i) => ({ name: `${vars[i]!.name}/m`, tensor: t })),
      ...state.v.map((t, i) => ({ name: `${vars[i]!.name}/v`, tensor: t })),
    ]);
  } catch (e) {
    optimizer.dispose();
    throw e;
  } finally {
    iter.dispose();
  }
  return optimizer;
}
