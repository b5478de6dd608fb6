/** Test helper: small model artifacts for the save/load fault and security tests. */
import type * as tf from '@tensorflow/tfjs-core';

/** Artifacts of a model with weights `a` [3, 4] and `b` [5], every value equal to `seed`. */
export function faultArtifacts(seed: number): tf.io.ModelArtifacts {
  const weightSpecs: tf.io.WeightsManifestEntry[] = [
    { name: 'a', shape: [3, 4], dtype: 'float32' },
    { name: 'b', shape: [5], dtype: 'float32' },
  ];
  return {
    modelTopology: { format: 'test', seed },
    format: 'test',
    generatedBy: 'vnca tests',
    weightSpecs,
    weightData: new Float32Array(17).fill(seed).buffer,
  };
}
