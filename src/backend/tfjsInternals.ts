/**
 * Every read or write of TensorFlow.js private state, in one place. tfjs does not promise
 * these fields across versions; tests/tfjsInternals.test.ts checks each one against the
 * installed tfjs, so an upgrade that changes them fails there, loudly, rather than as a
 * wrong gradient somewhere else.
 * @module
 */
import * as tf from '@tensorflow/tfjs-core';

/** The engine state fields read here (tfjs-core 4.22 `EngineState`). */
interface EngineState {
  gradientDepth: number;
  kernelDepth: number;
  activeTape: unknown;
}

const engineState = (): EngineState => (tf.engine() as unknown as { state: EngineState }).state;

/** Whether kernels run now are recorded on a gradient tape (inside `tf.grad` and not inside a kernel). @internal */
export function isRecordingGradients(): boolean {
  const state = engineState();
  return state.gradientDepth > 0 && state.kernelDepth === 0;
}

/**
 * Runs `f` and then puts back the gradient tape that was active before it. tfjs 4.22 shares
 * one tape between nested gradient computations and clears it when the inner one ends. @internal
 */
export function keepingActiveTape<T>(f: () => T): T {
  const state = engineState();
  const outer = state.activeTape;
  try {
    return f();
  } finally {
    state.activeTape = outer;
  }
}

/** The identity of a tensor's data: a variable's changes on every `assign`. @internal */
export function dataIdOf(t: tf.Tensor): unknown {
  return (t as unknown as { dataId: unknown }).dataId;
}

/** The learning rate of a tfjs Adam optimiser (a protected field). @internal */
export function learningRateOf(optimizer: tf.Optimizer): number {
  return (optimizer as unknown as { learningRate: number }).learningRate;
}

/** Sets the learning rate of a tfjs Adam optimiser (a protected field). @internal */
export function setLearningRate(optimizer: tf.Optimizer, learningRate: number): void {
  (optimizer as unknown as { learningRate: number }).learningRate = learningRate;
}
