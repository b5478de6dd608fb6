/**
 * The pretrained models shipped inside the package (folder `models/<name>/` holding
 * `model.json` + `weights.bin`), by name. In Node, `pretrained(name)` from `vnca/node` gives
 * an IO handler for the installed copy; in a browser, serve the package's `models/` folder
 * (or point at a CDN copy of the package) and load `pretrainedUrl(name, baseUrl)`.
 */
import { VncaError, describe } from '../core/errors.js';

/** What a shipped model is and what it is for. @category Pretrained */
export interface PretrainedInfo {
  /** One line: the model and what to use it for. */
  description: string;
  /** Growth scheme of the decoder. */
  growth: 'doubling' | 'fixed';
  /** Side of its square binary images, pixels. */
  imageSize: number;
}

/**
 * The shipped models (docs/pretrained.md has a card for each: config, data, steps, wall
 * time, nats, recovery, the command that made it).
 *
 * - `mnist-small`: the doubling VNCA (2x2 seed, four doublings), zSize 64, on 32x32 binary
 *   digits: the better one for samples, reconstructions and interpolation.
 * - `mnist-regen`: the non-doubling VNCA trained from a sample pool with damage, on 28x28
 *   binary digits: the one that heals, for regeneration and inpainting.
 *
 * @category Pretrained
 */
export const PRETRAINED_MODELS = Object.freeze({
  'mnist-small': {
    description: 'doubling VNCA (zSize 64) for 32x32 binary MNIST digits: samples, reconstructions, interpolation',
    growth: 'doubling',
    imageSize: 32,
  },
  'mnist-regen': {
    description: 'non-doubling VNCA trained from a sample pool with damage, 28x28 binary MNIST digits: regeneration, inpainting',
    growth: 'fixed',
    imageSize: 28,
  },
} as const satisfies Record<string, PretrainedInfo>);

/** Name of a shipped model. @category Pretrained */
export type PretrainedName = keyof typeof PRETRAINED_MODELS;

/** Names of the shipped models. @category Pretrained */
export const PRETRAINED_NAMES = Object.freeze(Object.keys(PRETRAINED_MODELS)) as readonly PretrainedName[];

/**
 * Checks a model name against the registry.
 * @internal
 */
export function checkPretrainedName(name: unknown, fn: string): asserts name is PretrainedName {
  if (typeof name !== 'string' || !Object.prototype.hasOwnProperty.call(PRETRAINED_MODELS, name)) {
    throw new VncaError(fn, 'name', `must be one of ${PRETRAINED_NAMES.map((n) => `'${n}'`).join(', ')}, but got ${describe(name)}.`);
  }
}

/**
 * URL of a shipped model's `model.json`, for `VNCA.load` in a browser: the package's
 * `models/` folder served at `baseUrl` (for example copied next to your page, or a CDN copy
 * of the package: `https://cdn.jsdelivr.net/npm/vnca@<version>/models`).
 *
 * @param name A name of {@link PRETRAINED_MODELS}.
 * @param baseUrl Where the `models/` folder is served (absolute URL or path, with or without a trailing slash).
 * @returns `<baseUrl>/<name>/model.json`.
 * @example
 * ```ts
 * const model = await VNCA.load(pretrainedUrl('mnist-regen', '/models'));
 * ```
 * @category Pretrained
 */
export function pretrainedUrl(name: PretrainedName, baseUrl: string): string {
  const fn = 'pretrainedUrl';
  checkPretrainedName(name, fn);
  if (typeof baseUrl !== 'string' || baseUrl.length === 0) {
    throw new VncaError(fn, 'baseUrl', `must be a non-empty URL or path of the served models/ folder, but got ${describe(baseUrl)}.`);
  }
  return `${baseUrl.replace(/\/+$/, '')}/${name}/model.json`;
}
