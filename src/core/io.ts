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

/**
 * Saves named tensors and a JSON topology (which carries `format`) through `handler`. @internal
 */
export async function saveArtifacts(
  handler: tf.io.IOHandler, topology: { format: string } & Record<string, unknown>, tensors: { name: string; tensor: tf.Tensor }[],
): Promise<tf.io.SaveResult> {
  const { data, specs } = await tf.io.encodeWeights(tensors);
  return handler.save!({
    modelTopology: topology as unknown as tf.io.ModelJSON['modelTopology'],
    format: topology.format,
    generatedBy: 'vnca',
    weightSpecs: specs,
    weightData: data,
  });
}
