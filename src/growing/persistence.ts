/**
 * Saving and loading a {@link GrowingNCA}: the config, the rule's weights and the target
 * (format `'vnca-growing-nca'`, version 1), and with `includeOptimizer` the training run
 * (Adam's moments, the step count, the rng's position and the sample pool) in the same save.
 * Every weight is checked before any is set: no half-loaded model.
 * @module
 */
import * as tf from '@tensorflow/tfjs-core';
import { VncaError, assertInt, describe } from '../core/errors.js';
import { checkDeclaredSizes, checkModelArtifacts, collectAdamMoments, resolveHandler, saveArtifacts } from '../core/io.js';
import type { GrowingNCAConfig, GrowingNCAOptions } from './config.js';
import type { GrowingNCA } from './GrowingNCA.js';

const FORMAT = 'vnca-growing-nca';
const FORMAT_VERSION = 1;
/** Key of the training run's numbers in `userDefinedMetadata`. */
const TRAINING_KEY = 'vncaGrowingTraining';
const OPTIMIZER_PREFIX = 'optimizer/adam/';
const POOL_STATES = 'training/pool/states';

/** Options of {@link GrowingNCA.save}. @category Growing NCA */
export interface GrowingSaveOptions {
  /**
   * Also save the training run, so that {@link GrowingNCA.load} continues it where it
   * stopped: Adam's moments (weights `optimizer/adam/m/<weight>`, `optimizer/adam/v/<weight>`),
   * the sample pool's states (weight `training/pool/states`: poolSize x height x width x
   * channels floats, 105 MB for the article's pool of 1024 on 40x40), and the step count,
   * Adam's iteration count and the positions of the rngs of training and of the pool
   * (`userDefinedMetadata.vncaGrowingTraining` of model.json), all in the same save.
   * Default false.
   */
  includeOptimizer?: boolean;
}

/**
 * A training run of a GrowingNCA: numbers, Adam's moments in the order of the trainable
 * variables, and the pool's states `[poolSize, height, width, channels]`. @internal
 */
export interface GrowingTrainingState {
  /** Applied training steps (the learning-rate schedule and `damageAfter` read it). */
  step: number;
  /** Adam's own iteration count, 0 before the first step. */
  adamIterations: number;
  /** State of the rng of damage, rollout lengths and mask seeds. */
  rngState: number;
  /** State of the rng of the pool's draws. */
  poolRngState: number;
  poolStates: tf.Tensor4D;
  m: tf.Tensor[];
  v: tf.Tensor[];
}

/** {@link GrowingNCA.save}. @internal */
export async function saveGrowingNCA(
  model: GrowingNCA, targetImage: tf.Tensor3D, target: string | tf.io.IOHandler, options: GrowingSaveOptions, fn: string,
): Promise<tf.io.SaveResult> {
  if (typeof options !== 'object' || options === null) throw new VncaError(fn, 'options', `must be an object, but got ${describe(options)}.`);
  if (options.includeOptimizer !== undefined && typeof options.includeOptimizer !== 'boolean') {
    throw new VncaError(fn, 'options.includeOptimizer', `must be a boolean, but got ${describe(options.includeOptimizer)}.`);
  }
  let handler = resolveHandler(target, 'save', fn);
  const named = model.namedWeights();
  const tensors: { name: string; tensor: tf.Tensor }[] = [
    ...named.map(({ name, variable }) => ({ name, tensor: variable as tf.Tensor })), { name: 'target', tensor: targetImage },
  ];
  const training = options.includeOptimizer ? await model.trainingState() : null;
  try {
    if (training) {
      const names = trainableNames(model);
      training.m.forEach((t, i) => tensors.push({ name: `${OPTIMIZER_PREFIX}m/${names[i]}`, tensor: t }));
      training.v.forEach((t, i) => tensors.push({ name: `${OPTIMIZER_PREFIX}v/${names[i]}`, tensor: t }));
      tensors.push({ name: POOL_STATES, tensor: training.poolStates });
      const { step, adamIterations, rngState, poolRngState } = training;
      const inner = handler;
      // The numbers go into model.json with the weights: one save, as atomic as the handler's.
      handler = {
        save: (a) => inner.save!({ ...a, userDefinedMetadata: { ...(a.userDefinedMetadata ?? {}), [TRAINING_KEY]: { step, adamIterations, rngState, poolRngState } } }),
      };
    }
    return await saveArtifacts(handler, { format: FORMAT, formatVersion: FORMAT_VERSION, config: model.config }, tensors, fn);
  } finally {
    training?.poolStates.dispose();
  }
}

/** Stable names (`rule/...`) of the trainable variables, in their order. */
function trainableNames(model: GrowingNCA): string[] {
  const byVariable = new Map(model.namedWeights().map(({ name, variable }) => [variable.name, name]));
  return model.trainableVariables.map((v) => byVariable.get(v.name)!);
}

/** {@link GrowingNCA.load}. @internal */
export async function loadGrowingNCA(
  source: string | tf.io.IOHandler, build: (options: GrowingNCAOptions) => GrowingNCA, fn: string,
): Promise<GrowingNCA> {
  const artifacts = await resolveHandler(source, 'load', fn).load!();
  const topo = artifacts?.modelTopology as { format?: string; formatVersion?: number; config?: GrowingNCAConfig } | undefined;
  if (!topo || topo.format !== FORMAT || typeof topo.config !== 'object' || topo.config === null) {
    throw new VncaError(fn, 'source', `must hold a GrowingNCA model (format '${FORMAT}'), but got ${describe(topo?.format ?? topo)}.`);
  }
  if (topo.formatVersion !== FORMAT_VERSION) {
    throw new VncaError(fn, 'source', `must hold format version ${FORMAT_VERSION}, but got ${describe(topo.formatVersion)}.`);
  }
  // Specs, byte count, finite values and the config's sizes, before anything is allocated.
  const { specs, data } = checkModelArtifacts(artifacts, fn);
  checkDeclaredSizes({ channels: topo.config.channels, hidden: topo.config.hidden }, specs, fn);
  const tensors = tf.io.decodeWeights(data, specs);
  let model: GrowingNCA | null = null;
  try {
    const target = tensors.target;
    if (!target) throw new VncaError(fn, 'source', 'must hold the weight \'target\', but it is missing.');
    const { seed, ...config } = topo.config;
    model = build({ ...config, ...(seed === null ? {} : { seed }), target: target as tf.Tensor3D });
    const named = model.namedWeights();
    const known = new Set(['target', ...named.map((n) => n.name)]);
    for (const { name, variable } of named) {
      const t = tensors[name];
      if (!t) throw new VncaError(fn, 'source', `must hold the weight '${name}', but it is missing.`);
      if (!tf.util.arraysEqual(t.shape, variable.shape)) {
        throw new VncaError(fn, `weights['${name}']`, `must have shape [${variable.shape.join(', ')}], but got [${t.shape.join(', ')}].`);
      }
    }
    const rest = Object.keys(tensors).filter((k) => !known.has(k));
    const training = savedTraining(model, tensors, rest, artifacts.userDefinedMetadata?.[TRAINING_KEY], fn);
    for (const { name, variable } of named) variable.assign(tensors[name]!);
    if (training) await model.restoreTraining(training);
    return model;
  } catch (e) {
    model?.dispose();
    throw e;
  } finally {
    tf.dispose(Object.values(tensors));
  }
}

/**
 * The training run of a checkpoint from its extra weights (`names`) and metadata, checked:
 * both or neither, the numbers integers in range, the pool's states of the pool's shape, one
 * `m` and one `v` of each trainable variable's shape (or none, before the first step),
 * nothing else. The tensors stay in `tensors` (the caller frees them).
 */
function savedTraining(
  model: GrowingNCA, tensors: tf.NamedTensorMap, names: string[], metadata: unknown, fn: string,
): GrowingTrainingState | null {
  if (metadata === undefined && names.length === 0) return null;
  const arg = `artifacts.userDefinedMetadata.${TRAINING_KEY}`;
  if (typeof metadata !== 'object' || metadata === null || Array.isArray(metadata)) {
    throw new VncaError(fn, arg, `must be { step, adamIterations, rngState, poolRngState } when the weights hold training entries, but got ${describe(metadata)}.`);
  }
  const n = metadata as Record<string, unknown>;
  assertInt(n.step, fn, `${arg}.step`, 0, Number.MAX_SAFE_INTEGER);
  assertInt(n.adamIterations, fn, `${arg}.adamIterations`, 0, Number.MAX_SAFE_INTEGER);
  assertInt(n.rngState, fn, `${arg}.rngState`, 0, 2 ** 32 - 1);
  assertInt(n.poolRngState, fn, `${arg}.poolRngState`, 0, 2 ** 32 - 1);
  const c = model.config;
  const [h, w] = model.gridShape;
  const poolShape = [c.poolSize, h, w, c.channels];
  const pool = tensors[POOL_STATES];
  if (!pool) throw new VncaError(fn, 'weights', `hold a training run without '${POOL_STATES}'.`);
  if (!tf.util.arraysEqual(pool.shape, poolShape)) {
    throw new VncaError(fn, `weights['${POOL_STATES}']`, `must have shape [${poolShape.join(', ')}], but got [${pool.shape.join(', ')}].`);
  }
  const state: GrowingTrainingState = {
    step: n.step, adamIterations: n.adamIterations, rngState: n.rngState, poolRngState: n.poolRngState, poolStates: pool as tf.Tensor4D, m: [], v: [],
  };
  const adam = names.filter((k) => k !== POOL_STATES);
  if (adam.length === 0) return state;
  const trainable = trainableNames(model);
  const wanted = new Set(trainable.flatMap((t) => [`${OPTIMIZER_PREFIX}m/${t}`, `${OPTIMIZER_PREFIX}v/${t}`]));
  const unknown = adam.filter((k) => !wanted.has(k));
  if (unknown.length) throw new VncaError(fn, 'weights', `hold entries that are neither weights nor training state: ${unknown.join(', ')}.`);
  return Object.assign(state, collectAdamMoments(tensors, (kind, t) => `${OPTIMIZER_PREFIX}${kind}/${t}`, trainable, model.trainableVariables, fn));
}
