/**
 * Backend set-up for the `vnca` command and the examples: `--backend wasm` (the default;
 * WebAssembly with SIMD, several times faster) or `--backend cpu` (plain JavaScript, the
 * reference for correctness). Each backend package is imported only when chosen, so an
 * application needs only the one it uses; a missing one is a named error saying what to
 * install.
 */
import * as tf from '@tensorflow/tfjs-core';
import { Option, type Command } from 'commander';
import { MissingPeerDependencyError } from '../node.js';
import { enableWasmTraining } from '../backend/wasm/register.js';
import { enableRelaxedSimdKernels } from '../backend/relaxed/relaxedMatMul.js';

/** The backends the command line can run on. */
export const BACKENDS = ['wasm', 'cpu'] as const;
/** A backend name. */
export type BackendName = (typeof BACKENDS)[number];

const PACKAGES: Record<BackendName, { pkg: string; load: () => Promise<unknown>; what: string }> = {
  wasm: { pkg: '@tensorflow/tfjs-backend-wasm', load: () => import('@tensorflow/tfjs-backend-wasm'), what: 'WebAssembly with SIMD' },
  cpu: { pkg: '@tensorflow/tfjs-backend-cpu', load: () => import('@tensorflow/tfjs-backend-cpu'), what: 'plain JavaScript' },
};

/** Adds `--backend wasm|cpu` (default wasm) to a command. */
export function backendOption(program: Command): Command {
  return program.addOption(
    new Option('--backend <name>', 'tfjs backend').choices([...BACKENDS]).default('wasm'),
  );
}

/**
 * Imports a backend's package, starts the backend and waits until it is ready, then prints
 * one line naming it (unless `quiet`).
 *
 * We choose the backend on purpose, so tfjs-backend-cpu's "looks like you are running
 * TensorFlow.js in Node.js ... install tfjs-node" banner (printed by the cpu backend on its
 * first use in Node) is turned off for the backend instance we start, and nothing else.
 *
 * @throws MissingPeerDependencyError when the backend's package is not installed.
 */
export async function useBackend(name: BackendName, options: { quiet?: boolean } = {}): Promise<void> {
  const { pkg, load, what } = PACKAGES[name];
  try {
    await load();
  } catch (e) {
    const code = (e as { code?: string }).code;
    if ((code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND') && String((e as Error).message).includes(pkg)) {
      throw new MissingPeerDependencyError('useBackend', pkg, '^4.22.0', `the ${name} backend`);
    }
    throw e;
  }
  if (!(await tf.setBackend(name))) throw new Error(`could not start the ${name} backend`);
  await tf.ready();
  silenceNodeBanner(tf.backend());
  // On wasm, the training kernels tfjs-backend-wasm lacks, then the relaxed-SIMD (FMA) matMul
  // and convolution kernels where the runtime has relaxed SIMD (Node 22+, Chromium 114+).
  const fma = name === 'wasm' ? (enableWasmTraining(), await enableRelaxedSimdKernels()) : false;
  if (!options.quiet) console.log(`tfjs backend: ${name} (${pkg}, ${what}${fma ? ', relaxed-SIMD FMA kernels' : ''})`);
}

/**
 * Turns off tfjs-backend-cpu's one-time "install tfjs-node" banner on this backend instance
 * (its `firstUse` flag; other backends have none and are left as they are).
 */
export function silenceNodeBanner(backend: tf.KernelBackend): void {
  const b = backend as unknown as { firstUse?: boolean };
  if (typeof b.firstUse === 'boolean') b.firstUse = false;
}
