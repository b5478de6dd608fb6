/**
 * Saving and loading a {@link VNCA}: stable weight names, the saved topology (format
 * `'vnca'`, version 1), rebuilding from tfjs artifacts or from the PyTorch reference's
 * safetensors. Every weight is checked before any is set: no half-loaded model.
 * @module
 */
import * as tf from '@tensorflow/tfjs-core';
import { describe, VncaError } from '../core/errors.js';
import {
  checkDeclaredSizes, checkModelArtifacts, relativeWeightName, resolveHandler, saveArtifacts,
} from '../core/io.js';
import type { UpdateRule } from '../layers/UpdateRule.js';
import { buildRule } from '../layers/registry.js';
import { parseSafetensors } from './safetensors.js';
import { pytorchSizes, pytorchToNamedWeights } from './pytorch.js';
import type { UpdateRuleClass, VNCAConfig, VNCAOptions } from './config.js';
import type { Encoder } from './Encoder.js';

const VNCA_FORMAT = 'vnca';
const VNCA_FORMAT_VERSION = 1;

/** Options of {@link VNCA.fromPyTorch}: what the weights do not say. @category VAE */
export type PyTorchOptions = Omit<VNCAOptions, 'zSize' | 'hidden' | 'nBlocks' | 'encoderChannels' | 'imageChannels' | 'updateRule'>;

/** What saving and loading need of a model. @internal */
export interface PersistableModel {
  readonly config: VNCAConfig;
  readonly encoder: Encoder;
  readonly rule: UpdateRule;
  dispose(): void;
}

/**
 * Every weight with a stable name: `encoder/<weight>` then `rule/<weight>`, where `<weight>`
 * is the name the layer gave it (e.g. `rule/conv_in/kernel`). Save and load match by these names.
 */
export function namedWeights(model: PersistableModel): { name: string; variable: tf.Variable }[] {
  const out: { name: string; variable: tf.Variable }[] = [];
  const seen = new Set<string>();
  for (const [prefix, layer] of [['encoder', model.encoder], ['rule', model.rule]] as const) {
    for (const w of layer.weights) {
      const name = `${prefix}/${relativeWeightName(layer.name, w.originalName)}`;
      if (seen.has(name)) throw new VncaError('VNCA.namedWeights', name, 'is not unique: give each weight of a layer its own name.');
      seen.add(name);
      out.push({ name, variable: w.read() as tf.Variable });
    }
  }
  return out;
}

/**
 * Saves the configuration and weights through a tfjs IO handler or URL scheme
 * (`localstorage://`, `indexeddb://`, `downloads://`, `http(s)://`, `tf.io.withSaveHandler`,
 * or `fileSystem(dir)` from `vnca/node`).
 *
 * @param target A URL string or an `tf.io.IOHandler`.
 * @returns The handler's save result.
 */
export async function saveModel(model: PersistableModel, target: string | tf.io.IOHandler, fn: string): Promise<tf.io.SaveResult> {
  const handler = resolveHandler(target, 'save', fn);
  const topology = {
    format: VNCA_FORMAT,
    formatVersion: VNCA_FORMAT_VERSION,
    config: model.config,
    updateRule: { className: (model.rule.constructor as unknown as { className: string }).className, config: model.rule.getConfig() },
  };
  return saveArtifacts(handler, topology, namedWeights(model).map(({ name, variable }) => ({ name, tensor: variable })));
}

/**
 * Builds a model from tfjs model artifacts as {@link VNCA.save} writes them.
 *
 * @param artifacts `modelTopology` with the VNCA config, `weightSpecs` and `weightData`.
 * @param options `updateRules`: custom {@link UpdateRule} classes the model may use.
 * @returns The model; the caller disposes it.
 */
export function fromArtifacts<M extends PersistableModel>(
  build: (options: VNCAOptions) => M, artifacts: tf.io.ModelArtifacts, options: { updateRules?: UpdateRuleClass[] }, fn: string,
): M {
  const topo = (artifacts as tf.io.ModelArtifacts | null | undefined)?.modelTopology as { format?: string; formatVersion?: number; config?: VNCAOptions; updateRule?: unknown } | undefined;
  if (!topo || topo.format !== VNCA_FORMAT || typeof topo.config !== 'object' || topo.config === null || Array.isArray(topo.config)) {
    throw new VncaError(fn, 'artifacts.modelTopology', `must be a VNCA model (format '${VNCA_FORMAT}'), but got ${describe(topo?.format ?? topo)}.`);
  }
  if (topo.formatVersion !== VNCA_FORMAT_VERSION) {
    throw new VncaError(fn, 'artifacts.modelTopology.formatVersion', `must be ${VNCA_FORMAT_VERSION}, but got ${describe(topo.formatVersion)}.`);
  }
  // Specs, byte count and finite values, then the config's sizes against the weights, all
  // before anything is allocated: a hostile config cannot make the backend allocate gigabytes.
  const { specs, data } = checkModelArtifacts(artifacts, fn);
  const c = topo.config;
  checkDeclaredSizes(
    { zSize: c.zSize, hidden: c.nBlocks === 0 ? undefined : c.hidden, encoderChannels: c.encoderChannels, imageChannels: c.imageChannels },
    specs, fn, { nBlocks: c.nBlocks },
  );
  const updateRule = topo.updateRule !== undefined ? buildRule(topo.updateRule, options.updateRules ?? [], fn) : undefined;
  const model = build({ ...topo.config, ...(updateRule ? { updateRule } : {}) });
  return withWeights(model, (tensors) => {
    Object.assign(tensors, tf.io.decodeWeights(data, specs));
  }, fn);
}

/**
 * Sets `model`'s weights from the tensors `fill` puts into a map (freed afterwards, also when
 * `fill` fails half-way); on any error the model is disposed and the error rethrown.
 */
function withWeights<M extends PersistableModel>(model: M, fill: (tensors: tf.NamedTensorMap) => void, fn: string): M {
  const tensors: tf.NamedTensorMap = {};
  try {
    fill(tensors);
    setNamedWeights(model, tensors, fn);
  } catch (e) {
    model.dispose();
    throw e;
  } finally {
    tf.dispose(Object.values(tensors));
  }
  return model;
}

/**
 * Builds a doubling VNCA from the PyTorch reference's `state_dict` saved as safetensors
 * (keys `encoder.{0,2,4,6,8}.{weight,bias}`, `encoder.11.{weight,bias}`,
 * `nca.update_net.0.{weight,bias}`, `nca.update_net.{1..4}.delegate.{0,2}.{weight,bias}`,
 * `nca.update_net.5.{weight,bias}`). Sizes (zSize, hidden, blocks, encoder channels) are read
 * from the shapes; the rest comes from `options` (defaults: the paper's). NCHW kernels become
 * NHWC, and the encoder's last layer is permuted from PyTorch's (C, H, W) flatten order, so
 * encoder and decoder outputs equal the reference's. Unknown or missing keys, wrong shapes,
 * truncated files give a {@link VncaError}; nothing is half-loaded.
 *
 * @param bytes The safetensors file.
 * @param options Growth and training options not stored in the weights (e.g. `stepsPerDoubling`).
 * @returns The model; the caller disposes it.
 */
export function fromPyTorch<M extends PersistableModel>(
  build: (options: VNCAOptions) => M, bytes: ArrayBuffer | Uint8Array, options: PyTorchOptions, fn: string,
): M {
  const st = parseSafetensors(bytes);
  const sizes = pytorchSizes(st);
  for (const key of ['zSize', 'hidden', 'nBlocks', 'encoderChannels', 'imageChannels', 'updateRule']) {
    if (key in (options as object)) throw new VncaError(fn, `options.${key}`, 'is read from the weights and cannot be given.');
  }
  const named = pytorchToNamedWeights(st, sizes);
  const model = build({ ...options, ...sizes });
  return withWeights(model, (tensors) => {
    for (const [name, t] of named) tensors[name] = tf.tensor(t.data, t.shape, 'float32');
  }, fn);
}

/**
 * Sets every weight from a name → tensor map (names as {@link VNCA.namedWeights} gives them).
 * All names and shapes are checked before any weight changes. @internal
 */
export function setNamedWeights(model: PersistableModel, tensors: tf.NamedTensorMap, fn: string): void {
  const named = namedWeights(model);
  const want = new Set(named.map((n) => n.name));
  const missing = named.filter((n) => !(n.name in tensors)).map((n) => n.name);
  const unknown = Object.keys(tensors).filter((k) => !want.has(k));
  if (missing.length) throw new VncaError(fn, 'weights', `are missing ${missing.join(', ')}.`);
  if (unknown.length) throw new VncaError(fn, 'weights', `hold unknown names ${unknown.join(', ')}.`);
  for (const { name, variable } of named) {
    const t = tensors[name]!;
    if (!tf.util.arraysEqual(t.shape, variable.shape)) {
      throw new VncaError(fn, `weights['${name}']`, `must have shape [${variable.shape.join(', ')}], but got [${t.shape.join(', ')}].`);
    }
  }
  for (const { name, variable } of named) tf.tidy(() => variable.assign(tf.cast(tensors[name]!, 'float32')));
}

/** The model artifacts at `source`: a URL string or a `tf.io.IOHandler`. Errors name `fn`. */
export async function loadArtifacts(source: string | tf.io.IOHandler, fn: string): Promise<tf.io.ModelArtifacts> {
  const handler = resolveHandler(source, 'load', fn);
  return handler.load!();
}
