import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-layers'; // registers the gradients of tfjs-core's ops
import { useBackend } from './helpers/backends.js';
import {
  dataIdOf, isRecordingGradients, keepingActiveTape, learningRateOf, setLearningRate,
} from '../src/backend/tfjsInternals.js';

/**
 * The tfjs private state src/backend/tfjsInternals.ts reads. If a tfjs upgrade renames or
 * changes one of these, this file fails, naming the field.
 */
describe('tfjs internals', () => {
  beforeAll(() => useBackend('cpu'));

  it('engine.state has gradientDepth, kernelDepth and, under a tape, activeTape', () => {
    const state = (tf.engine() as unknown as { state: Record<string, unknown> }).state;
    expect(typeof state['gradientDepth'], 'engine.state.gradientDepth').toBe('number');
    expect(typeof state['kernelDepth'], 'engine.state.kernelDepth').toBe('number');
    let tape: unknown;
    const g = tf.grad((x: tf.Tensor) => { tape = state['activeTape']; return tf.sum(x); })(tf.ones([2]));
    expect(Array.isArray(tape), 'engine.state.activeTape is the list of taped nodes').toBe(true);
    g.dispose();
  });

  it('isRecordingGradients is true inside tf.grad only', () => {
    expect(isRecordingGradients()).toBe(false);
    let inside = false;
    const g = tf.grad((x: tf.Tensor) => { inside = isRecordingGradients(); return tf.sum(tf.square(x)); })(tf.ones([2]));
    expect(inside).toBe(true);
    g.dispose();
  });

  it('keepingActiveTape puts back the tape a nested tf.grads clears', () => {
    const x = tf.tensor1d([1, 2, 3]);
    // An inner tf.grads inside the outer computation, as a checkpointed rollout's backward pass runs.
    const outer = tf.grad((v: tf.Tensor) => {
      const inner = keepingActiveTape(() => tf.grads((u: tf.Tensor) => tf.sum(tf.mul(u, u)))([v])[0]!);
      return tf.sum(tf.mul(v, inner));
    })(x);
    expect(Array.from(outer.dataSync()).every(Number.isFinite)).toBe(true);
    tf.dispose([x, outer]);
  });

  it('a variable has a dataId that changes on assign', () => {
    const v = tf.variable(tf.zeros([2]));
    const before = dataIdOf(v);
    expect(before, 'tensor.dataId').toBeDefined();
    v.assign(tf.ones([2]));
    expect(dataIdOf(v)).not.toBe(before);
    v.dispose();
  });

  it("Adam keeps its learning rate in the field 'learningRate'", () => {
    const adam = tf.train.adam(0.01);
    expect(learningRateOf(adam), 'AdamOptimizer.learningRate').toBe(0.01);
    setLearningRate(adam, 0.5);
    expect(learningRateOf(adam)).toBe(0.5);
    adam.dispose();
  });
});
