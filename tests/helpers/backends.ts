/**
 * Test helper: the backends every test runs on. Import this, then
 * `describe.each(BACKENDS)('... on %s', (name) => { beforeAll(() => useBackend(name)); ... })`.
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-wasm';
import { silenceNodeBanner } from '../../src/cli/backend.js';

// The tests pick their backends on purpose: no "install tfjs-node" banner in the log, also
// when a test makes tensors before choosing a backend and tfjs starts the cpu backend by
// itself. The cpu backend's factory is wrapped to silence each instance it makes.
const cpuFactory = tf.findBackendFactory('cpu');
if (cpuFactory && !tf.findBackend('cpu')) {
  tf.removeBackend('cpu');
  tf.registerBackend('cpu', () => {
    const backend = cpuFactory() as tf.KernelBackend;
    silenceNodeBanner(backend);
    return backend;
  }, 1);
}

export const BACKENDS = ['cpu', 'wasm'] as const;
export type BackendName = (typeof BACKENDS)[number];

export async function useBackend(name: BackendName): Promise<void> {
  const ok = await tf.setBackend(name);
  if (!ok) throw new Error(`could not start the ${name} backend`);
  await tf.ready();
  silenceNodeBanner(tf.backend());
}

/** Runs `fn` on a backend and returns plain arrays, so results from two backends can be compared. */
export async function onBackend<T>(name: BackendName, fn: () => T): Promise<T> {
  await useBackend(name);
  return fn();
}

/** Asserts two flat arrays agree to `rtol` relative (with an absolute floor `atol`). */
export function expectClose(actual: ArrayLike<number>, expected: ArrayLike<number>, rtol = 1e-4, atol = 1e-6): void {
  if (actual.length !== expected.length) throw new Error(`length ${actual.length} != ${expected.length}`);
  for (let i = 0; i < actual.length; i++) {
    const a = actual[i]!, e = expected[i]!;
    if (!(Math.abs(a - e) <= atol + rtol * Math.abs(e))) {
      throw new Error(`index ${i}: got ${a}, expected ${e} (rtol ${rtol}, atol ${atol})`);
    }
  }
}
