/**
 * Node side of the pretrained-model registry: finds the `models/` folder of the installed
 * package (from the built `dist/` or, in a clone, from `src/`).
 */
import type * as tf from '@tensorflow/tfjs-core';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { VncaError } from '../core/errors.js';
import { fileSystem } from '../node/fileSystem.js';
import { checkPretrainedName, type PretrainedName } from './registry.js';

/**
 * Folder of a shipped model inside the installed package (`<package>/models/<name>`).
 *
 * @param name A name of {@link index!PRETRAINED_MODELS}.
 * @returns Absolute path of the folder holding `model.json` and `weights.bin`.
 * @category Pretrained
 */
export function pretrainedPath(name: PretrainedName): string {
  const fn = 'pretrainedPath';
  checkPretrainedName(name, fn);
  // Walk up from this module (dist/ or src/pretrained/) to the package root that ships models/.
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    const candidate = join(dir, 'models', name);
    if (existsSync(join(candidate, 'model.json')) && existsSync(join(dir, 'package.json'))) return candidate;
    const up = dirname(dir);
    if (up === dir) break;
    dir = up;
  }
  throw new VncaError(fn, 'name', `names a shipped model, but models/${name}/model.json was not found above ${dirname(fileURLToPath(import.meta.url))}; is the package installed with its models/ folder?`);
}

/**
 * A shipped model as a tfjs IO handler: `await VNCA.load(pretrained('mnist-regen'))`.
 *
 * @param name A name of {@link index!PRETRAINED_MODELS}: `'mnist-small'` (samples, interpolation) or
 *   `'mnist-regen'` (regeneration, inpainting).
 * @returns A read-only handler of the model's folder.
 * @example
 * ```ts
 * import { VNCA } from 'vnca';
 * import { pretrained } from 'vnca/node';
 * const model = await VNCA.load(pretrained('mnist-regen'));
 * const digits = model.sample(8);
 * ```
 * @category Pretrained
 */
export function pretrained(name: PretrainedName): tf.io.IOHandler {
  const handler = fileSystem(pretrainedPath(name));
  return { load: handler.load!.bind(handler) };
}
