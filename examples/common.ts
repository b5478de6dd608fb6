/**
 * Helpers shared by the examples (not part of the library): command-line parsing with
 * `commander`, backend set-up, loading the shipped model, timing, progress output and
 * the training loop with checkpoints that examples 02 and 08 run.
 *
 * Both Node backends are imported here, so every example can run on either:
 * `--backend wasm` (the default; WebAssembly with SIMD, several times faster) or
 * `--backend cpu` (plain JavaScript, the reference for correctness).
 */
import * as tf from '@tensorflow/tfjs-core';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { type Command } from 'commander';
import { DEFAULT_MODEL, ModelNotFoundError, isPretrainedName, loadModel as loadModelOrThrow } from '../src/cli/model.js';
import { backendOption, useBackend, type BackendName } from '../src/cli/backend.js';
import { float, int, intList, positiveInt } from '../src/cli/args.js';
import { progress, since } from '../src/cli/progress.js';
import { VNCA, VncaError, mulberry32, type PretrainedName, type UpdateRuleClass } from '../src/index.js';
import { ParallelVNCA, datasetToTensor, fileSystem, sampleBatch, pretrainedPath, savePngGrid, writeFileAtomic, type ImageDataset } from '../src/node.js';

// --- Command line, backend, model, progress: shared with the `vnca` command (src/cli/) ---

export { float, int, intList, positiveInt } from '../src/cli/args.js';
export { BACKENDS, backendOption, useBackend, type BackendName } from '../src/cli/backend.js';
export { formatDuration, progress, since, type Progress } from '../src/cli/progress.js';

/** The shipped model the examples use by default (a name of `PRETRAINED_MODELS`). */
export const SHIPPED_MODEL: PretrainedName = DEFAULT_MODEL;

/**
 * Loads a VNCA from a shipped model's name (`mnist-small`) or a folder (`model.json` +
 * `weights.bin`). When there is no such model, prints what to do and exits with status 1.
 */
export async function loadModel(model: string, updateRules: UpdateRuleClass[] = []): Promise<VNCA> {
  try {
    return await loadModelOrThrow(model, updateRules);
  } catch (e) {
    if (!(e instanceof ModelNotFoundError)) throw e;
    console.error(`error: ${e.message}`);
    process.exit(1);
  }
}

/** The training record written beside the shipped model (`training.json`), if any. */
export interface TrainingRecord {
  parameters?: number;
  training?: { step?: number; [key: string]: unknown };
  /** Steps by vnca's own trainer after the PyTorch run (tools/train-vnca.ts --from), if any. */
  finetune?: { toStep?: number; [key: string]: unknown };
  /** IWAE evaluation by the PyTorch trainer (tools/train_torch.py). */
  evaluation?: {
    step?: number;
    iwae_k?: number;
    test_images?: number;
    test_total?: number;
    log_px_lower_bound_nats?: number;
    std_err?: number | null;
  };
}

/**
 * Reads `training.json` of a model folder or of a shipped model (by name), or returns
 * undefined when it is absent or unreadable.
 */
export function readTrainingRecord(model: string): TrainingRecord | undefined {
  const dir = !existsSync(join(model, 'model.json')) && isPretrainedName(model) ? pretrainedPath(model) : model;
  const path = join(dir, 'training.json');
  if (!existsSync(path)) return undefined;
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as TrainingRecord;
  } catch {
    return undefined;
  }
}

// --- Pictures ----------------------------------------------------------------------------

/**
 * Upscales images by nearest neighbour to `size x size`, so states of small grids
 * (2x2, 4x4, ...) show as blocks at the final size. Returns a new tensor.
 *
 * @param images `[batch, h, w, channels]` with h, w dividing `size`.
 * @param size Target height and width.
 */
export function upscale(images: tf.Tensor4D, size: number): tf.Tensor4D {
  return tf.tidy(() => (images.shape[1] === size && images.shape[2] === size
    ? tf.clone(images)
    : tf.image.resizeNearestNeighbor(images, [size, size])) as tf.Tensor4D);
}

/**
 * Lays rows of images out row by row for `savePngGrid(..., { cols })`: `columns[j]` holds
 * column j for every row (`[rows, h, w, c]`, all the same size); the result is
 * `[rows * columns.length, h, w, c]`, row 0 first.
 */
export function rowsOfColumns(columns: tf.Tensor4D[]): tf.Tensor4D {
  return tf.tidy(() => {
    const stacked = tf.stack(columns, 1); // [rows, cols, h, w, c]
    const [rows, cols, h, w, c] = stacked.shape;
    return tf.reshape(stacked, [rows! * cols!, h!, w!, c!]) as tf.Tensor4D;
  });
}

/**
 * A half of the image as an inpainting mask, 1 = unknown: `[size, size]`.
 *
 * @param which `bottom`, `top`, `left`, `right`, or `center` (the middle square, half the side).
 * @param size Image height and width.
 */
export function halfMask(which: MaskName, size: number): tf.Tensor2D {
  return tf.tidy(() => {
    const y = tf.reshape(tf.range(0, size), [size, 1]);
    const x = tf.reshape(tf.range(0, size), [1, size]);
    const h = size / 2;
    const q = size / 4;
    const inside = {
      bottom: () => tf.greaterEqual(y, h),
      top: () => tf.less(y, h),
      left: () => tf.less(x, h),
      right: () => tf.greaterEqual(x, h),
      center: () => tf.logicalAnd(
        tf.logicalAnd(tf.greaterEqual(y, q), tf.less(y, size - q)),
        tf.logicalAnd(tf.greaterEqual(x, q), tf.less(x, size - q))),
    }[which]();
    return tf.cast(tf.broadcastTo(inside, [size, size]), 'float32') as tf.Tensor2D;
  });
}
/** The masks {@link halfMask} makes. */
export const MASKS = ['bottom', 'top', 'left', 'right', 'center'] as const;
/** A mask name. */
export type MaskName = (typeof MASKS)[number];

/**
 * Rows for an inpainting picture, in colour: the originals; the masked input, its unknown
 * part blue; then each way of filling it in, the new part tinted blue.
 * `[(2 + filled.length) * n, H, W, 3]`.
 *
 * @param x Originals `[n, H, W, 1]`.
 * @param mask Unknown region `[n, H, W]`, 1 = unknown.
 * @param filled Inpainted images, each `[n, H, W, 1]`.
 */
export function inpaintingRows(x: tf.Tensor4D, mask: tf.Tensor3D, filled: tf.Tensor4D[]): tf.Tensor4D {
  return tf.tidy(() => {
    const m = tf.expandDims(mask, 3);
    const rgb = (t: tf.Tensor) => tf.tile(t, [1, 1, 1, 3]);
    const masked = tf.add(rgb(tf.mul(x, tf.sub(1, m))), tf.mul(m, tf.tensor1d([0.15, 0.3, 0.6])));
    const tint = tf.sub(1, tf.mul(m, tf.tensor1d([0.6, 0.25, 0])));
    return tf.concat([rgb(x), masked, ...filled.map((f) => tf.mul(rgb(f), tint))]) as tf.Tensor4D;
  });
}

/**
 * Inpainting by the posterior alone, for comparison with `model.inpaint`: encode the image
 * with its unknown pixels zeroed, decode the posterior mean (a full growth from the seed),
 * and take the unknown pixels from that decode; known pixels stay the input's.
 *
 * @param x Images `[n, H, W, 1]`; mask `[n, H, W]` or `[H, W]`, 1 = unknown.
 * @returns Images `[n, H, W, 1]`.
 */
export function inpaintFromPosterior(model: VNCA, x: tf.Tensor4D, mask: tf.Tensor): tf.Tensor4D {
  return tf.tidy(() => {
    const [n, h, w] = x.shape;
    const m = tf.broadcastTo(tf.reshape(mask, [mask.rank === 2 ? 1 : n, h, w, 1]), [n, h, w, 1]);
    const known = tf.mul(x, tf.sub(1, m)) as tf.Tensor4D;
    return tf.add(known, tf.mul(model.reconstruct(known), m)) as tf.Tensor4D;
  });
}

// --- Training with checkpoints (examples 02 and 08) ----------------------------------------

/** What a checkpoint folder holds besides the model: where training stands. */
export interface CheckpointProgress {
  /** Training steps done. */
  step: number;
  /** Seed of the batch sampler. */
  seed: number;
  /** Images per step. */
  batchSize: number;
  /** Mean loss over the steps since the previous checkpoint. */
  loss?: number;
  /** When it was written. */
  savedAt: string;
}

/** Flags of the training examples (02, 08), as commander parses them. */
export interface TrainingFlags {
  steps: number;
  batch: number;
  zSize: number;
  hidden: number;
  blocks: number;
  encoderChannels: number[];
  lr: number;
  checkpointEvery: number;
  resume?: boolean;
  seed: number;
  out: string;
  backend: BackendName;
  workers: number;
}

/**
 * Adds the flags of the training examples: --steps, --batch, model sizes, --lr,
 * --checkpoint-every, --resume, --seed, --out, --backend, --workers.
 */
export function trainingOptions(program: Command, defaults: { steps: number; out: string }): Command {
  return backendOption(program
    .option('--steps <n>', 'train until the step counter reaches this', positiveInt, defaults.steps)
    .option('--batch <n>', 'images per step', positiveInt, 16)
    .option('--z-size <n>', 'latent size = channels per cell', positiveInt, 32)
    .option('--hidden <n>', 'channels inside the residual blocks of the update rule', positiveInt, 32)
    .option('--blocks <n>', 'residual blocks of the update rule', int, 4)
    .option('--encoder-channels <list>', 'channels of the 5 encoder convolutions', intList, [8, 16, 32, 64, 128])
    .option('--lr <x>', 'Adam learning rate', float, 1e-3)
    .option('--checkpoint-every <n>', 'steps between checkpoints', positiveInt, 50)
    .option('--resume', 'continue from <out>/checkpoint if it exists')
    .option('--seed <n>', 'seed of the batch sampler', int, 0)
    .option('--workers <n>', 'worker threads besides the main one, each training a share of every batch (ParallelVNCA; 1 uses a second core)', int, 0)
    .option('--out <dir>', 'output folder', defaults.out));
}

/**
 * A new model from the flags, or with --resume the checkpoint's model and step counter.
 * A resumed run keeps its checkpoint's config, batch size and batch seed (flags that differ
 * are reported and ignored), so it draws the batches an uninterrupted run would have.
 * The weights and the step come from the same `model.json` (see {@link train}), so they
 * always belong together. A checkpoint that cannot be read (a corrupt file, no step
 * recorded) stops the program with a one-line `error:` naming the file, and exit status 1.
 */
export async function startOrResume(program: Command, checkpointDir: string): Promise<{
  model: VNCA; startStep: number; batchSize: number; seed: number;
}> {
  const opts = program.opts<TrainingFlags>();
  if (opts.resume && existsSync(join(checkpointDir, 'model.json'))) {
    let model: VNCA;
    let saved: CheckpointProgress;
    try {
      const artifacts = await fileSystem(checkpointDir).load!();
      const progress = readCheckpointProgress(checkpointDir, artifacts.userDefinedMetadata ?? null);
      if (!progress) {
        throw new VncaError('startOrResume', 'checkpoint', `must record its training step (model.json userDefinedMetadata.progress, or progress.json), but ${checkpointDir} has neither; move it away to start a new run.`);
      }
      saved = progress;
      model = VNCA.fromArtifacts(artifacts);
    } catch (e) {
      console.error(`error: cannot resume from ${checkpointDir}: ${e instanceof VncaError ? e.message : (e as Error).stack ?? String(e)}`);
      process.exit(1);
    }
    for (const [flag, now, before] of [['batch', opts.batch, saved.batchSize], ['seed', opts.seed, saved.seed]] as const) {
      if (program.getOptionValueSource(flag) === 'cli' && now !== before) {
        console.log(`note: --${flag} ${now} ignored: the checkpoint's run uses ${before}`);
      }
    }
    console.log(`resuming ${checkpointDir} at step ${saved.step} (model config from the checkpoint)`);
    return { model, startStep: saved.step, batchSize: saved.batchSize, seed: saved.seed };
  }
  if (opts.resume) console.log(`no checkpoint at ${checkpointDir}: starting a new run`);
  const model = new VNCA({
    zSize: opts.zSize,
    hidden: opts.hidden,
    nBlocks: opts.blocks,
    encoderChannels: opts.encoderChannels,
    learningRate: opts.lr,
  });
  return { model, startStep: 0, batchSize: opts.batch, seed: opts.seed };
}

/**
 * Writes <out>/samples.png (16 new samples) and <out>/reconstructions.png (8 held-out
 * images, top row, and their reconstructions, bottom row): a look at a trained model.
 */
export function savePreview(model: VNCA, test: ImageDataset, out: string): void {
  tf.tidy(() => {
    savePngGrid(join(out, 'samples.png'), model.sample(16, { seed: 1 }), { scale: 3, cols: 8 });
    const x = datasetToTensor(test, 0, Math.min(8, test.count));
    savePngGrid(join(out, 'reconstructions.png'), tf.concat([x, model.reconstruct(x)]) as tf.Tensor4D, { scale: 3, cols: x.shape[0] });
  });
  console.log(`wrote ${join(out, 'samples.png')} and ${join(out, 'reconstructions.png')}`);
}

/** Options of {@link train}. */
export interface TrainOptions {
  /** The model to train (e.g. new, or loaded from a checkpoint). */
  model: VNCA;
  /** Training images (binarised, `[count, imageSize, imageSize, 1]`). */
  data: ImageDataset;
  /** Step to start from: 0, or the checkpoint's step when resuming. */
  startStep: number;
  /** Total steps: training stops when the counter reaches it. */
  steps: number;
  batchSize: number;
  seed: number;
  /** Folder of the checkpoint (model.json, weights.bin, progress.json). */
  checkpointDir: string;
  /** Steps between checkpoints (and one at the end). */
  checkpointEvery: number;
  /** Worker threads besides the main one ({@link ParallelVNCA}); 0: train on the main thread only. */
  workers?: number;
}

/** Checks that `value` is a {@link CheckpointProgress}; `source` names where it came from. */
function checkProgress(value: unknown, source: string): CheckpointProgress {
  const fn = 'readCheckpointProgress';
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new VncaError(fn, source, `must be an object { step, seed, batchSize, ... }, but holds ${JSON.stringify(value)?.slice(0, 80)}.`);
  }
  const p = value as Record<string, unknown>;
  for (const [key, min] of [['step', 0], ['seed', -Infinity], ['batchSize', 1]] as const) {
    const v = p[key];
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min) {
      throw new VncaError(fn, `${source} ${key}`, `must be an integer${min === -Infinity ? '' : ` >= ${min}`}, but got ${JSON.stringify(v)?.slice(0, 40)}.`);
    }
  }
  return value as CheckpointProgress;
}

/**
 * Where training of a checkpoint folder stands: `progress` of the `userDefinedMetadata` that
 * {@link train} saves in `model.json` with the weights, or, for checkpoints written before
 * that, `progress.json`. Undefined when neither is there.
 *
 * @param dir The checkpoint folder.
 * @param metadata `userDefinedMetadata` of the model.json already loaded (read from `dir` when not given).
 * @throws VncaError naming the file when it does not parse or lacks step, seed or batchSize.
 */
export function readCheckpointProgress(dir: string, metadata?: unknown): CheckpointProgress | undefined {
  const fn = 'readCheckpointProgress';
  const parse = (file: string): unknown => {
    try {
      return JSON.parse(readFileSync(join(dir, file), 'utf8'));
    } catch (e) {
      throw new VncaError(fn, file, `must be valid JSON, but ${join(dir, file)} does not parse (${(e as Error).name}).`);
    }
  };
  if (metadata === undefined && existsSync(join(dir, 'model.json'))) {
    metadata = (parse('model.json') as { userDefinedMetadata?: unknown } | null)?.userDefinedMetadata;
  }
  const recorded = (metadata as { progress?: unknown } | null | undefined)?.progress;
  if (recorded !== undefined) return checkProgress(recorded, 'model.json userDefinedMetadata.progress');
  return existsSync(join(dir, 'progress.json')) ? checkProgress(parse('progress.json'), 'progress.json') : undefined;
}

/**
 * {@link train}, or a line saying there is nothing to train when the checkpoint already
 * reached `steps`; then a line with the time taken and the last steps' loss and KL.
 */
export async function trainAndReport(o: TrainOptions): Promise<void> {
  if (o.startStep >= o.steps) {
    console.log(`the checkpoint is already at step ${o.startStep}; pass a larger --steps to train on`);
    return;
  }
  const start = performance.now();
  const last = await train(o);
  console.log(`trained steps ${o.startStep + 1}-${o.steps} in ${since(start)}; last ${last.steps} steps: `
    + `loss ${last.loss.toFixed(1)} nats, KL ${last.kl.toFixed(1)} nats; checkpoint in ${o.checkpointDir}/`);
}

/**
 * Trains with `model.trainStep` from `startStep` to `steps`, showing loss, KL, steps/s and
 * ETA, and checkpoints every `checkpointEvery` steps and at the end with
 * `model.save(fileSystem(dir, { metadata: { progress } }), { includeOptimizer: true })`: the
 * step counter (in `model.json`) and Adam's state are saved with the weights, and the save is atomic as a whole, so a run killed at any
 * point leaves the previous checkpoint or the new one, weights and step together. A copy of
 * the progress goes to `progress.json` afterwards, for people and older readers;
 * {@link readCheckpointProgress} prefers model.json's.
 *
 * Each step's batch comes from a generator seeded with (seed, step), so a resumed run draws
 * the same batches as an uninterrupted one, and `VNCA.load` restores Adam's moments and step,
 * so a resumed run continues the same curve (a sample pool, if any, refills).
 *
 * @returns The mean loss and KL of the last (up to 10) steps, and how many steps that is.
 */
export async function train(o: TrainOptions): Promise<{ loss: number; kl: number; steps: number }> {
  // With --workers, every batch is split over the main thread and the workers (same maths).
  const par = o.workers ? await ParallelVNCA.create(o.model, { workers: o.workers }) : null;
  const bar = progress('training', o.steps, o.startStep, ['loss', 'KL']);
  let sum = 0;
  let count = 0;
  const recent: { loss: number; kl: number }[] = [];
  const mean = (key: 'loss' | 'kl') => recent.reduce((a, v) => a + v[key], 0) / recent.length;
  for (let step = o.startStep + 1; step <= o.steps; step++) {
    const batch = sampleBatch(o.data, o.batchSize, mulberry32(o.seed * 1_000_003 + step));
    const r = par ? await par.trainStep(batch) : o.model.trainStep(batch);
    batch.dispose();
    // The display shows the mean of the last 10 steps; the checkpoint records the interval's mean.
    recent.push({ loss: r.loss, kl: r.kl });
    if (recent.length > 10) recent.shift();
    sum += r.loss;
    count++;
    bar.update(step, { loss: mean('loss').toFixed(1), KL: mean('kl').toFixed(1) });
    if (step % o.checkpointEvery === 0 || step === o.steps) {
      const record: CheckpointProgress = {
        step, seed: o.seed, batchSize: o.batchSize, loss: sum / count, savedAt: new Date().toISOString(),
      };
      await o.model.save(fileSystem(o.checkpointDir, { metadata: { progress: record } }), { includeOptimizer: true });
      writeFileAtomic(join(o.checkpointDir, 'progress.json'), `${JSON.stringify(record, null, 2)}\n`);
      sum = 0;
      count = 0;
    }
  }
  bar.stop();
  await par?.dispose();
  return { loss: mean('loss'), kl: mean('kl'), steps: recent.length };
}
