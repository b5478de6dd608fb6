/**
 * Saving and loading a {@link VNCA}: stable weight names, the saved topology (format
 * `'vnca'`, version 1), rebuilding from tfjs artifacts or from the PyTorch reference's
 * safetensors. Every weight is checked before any is set: no half-loaded model.
 * @module
 */
import * as tf from '@tensorflow/tfjs-core';
import { assertInt, describe, VncaError } from '../core/errors.js';
import {
  checkDeclaredSizes, checkModelArtifacts, collectAdamMoments, relativeWeightName, resolveHandler, saveArtifacts,
} from '../core/io.js';
import type { UpdateRule } from '../layers/UpdateRule.js';
import { buildRule } from '../layers/registry.js';
import { ResidualUpdateRule } from '../layers/ResidualUpdateRule.js';
import { parseSafetensors } from './safetensors.js';
import { pytorchSizes, pytorchToNamedWeights } from './pytorch.js';
import type { UpdateRuleClass, VNCAConfig, VNCAOptions } from './config.js';
import type { Encoder } from './Encoder.js';
import type { TrainingCheckpoint, TrainingState } from './training.js';
import type { BatchSamplerState } from './batchSampler.js';

const VNCA_FORMAT = 'vnca';
const VNCA_FORMAT_VERSION = 1;

/** Options of {@link VNCA.fromPyTorch}: what the weights do not say. @category VAE */
export type PyTorchOptions = Omit<VNCAOptions, 'zSize' | 'hidden' | 'nBlocks' | 'encoderChannels' | 'imageChannels' | 'updateRule'>;

/** What saving and loading need of a model. @internal */
export interface PersistableModel {
  readonly config: VNCAConfig;
  readonly encoder: Encoder;
  readonly rule: UpdateRule;
  readonly trainableVariables: tf.Variable[];
  dispose(): void;
}

/** Options of {@link VNCA.save}. @category VAE */
export interface SaveOptions {
  /**
   * Also save the training run's state, so that {@link VNCA.load} continues it where it
   * stopped: Adam's moments (as weights named `optimizer/adam/m/<weight>` and
   * `optimizer/adam/v/<weight>`), the sample pool of a pooled model (its states and images
   * as the weights `training/pool/states` and `training/pool/images`: poolSize x imageSize² x
   * (zSize + imageChannels) floats, 395 MiB for the non-doubling MNIST model with its pool of 1024), and the step count,
   * Adam's iteration count, the rollout rng's position, the pool's draws and the position of
   * {@link VNCA.fit}'s batch sampler (in `userDefinedMetadata.vncaTraining` of model.json),
   * all in the same save. Default false.
   */
  includeOptimizer?: boolean;
}

/** Prefix of the optimiser's entries among a checkpoint's weights. */
const OPTIMIZER_PREFIX = 'optimizer/';
/** Key of the training state in a checkpoint's `userDefinedMetadata`. */
const TRAINING_KEY = 'vncaTraining';

/** Prefix of the training run's other tensors (the sample pool). */
const TRAINING_PREFIX = 'training/';
const POOL_STATES = `${TRAINING_PREFIX}pool/states`;
const POOL_IMAGES = `${TRAINING_PREFIX}pool/images`;

/** Every tensor of a saved training run, for disposing. @internal */
export function trainingTensors(t: TrainingState): tf.Tensor[] {
  return [...t.m, ...t.v, ...(t.poolStates ? [t.poolStates] : []), ...(t.poolImages ? [t.poolImages] : [])];
}

/** Stable names (`encoder/...`, `rule/...`) of the model's trainable variables, in their order. */
function trainableNames(model: PersistableModel): string[] {
  const byVariable = new Map(namedWeights(model).map(({ name, variable }) => [variable.name, name]));
  return model.trainableVariables.map((v) => byVariable.get(v.name)!);
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

/** Checks the {@link SaveOptions} of a save: an object, `includeOptimizer` a boolean. @internal */
export function checkSaveOptions(options: SaveOptions, fn: string): void {
  if (typeof options !== 'object' || options === null) throw new VncaError(fn, 'options', `must be an object, but got ${describe(options)}.`);
  if (options.includeOptimizer !== undefined && typeof options.includeOptimizer !== 'boolean') {
    throw new VncaError(fn, 'options.includeOptimizer', `must be a boolean, but got ${describe(options.includeOptimizer)}.`);
  }
}

/**
 * Saves the configuration and weights through a tfjs IO handler or URL scheme
 * (`localstorage://`, `indexeddb://`, `downloads://`, `http(s)://`, `tf.io.withSaveHandler`,
 * or `fileSystem(dir)` from `vnca/node`).
 *
 * @param target A URL string or an `tf.io.IOHandler`.
 * @returns The handler's save result.
 */
export async function saveModel(
  model: PersistableModel, target: string | tf.io.IOHandler, fn: string, training?: TrainingState,
): Promise<tf.io.SaveResult> {
  let handler = resolveHandler(target, 'save', fn);
  const topology = {
    format: VNCA_FORMAT,
    formatVersion: VNCA_FORMAT_VERSION,
    config: model.config,
    updateRule: { className: (model.rule.constructor as unknown as { className: string }).className, config: model.rule.getConfig() },
  };
  const tensors: { name: string; tensor: tf.Tensor }[] = namedWeights(model).map(({ name, variable }) => ({ name, tensor: variable }));
  if (training) {
    const names = trainableNames(model);
    training.m.forEach((t, i) => tensors.push({ name: `${OPTIMIZER_PREFIX}adam/m/${names[i]}`, tensor: t }));
    training.v.forEach((t, i) => tensors.push({ name: `${OPTIMIZER_PREFIX}adam/v/${names[i]}`, tensor: t }));
    if (training.poolStates && training.poolImages) {
      tensors.push({ name: POOL_STATES, tensor: training.poolStates }, { name: POOL_IMAGES, tensor: training.poolImages });
    }
    const { step, adamIterations, rngDraws, rngState, sampler, pool } = training;
    const numbers: TrainingCheckpoint = {
      step, adamIterations, rngDraws, ...(rngState === undefined ? {} : { rngState }), ...(sampler ? { sampler } : {}), ...(pool ? { pool } : {}),
    };
    const inner = handler;
    // The numbers go into model.json with the weights: one save, as atomic as the handler's.
    handler = {
      save: (a) => inner.save!({ ...a, userDefinedMetadata: { ...(a.userDefinedMetadata ?? {}), [TRAINING_KEY]: numbers } }),
    };
  }
  return saveArtifacts(handler, topology, tensors, fn);
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
  const { model, training } = fromCheckpoint(build, artifacts, options, fn);
  if (training) tf.dispose(trainingTensors(training));
  return model;
}

/**
 * {@link fromArtifacts}, and the training state saved with `includeOptimizer` (checked
 * against the model's variables; the caller disposes its tensors), if any. @internal
 */
export function fromCheckpoint<M extends PersistableModel>(
  build: (options: VNCAOptions) => M, artifacts: tf.io.ModelArtifacts, options: { updateRules?: UpdateRuleClass[] }, fn: string,
): { model: M; training: TrainingState | null } {
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
  // hidden and nBlocks describe the built-in residual rule only; a custom rule brings its own sizes.
  const ruleClass = (topo.updateRule as { className?: unknown } | undefined)?.className;
  const residual = ruleClass === undefined || ruleClass === ResidualUpdateRule.className;
  checkDeclaredSizes(
    {
      zSize: c.zSize, hidden: !residual || c.nBlocks === 0 ? undefined : c.hidden,
      encoderChannels: c.encoderChannels, imageChannels: c.imageChannels,
    },
    specs, fn, residual ? { nBlocks: c.nBlocks } : {},
  );
  const updateRule = topo.updateRule !== undefined ? buildRule(topo.updateRule, options.updateRules ?? [], fn) : undefined;
  const model = build({ ...topo.config, ...(updateRule ? { updateRule } : {}) });
  let training: TrainingState | null = null;
  try {
    withWeights(model, (tensors) => {
      const optimizer: tf.NamedTensorMap = {};
      for (const [name, t] of Object.entries(tf.io.decodeWeights(data, specs))) {
        (name.startsWith(OPTIMIZER_PREFIX) || name.startsWith(TRAINING_PREFIX) ? optimizer : tensors)[name] = t;
      }
      try {
        training = savedTraining(model, optimizer, artifacts.userDefinedMetadata?.[TRAINING_KEY], fn);
      } catch (e) {
        tf.dispose(Object.values(optimizer));
        throw e;
      }
    }, fn);
  } catch (e) {
    const t = training as TrainingState | null;
    if (t) tf.dispose(trainingTensors(t));
    throw e;
  }
  return { model, training };
}

/** Throws unless `v` is a plain object. */
function checkObject(v: unknown, fn: string, arg: string, shape: string): asserts v is Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new VncaError(fn, arg, `must be ${shape}, but got ${describe(v)}.`);
}

const UINT32_MAX = 2 ** 32 - 1;

/** The batch sampler's numbers of a checkpoint, checked. */
function checkSampler(v: unknown, fn: string, arg: string): BatchSamplerState {
  checkObject(v, fn, arg, '{ n, batchSize, shuffle, seed, batches, rngState, at }');
  assertInt(v.n, fn, `${arg}.n`, 1, 2 ** 31 - 1);
  assertInt(v.batchSize, fn, `${arg}.batchSize`, 1, v.n);
  if (v.shuffle !== 'epoch' && v.shuffle !== 'replacement') throw new VncaError(fn, `${arg}.shuffle`, `must be 'epoch' or 'replacement', but got ${describe(v.shuffle)}.`);
  assertInt(v.seed, fn, `${arg}.seed`, Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER);
  assertInt(v.batches, fn, `${arg}.batches`, 0, Number.MAX_SAFE_INTEGER);
  assertInt(v.rngState, fn, `${arg}.rngState`, 0, UINT32_MAX);
  assertInt(v.at, fn, `${arg}.at`, 0, v.n);
  return { n: v.n, batchSize: v.batchSize, shuffle: v.shuffle, seed: v.seed, batches: v.batches, rngState: v.rngState, at: v.at };
}

/**
 * The training state of a checkpoint from its `optimizer/` and `training/` weights and
 * metadata, checked: both or neither, the numbers non-negative integers, one `m` and one `v`
 * of each trainable variable's shape (or none, before the first step), the sample pool's
 * states and images of the model's sizes (or none), nothing else.
 */
function savedTraining(model: PersistableModel, optimizer: tf.NamedTensorMap, metadata: unknown, fn: string): TrainingState | null {
  const names = Object.keys(optimizer);
  if (metadata === undefined && names.length === 0) return null;
  const arg = `artifacts.userDefinedMetadata.${TRAINING_KEY}`;
  if (typeof metadata !== 'object' || metadata === null || Array.isArray(metadata)) {
    throw new VncaError(fn, arg, `must be { step, adamIterations, rngDraws } when the weights hold '${OPTIMIZER_PREFIX}' entries, but got ${describe(metadata)}.`);
  }
  const numbers = metadata as Record<string, unknown>;
  for (const key of ['step', 'adamIterations', 'rngDraws']) {
    const v = numbers[key];
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) throw new VncaError(fn, `${arg}.${key}`, `must be a non-negative integer, but got ${describe(v)}.`);
  }
  const state: TrainingState = {
    step: numbers.step as number, adamIterations: numbers.adamIterations as number, rngDraws: numbers.rngDraws as number, m: [], v: [],
  };
  if (numbers.rngState !== undefined) {
    assertInt(numbers.rngState, fn, `${arg}.rngState`, 0, UINT32_MAX);
    state.rngState = numbers.rngState;
  }
  if (numbers.sampler !== undefined) state.sampler = checkSampler(numbers.sampler, fn, `${arg}.sampler`);
  const c = model.config;
  const poolNames = [POOL_STATES, POOL_IMAGES];
  if (numbers.pool !== undefined) {
    const p = numbers.pool;
    if (c.poolSize === 0) throw new VncaError(fn, `${arg}.pool`, `must be absent for a model without a pool (poolSize 0), but got ${describe(p)}.`);
    checkObject(p, fn, `${arg}.pool`, '{ entries, full, rngState }');
    if (typeof p.full !== 'boolean') throw new VncaError(fn, `${arg}.pool.full`, `must be a boolean, but got ${describe(p.full)}.`);
    // A full pool holds poolSize entries; a filling one fewer.
    if (p.full) assertInt(p.entries, fn, `${arg}.pool.entries`, c.poolSize, c.poolSize);
    else assertInt(p.entries, fn, `${arg}.pool.entries`, 1, Math.max(1, c.poolSize - 1));
    assertInt(p.rngState, fn, `${arg}.pool.rngState`, 0, UINT32_MAX);
    const size = c.imageSize;
    const want: [string, number[]][] = [[POOL_STATES, [p.entries, size, size, c.zSize]], [POOL_IMAGES, [p.entries, size, size, c.imageChannels]]];
    for (const [key, shape] of want) {
      const t = optimizer[key];
      if (!t) throw new VncaError(fn, 'weights', `hold a pool of ${p.entries} entries in ${arg}.pool but no '${key}'.`);
      if (!tf.util.arraysEqual(t.shape, shape)) throw new VncaError(fn, `weights['${key}']`, `must have shape [${shape.join(', ')}], but got [${t.shape.join(', ')}].`);
    }
    state.pool = { entries: p.entries, full: p.full, rngState: p.rngState };
    state.poolStates = optimizer[POOL_STATES] as tf.Tensor4D;
    state.poolImages = optimizer[POOL_IMAGES] as tf.Tensor4D;
  } else {
    const stray = poolNames.filter((n) => n in optimizer);
    if (stray.length) throw new VncaError(fn, 'weights', `hold ${stray.join(', ')} but ${arg} has no pool.`);
  }
  const adamNames = names.filter((n) => !poolNames.includes(n));
  if (adamNames.length === 0) return state;
  const trainable = trainableNames(model);
  const wanted = new Set(trainable.flatMap((n) => [`${OPTIMIZER_PREFIX}adam/m/${n}`, `${OPTIMIZER_PREFIX}adam/v/${n}`]));
  const unknown = adamNames.filter((n) => !wanted.has(n));
  if (unknown.length) throw new VncaError(fn, 'weights', `hold optimiser entries that match no trainable weight: ${unknown.join(', ')}.`);
  return Object.assign(state, collectAdamMoments(optimizer, (kind, n) => `${OPTIMIZER_PREFIX}adam/${kind}/${n}`, trainable, model.trainableVariables, fn));
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

/**
 * {@link VNCA.load}: the model saved at `source`, and the training run saved with it handed
 * to `restore` (the model is disposed if that fails; the saved tensors are disposed). @internal
 */
export async function loadModel<M extends PersistableModel>(
  build: (options: VNCAOptions) => M, source: string | tf.io.IOHandler, options: { updateRules?: UpdateRuleClass[] }, fn: string,
  restore: (model: M, training: TrainingState) => Promise<void>,
): Promise<M> {
  const artifacts = await loadArtifacts(source, fn);
  const { model, training } = fromCheckpoint(build, artifacts, options, fn);
  if (!training) return model;
  try {
    await restore(model, training);
  } catch (e) {
    model.dispose();
    throw e;
  } finally {
    tf.dispose(trainingTensors(training));
  }
  return model;
}
