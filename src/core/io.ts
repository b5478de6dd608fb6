/**
 * Saving and loading through tfjs IO handlers, shared by the model classes. @internal
 * @module
 */
import * as tf from '@tensorflow/tfjs-core';
import { VncaError, describe } from './errors.js';

/** A weight's name relative to its layer: `rule_3/conv_in/kernel` → `conv_in/kernel`. @internal */
export function relativeWeightName(layerName: string, originalName: string): string {
  const key = `${layerName}/`;
  const i = originalName.lastIndexOf(key);
  return i >= 0 ? originalName.slice(i + key.length) : originalName;
}

/**
 * The IO handler for a `save` target or a `load` source: a URL with a registered tfjs scheme
 * (http(s) URLs also when a bundler dropped tfjs-core's router registration) or an
 * `IOHandler` with the needed method. Throws a {@link VncaError} naming `fn` otherwise. @internal
 */
export function resolveHandler(target: unknown, kind: 'save' | 'load', fn: string): tf.io.IOHandler {
  const arg = kind === 'save' ? 'target' : 'source';
  if (typeof target === 'string') {
    const handlers = kind === 'save' ? tf.io.getSaveHandlers(target) : tf.io.getLoadHandlers(target);
    if (handlers.length === 0 && /^https?:\/\//i.test(target)) return tf.io.http(target);
    if (handlers.length === 0) {
      throw new VncaError(fn, arg, `must be a URL with a registered tfjs IO scheme (localstorage://, indexeddb://, downloads://, http(s)://) or an IOHandler, but got ${describe(target)}; on Node use fileSystem(dir) from 'vnca/node'.`);
    }
    return handlers[0]!;
  }
  if (typeof target !== 'object' || target === null || typeof (target as tf.io.IOHandler)[kind] !== 'function') {
    throw new VncaError(fn, arg, `must be a URL string or a tf.io.IOHandler with a ${kind}() method, but got ${describe(target)}.`);
  }
  return target as tf.io.IOHandler;
}

/** The public save method of each format, for error messages. */
const SAVE_FN: Record<string, string> = { vnca: 'VNCA.save', 'vnca-growing-nca': 'GrowingNCA.save' };

/**
 * Saves named float32 tensors and a JSON topology (which carries `format`) through `handler`.
 * Refuses, before the handler sees anything, weights that hold NaN or ±Infinity: a save never
 * replaces a good checkpoint with a poisoned one. @internal
 */
export async function saveArtifacts(
  handler: tf.io.IOHandler, topology: { format: string } & Record<string, unknown>, tensors: { name: string; tensor: tf.Tensor }[],
  fn = SAVE_FN[topology.format] ?? 'save',
): Promise<tf.io.SaveResult> {
  const { data, specs } = await tf.io.encodeWeights(tensors);
  checkWeightData(specs, data, fn, 'weights');
  return handler.save!({
    modelTopology: topology as unknown as tf.io.ModelJSON['modelTopology'],
    format: topology.format,
    generatedBy: 'vnca',
    weightSpecs: specs,
    weightData: data,
  });
}

/** Bytes per element of the weight dtypes tfjs writes (`tf.io.DTYPE_VALUE_SIZE_MAP`). @internal */
const DTYPE_BYTES: Record<string, number> = { float32: 4, int32: 4, bool: 1, float16: 2, uint8: 1, int16: 2, complex64: 8 };

/** Dimensions above this are refused (tfjs tensors index with 32-bit ints). */
const MAX_DIM = 2 ** 31 - 1;

/**
 * Checks the weight specs of a model file before any byte is read or any tensor made: an
 * array of `{ name, shape, dtype }` with unique non-empty names, non-negative integer
 * dimensions, dtype `float32` (vnca saves nothing else, and reading `int32` over float32
 * bytes gives garbage) and no `quantization` (vnca never writes quantised weights).
 *
 * @param specs What the file declares (e.g. `artifacts.weightSpecs`).
 * @param fn The public function to name in the error.
 * @param arg The argument to name in the error. Default `'weightSpecs'`.
 * @returns The specs, typed, and the bytes they need.
 * @throws VncaError naming the first spec that is wrong.
 * @internal
 */
export function checkWeightSpecs(specs: unknown, fn: string, arg = 'weightSpecs'): { specs: tf.io.WeightsManifestEntry[]; bytes: number } {
  if (!Array.isArray(specs)) throw new VncaError(fn, arg, `must be an array of weight specs, but got ${describe(specs)}.`);
  const names = new Set<string>();
  let bytes = 0;
  specs.forEach((s: unknown, i) => {
    const at = `${arg}[${i}]`;
    if (typeof s !== 'object' || s === null || Array.isArray(s)) throw new VncaError(fn, at, `must be an object { name, shape, dtype }, but got ${describe(s)}.`);
    const { name, shape, dtype, quantization } = s as Record<string, unknown>;
    if (typeof name !== 'string' || name.length === 0) throw new VncaError(fn, `${at}.name`, `must be a non-empty string, but got ${describe(name)}.`);
    if (names.has(name)) throw new VncaError(fn, `${at}.name`, `must be unique, but '${name}' appears twice.`);
    names.add(name);
    if (!Array.isArray(shape) || !shape.every((d) => Number.isInteger(d) && d >= 0 && d <= MAX_DIM)) {
      throw new VncaError(fn, `${at}.shape`, `must be an array of integers in [0, ${MAX_DIM}], but weight '${name}' has ${describe(shape)}.`);
    }
    if (quantization !== undefined && quantization !== null) {
      throw new VncaError(fn, `${at}.quantization`, `must be absent (vnca reads float32 weights only), but weight '${name}' is quantised.`);
    }
    if (dtype !== 'float32') {
      throw new VncaError(fn, `${at}.dtype`, `must be 'float32' (vnca saves float32 only), but weight '${name}' declares ${describe(dtype)}.`);
    }
    bytes += DTYPE_BYTES[dtype]! * (shape as number[]).reduce((p, d) => p * d, 1);
    if (!Number.isSafeInteger(bytes)) throw new VncaError(fn, `${at}.shape`, `must describe a size that fits in memory, but weight '${name}' has ${describe(shape)}.`);
  });
  return { specs: specs as tf.io.WeightsManifestEntry[], bytes };
}

/**
 * Throws unless `data` holds exactly the bytes `specs` need and every value is finite, naming
 * the first weight that holds NaN or ±Infinity. One pass over the bytes, no copy.
 *
 * @param specs Float32 specs, checked by {@link checkWeightSpecs}.
 * @param data The weight bytes.
 * @param fn The public function to name in the error.
 * @param arg The argument to name in the error. Default `'weightData'`.
 * @internal
 */
export function checkWeightData(specs: tf.io.WeightsManifestEntry[], data: ArrayBuffer, fn: string, arg = 'weightData'): void {
  const want = specs.reduce((a, s) => a + 4 * s.shape.reduce((p, d) => p * d, 1), 0);
  if (data.byteLength !== want) throw new VncaError(fn, arg, `must hold ${want} bytes for its weight specs, but got ${data.byteLength}.`);
  let offset = 0;
  for (const s of specs) {
    const n = s.shape.reduce((p, d) => p * d, 1);
    const values = new Float32Array(data, offset, n);
    for (let i = 0; i < n; i++) {
      const v = values[i]!;
      // v - v is 0 for finite v and NaN for NaN and ±Infinity.
      if (v - v !== 0) throw new VncaError(fn, arg, `must be finite, but '${s.name}' holds ${v} at index ${i}.`);
    }
    offset += 4 * n;
  }
}

/**
 * Checks model artifacts as a load handler returns them, before anything is built from them:
 * an object with a `modelTopology` object, valid float32 `weightSpecs` (see
 * {@link checkWeightSpecs}) and `weightData` that holds exactly their bytes, all finite.
 *
 * @param artifacts What `handler.load()` returned.
 * @param fn The public function to name in the error (e.g. `'VNCA.load'`).
 * @returns The topology, the specs and the weight bytes as one buffer.
 * @throws VncaError naming what is wrong.
 * @internal
 */
export function checkModelArtifacts(artifacts: unknown, fn: string): {
  topology: Record<string, unknown>; specs: tf.io.WeightsManifestEntry[]; data: ArrayBuffer;
} {
  if (typeof artifacts !== 'object' || artifacts === null || Array.isArray(artifacts)) {
    throw new VncaError(fn, 'artifacts', `must be an object with modelTopology, weightSpecs and weightData, but got ${describe(artifacts)}.`);
  }
  const a = artifacts as tf.io.ModelArtifacts;
  const topology = a.modelTopology as unknown;
  if (typeof topology !== 'object' || topology === null || Array.isArray(topology) || topology instanceof ArrayBuffer) {
    throw new VncaError(fn, 'artifacts.modelTopology', `must be a JSON object, but got ${describe(topology)}.`);
  }
  const { specs } = checkWeightSpecs(a.weightSpecs, fn, 'artifacts.weightSpecs');
  const parts = Array.isArray(a.weightData) ? a.weightData : [a.weightData];
  if (!parts.every((p) => p instanceof ArrayBuffer)) {
    throw new VncaError(fn, 'artifacts.weightData', `must be an ArrayBuffer or an array of them, but got ${describe(a.weightData)}.`);
  }
  const data = parts.length === 1 ? parts[0] as ArrayBuffer : tf.io.concatenateArrayBuffers(parts as ArrayBuffer[]);
  checkWeightData(specs, data, fn, 'artifacts.weightData');
  return { topology: topology as Record<string, unknown>, specs, data };
}

/**
 * Checks sizes that a saved config declares (e.g. `zSize`, `hidden`, `encoderChannels`)
 * against the weights that come with it, before a model is built from the config: a layer
 * of width n has a weight with a dimension n, so a size larger than every dimension of every
 * weight cannot be right, and building it could allocate far more memory than the file holds
 * (a zSize of 8192 over weights for 16 kills the wasm backend).
 *
 * @param sizes Config sizes by name; numbers or arrays of numbers; undefined entries are skipped.
 * @param specs The weight specs that came with the config (checked by {@link checkWeightSpecs}).
 * @param fn The public function to name in the error.
 * @param counts Config counts of layers with weights (e.g. `nBlocks`): each layer has at least
 *   one weight, so a count cannot exceed the number of weights.
 * @throws VncaError naming the size and the largest dimension the weights have.
 * @internal
 */
export function checkDeclaredSizes(
  sizes: Record<string, number | number[] | undefined>, specs: tf.io.WeightsManifestEntry[], fn: string,
  counts: Record<string, number | undefined> = {},
): void {
  for (const [key, v] of Object.entries(counts)) {
    if (v !== undefined && (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > specs.length)) {
      throw new VncaError(fn, `config.${key}`, `must be an integer no larger than the number of weights (${specs.length}), but got ${describe(v)}.`);
    }
  }
  let largest = 0;
  for (const s of specs) for (const d of s.shape) largest = Math.max(largest, d);
  for (const [key, value] of Object.entries(sizes)) {
    if (value === undefined) continue;
    const list = Array.isArray(value) ? value : [value];
    for (const v of list) {
      if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > largest) {
        throw new VncaError(fn, `config.${key}`, `must be an integer no larger than the largest weight dimension (${largest}), but got ${describe(value)}.`);
      }
    }
  }
}

/**
 * The class to build a saved layer from, by its `className`: the first of `classes` with that
 * className, else tfjs's serialization registry, and only when it is `base` or a subclass of
 * it (so a model file cannot make the loader build `Dense`, `Conv2D` or any other registered
 * class that is not, say, an `UpdateRule`).
 *
 * @param spec The saved `{ className, config }`.
 * @param classes Classes the caller allows besides the registry (checked first).
 * @param base The base class every accepted class extends.
 * @param fn The public function to name in the error.
 * @param arg The argument to name in the error (e.g. `'updateRule'`).
 * @param what What the classes are called in messages (e.g. `'update rule'`). Default: `base.name`.
 * @returns The class and the config to build it with.
 * @throws VncaError when the spec is malformed, the class is unknown, or it does not extend `base`.
 * @internal
 */
export function resolveSavedClass<C extends abstract new (...args: never[]) => unknown>(
  spec: unknown, classes: readonly C[], base: C, fn: string, arg: string, what = base.name,
): { cls: C; config: tf.serialization.ConfigDict } {
  if (typeof spec !== 'object' || spec === null || Array.isArray(spec)) {
    throw new VncaError(fn, arg, `must be { className, config }, but got ${describe(spec)}.`);
  }
  const { className, config } = spec as { className?: unknown; config?: unknown };
  if (typeof className !== 'string' || className.length === 0) {
    throw new VncaError(fn, `${arg}.className`, `must be a non-empty string, but got ${describe(className)}.`);
  }
  if (typeof config !== 'object' || config === null || Array.isArray(config)) {
    throw new VncaError(fn, `${arg}.config`, `must be a JSON object, but got ${describe(config)}.`);
  }
  const registry = tf.serialization.SerializationMap.getMap().classNameMap as Record<string, [unknown, unknown] | undefined>;
  const own = Object.prototype.hasOwnProperty.call(registry, className) ? registry[className]?.[0] : undefined;
  const cls = classes.find((c) => (c as unknown as { className?: string }).className === className) ?? own;
  if (cls === undefined) {
    throw new VncaError(fn, arg, `'${className}' is not a known ${what} class: pass it in options or register it with tf.serialization.registerClass.`);
  }
  if (typeof cls !== 'function' || !(cls === base || (cls as { prototype: unknown }).prototype instanceof base)) {
    throw new VncaError(fn, arg, `'${className}' is a registered class but not a ${what}: only ${base.name} subclasses can be loaded here.`);
  }
  return { cls: cls as C, config: config as tf.serialization.ConfigDict };
}

/**
 * Adam's saved moments of a training-state load, in the order of `trainable` (the model's
 * trainable variables' names, `variables` the variables): `keyOf('m', name)` and
 * `keyOf('v', name)` must each be in `tensors` with the variable's shape.
 * @internal
 */
export function collectAdamMoments(
  tensors: tf.NamedTensorMap, keyOf: (kind: 'm' | 'v', name: string) => string,
  trainable: string[], variables: tf.Variable[], fn: string,
): { m: tf.Tensor[]; v: tf.Tensor[] } {
  const out = { m: [] as tf.Tensor[], v: [] as tf.Tensor[] };
  for (const kind of ['m', 'v'] as const) {
    trainable.forEach((name, i) => {
      const key = keyOf(kind, name);
      const t = tensors[key];
      if (!t) throw new VncaError(fn, 'weights', `hold an optimiser state without '${key}'.`);
      if (!tf.util.arraysEqual(t.shape, variables[i]!.shape)) {
        throw new VncaError(fn, `weights['${key}']`, `must have shape [${variables[i]!.shape.join(', ')}], but got [${t.shape.join(', ')}].`);
      }
      out[kind].push(t);
    });
  }
  return out;
}
