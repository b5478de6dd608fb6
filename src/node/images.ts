import * as tf from '@tensorflow/tfjs-core';
import { PNG } from 'pngjs';
import gifenc from 'gifenc';
import { VncaError, assertState, assertInt, describe } from '../core/errors.js';
import { writeFileAtomic } from './fileSystem.js';

/**
 * Options for laying out a batch of images as a grid.
 *
 * @category Node
 */
export interface GridOptions {
  /** Images per row. Default: ceil(sqrt(batch)). */
  cols?: number;
  /** Integer upscaling of each pixel (nearest neighbour). Default 1. */
  scale?: number;
  /** Pixels of background between images. Default 1. */
  gap?: number;
  /** Background grey in [0, 1]. Default 0.5. */
  background?: number;
}

/** A batch of images laid out as one RGB picture. @category Node */
export interface RgbPicture {
  width: number;
  height: number;
  /** RGBA bytes, row-major, `width * height * 4`. */
  rgba: Uint8Array;
}

/**
 * Lays a batch of images `[batch, height, width, 1 or 3]` with values in [0, 1] out as a grid.
 *
 * @param images Images `[batch, height, width, channels]`, channels 1 (grey) or 3 (RGB); values clipped to [0, 1].
 * @param options cols, scale, gap, background.
 * @returns The picture's RGBA bytes and size.
 * @category Node
 */
export function imageGrid(images: tf.Tensor4D, options: GridOptions = {}): RgbPicture {
  const fn = 'imageGrid';
  assertState(images, fn, 'images');
  const [n, h, w, c] = images.shape;
  if (c !== 1 && c !== 3) throw new VncaError(fn, 'images', `must have 1 or 3 channels, but got ${c}.`);
  const cols = options.cols ?? Math.ceil(Math.sqrt(n));
  assertInt(cols, fn, 'options.cols', 1);
  const scale = options.scale ?? 1;
  assertInt(scale, fn, 'options.scale', 1, 64);
  const gap = options.gap ?? 1;
  assertInt(gap, fn, 'options.gap', 0);
  const bg = Math.round(255 * Math.min(1, Math.max(0, options.background ?? 0.5)));
  const rows = Math.ceil(n / cols);
  const width = cols * w * scale + (cols + 1) * gap;
  const height = rows * h * scale + (rows + 1) * gap;
  const rgba = new Uint8Array(width * height * 4).fill(bg);
  for (let i = 3; i < rgba.length; i += 4) rgba[i] = 255;
  const values = images.dataSync();
  for (let k = 0; k < n; k++) {
    const ox = gap + (k % cols) * (w * scale + gap);
    const oy = gap + Math.floor(k / cols) * (h * scale + gap);
    for (let y = 0; y < h * scale; y++) {
      for (let x = 0; x < w * scale; x++) {
        const src = ((k * h + Math.floor(y / scale)) * w + Math.floor(x / scale)) * c;
        const dst = ((oy + y) * width + ox + x) * 4;
        for (let ch = 0; ch < 3; ch++) {
          const v = values[src + (c === 1 ? 0 : ch)]!;
          rgba[dst + ch] = Math.round(255 * Math.min(1, Math.max(0, Number.isFinite(v) ? v : 0)));
        }
      }
    }
  }
  return { width, height, rgba };
}

/**
 * Encodes a picture as PNG bytes (pngjs).
 *
 * @param picture RGBA bytes and size.
 * @returns PNG file bytes.
 * @category Node
 */
export function encodePng(picture: RgbPicture): Uint8Array {
  const png = new PNG({ width: picture.width, height: picture.height });
  png.data = Buffer.from(picture.rgba.buffer, picture.rgba.byteOffset, picture.rgba.byteLength);
  return new Uint8Array(PNG.sync.write(png));
}

/**
 * Writes a batch of images as one PNG grid, atomically.
 *
 * @param path Output `.png` path.
 * @param images Images `[batch, height, width, 1 or 3]` in [0, 1].
 * @param options Grid layout.
 * @returns The written picture's width and height.
 * @category Node
 */
export function savePngGrid(path: string, images: tf.Tensor4D, options: GridOptions = {}): { width: number; height: number } {
  const pic = imageGrid(images, options);
  writeFileAtomic(path, encodePng(pic));
  return { width: pic.width, height: pic.height };
}

/**
 * Encodes frames as an animated GIF (gifenc). Every frame is a batch laid out as a grid; frames
 * of smaller grids (e.g. early growth states) are upscaled by nearest neighbour to the largest
 * frame's image size, so growth plays at one size.
 *
 * @param frames A list of image batches, each `[batch, h_i, w_i, 1 or 3]` in [0, 1], same batch size.
 * @param options Grid layout (applied at the final image size) and `delay` per frame in ms
 *   (default 100), `lastDelay` for the final frame (default 1000).
 * @returns GIF file bytes.
 * @category Node
 */
export function encodeGif(frames: tf.Tensor4D[], options: GridOptions & { delay?: number; lastDelay?: number } = {}): Uint8Array {
  const fn = 'encodeGif';
  if (!Array.isArray(frames) || frames.length === 0) throw new VncaError(fn, 'frames', `must be a non-empty array of tensors, but got ${describe(frames)}.`);
  frames.forEach((f, i) => assertState(f, fn, `frames[${i}]`));
  const n = frames[0]!.shape[0];
  const size = Math.max(...frames.map((f) => f.shape[1]));
  const enc = gifenc.GIFEncoder();
  const delay = options.delay ?? 100;
  const lastDelay = options.lastDelay ?? 1000;
  frames.forEach((f, i) => {
    if (f.shape[0] !== n) throw new VncaError(fn, `frames[${i}]`, `must have batch ${n} like frames[0], but got ${f.shape[0]}.`);
    const up = tf.tidy(() => (f.shape[1] === size ? tf.clone(f) : tf.image.resizeNearestNeighbor(f, [size, size])) as tf.Tensor4D);
    const pic = imageGrid(up, options);
    up.dispose();
    const palette = gifenc.quantize(pic.rgba, 256);
    const index = gifenc.applyPalette(pic.rgba, palette);
    enc.writeFrame(index, pic.width, pic.height, { palette, delay: i === frames.length - 1 ? lastDelay : delay });
  });
  enc.finish();
  return enc.bytes();
}

/**
 * Writes frames as an animated GIF, atomically (see {@link encodeGif}).
 *
 * @param path Output `.gif` path.
 * @param frames Image batches `[batch, h_i, w_i, 1 or 3]` in [0, 1].
 * @param options Layout and frame delays.
 * @category Node
 */
export function saveGif(path: string, frames: tf.Tensor4D[], options: GridOptions & { delay?: number; lastDelay?: number } = {}): void {
  writeFileAtomic(path, encodeGif(frames, options));
}

/** The 8 bytes every PNG file starts with. */
const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

/**
 * Reads a PNG's width and height from its header (the IHDR chunk) without decoding it, and
 * refuses a header that the file's bytes cannot back: deflate expands at most about 1032
 * times, so a file whose smallest possible decoded size (1 bit a pixel) is more than that
 * many times its own size is broken or hostile. Check the size against what you expect
 * before decoding: pngjs allocates width x height x 4 bytes first.
 *
 * @param bytes The PNG file.
 * @param fn The public function to name in the error.
 * @param name The file, for the error message.
 * @returns Width and height in pixels.
 * @throws VncaError when the file is not a PNG or its header is implausible.
 * @internal
 */
export function pngHeaderSize(bytes: Uint8Array, fn: string, name: string): { width: number; height: number } {
  const bad = (why: string) => new VncaError(fn, 'dir', `must hold valid PNG files, but ${JSON.stringify(name)} ${why}.`);
  if (bytes.length < 33 || !PNG_SIGNATURE.every((b, i) => bytes[i] === b)) throw bad('does not start with a PNG signature and header');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (String.fromCharCode(...bytes.subarray(12, 16)) !== 'IHDR') throw bad('has no IHDR chunk first');
  const width = view.getUint32(16);
  const height = view.getUint32(20);
  if (width === 0 || height === 0) throw bad(`declares a size of ${width}x${height}`);
  const leastDecoded = height * (1 + Math.ceil(width / 8));
  if (leastDecoded > 1032 * bytes.length + 1024) {
    throw bad(`declares ${width}x${height} pixels, more than its ${bytes.length} bytes can hold`);
  }
  return { width, height };
}
