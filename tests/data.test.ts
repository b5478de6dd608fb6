import * as tf from '@tensorflow/tfjs-core';
import { mkdirSync, mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { PNG } from 'pngjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  datasetBatches, datasetToTensor, gatherImages, loadAmat, loadIdx, loadMnistDigits, loadPngFolder, sampleBatch,
  type ImageDataset,
} from '../src/node/data.js';
import { mulberry32, shuffleInPlace } from '../src/core/random.js';
import { BACKENDS, useBackend } from './helpers/backends.js';

const dir = mkdtempSync(join(tmpdir(), 'vnca-data-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Bytes of an unsigned-byte IDX file with the given dims. */
function idx(dims: number[], data: ArrayLike<number>, magicRank = dims.length): Buffer {
  const head = Buffer.alloc(4 + 4 * dims.length);
  head[2] = 0x08;
  head[3] = magicRank;
  dims.forEach((d, i) => head.writeUInt32BE(d, 4 + 4 * i));
  return Buffer.concat([head, Buffer.from(Uint8Array.from(data))]);
}

function imageOf(ds: ImageDataset, n: number): Float32Array {
  const size = ds.height * ds.width * ds.channels;
  return ds.images.subarray(n * size, (n + 1) * size);
}

describe('mulberry32', () => {
  it('is deterministic, in [0, 1) and roughly uniform', () => {
    const a = Array.from({ length: 10_000 }, mulberry32(7));
    const b = Array.from({ length: 10_000 }, mulberry32(7));
    expect(a).toEqual(b);
    expect(a.every((u) => u >= 0 && u < 1)).toBe(true);
    const sum = a.reduce((x, y) => x + y, 0);
    expect(sum / 10_000).toBeCloseTo(0.5, 1);
    expect(mulberry32(8)()).not.toBe(mulberry32(7)());
  });

  it('shuffleInPlace permutes', () => {
    const v = shuffleInPlace([0, 1, 2, 3, 4, 5, 6, 7, 8, 9], mulberry32(1));
    expect([...v].sort((x, y) => x - y)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(v).not.toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });
});

describe('loadMnistDigits', () => {
  const train = loadMnistDigits();
  const test = loadMnistDigits({ split: 'test' });

  it('gives 32x32x1 binary images with labels, train + test = all', () => {
    const all = loadMnistDigits({ split: 'all' });
    for (const ds of [train, test, all]) {
      expect([ds.height, ds.width, ds.channels]).toEqual([32, 32, 1]);
      expect(ds.images.length).toBe(ds.count * 32 * 32);
      expect(ds.labels!.length).toBe(ds.count);
      expect(ds.images.every((v) => v === 0 || v === 1)).toBe(true);
    }
    expect(train.count + test.count).toBe(all.count);
    expect(all.count).toBe(10_000);
    expect(test.count).toBeGreaterThan(900);
    expect(test.count).toBeLessThan(1100);
  });

  it('pads with zeros and keeps ink inside', () => {
    const img = imageOf(train, 0);
    for (let y = 0; y < 32; y++) {
      for (let x = 0; x < 32; x++) {
        if (y < 2 || y >= 30 || x < 2 || x >= 30) expect(img[y * 32 + x]).toBe(0);
      }
    }
    expect(img.reduce((a, b) => a + b, 0)).toBeGreaterThan(20);
  });

  it('has every class in both splits, about 10% test each, and a prefix that mixes classes', () => {
    const counts = (ds: ImageDataset) => {
      const c = new Array(10).fill(0);
      ds.labels!.forEach((l) => c[l]++);
      return c;
    };
    const ctr = counts(train);
    const cte = counts(test);
    for (let d = 0; d < 10; d++) {
      expect(cte[d] / (ctr[d] + cte[d])).toBeCloseTo(0.1, 2);
    }
    expect(new Set(train.labels!.subarray(0, 100)).size).toBe(10);
  });

  it('keeps train and test disjoint', () => {
    const key = (a: Float32Array) => a.join('');
    const trainKeys = new Set<string>();
    for (let n = 0; n < train.count; n++) trainKeys.add(key(imageOf(train, n)));
    let shared = 0;
    for (let n = 0; n < test.count; n++) if (trainKeys.has(key(imageOf(test, n)))) shared++;
    // Binarised digits could in principle collide; real ones essentially never do.
    expect(shared).toBe(0);
  });

  it('is deterministic, and the seed changes only the binarisation', () => {
    const again = loadMnistDigits({ split: 'test' });
    expect(Buffer.from(again.images.buffer).equals(Buffer.from(test.images.buffer))).toBe(true);
    expect(again.labels).toEqual(test.labels);
    const other = loadMnistDigits({ split: 'test', seed: 1 });
    expect(other.labels).toEqual(test.labels);
    expect(Buffer.from(other.images.buffer).equals(Buffer.from(test.images.buffer))).toBe(false);
  });

  it('gives grey values without binarisation and honours pad', () => {
    const grey = loadMnistDigits({ split: 'test', binarize: false, pad: 0 });
    expect([grey.height, grey.width]).toEqual([28, 28]);
    expect(grey.images.some((v) => v > 0 && v < 1)).toBe(true);
    expect(grey.labels).toEqual(test.labels);
  });

  it('rejects bad options', () => {
    expect(() => loadMnistDigits({ split: 'val' as 'train' })).toThrowError(/loadMnistDigits: options.split must be one of/);
    expect(() => loadMnistDigits({ pad: -1 })).toThrowError(/options.pad must be an integer >= 0/);
    expect(() => loadMnistDigits({ binarize: 1 as unknown as boolean })).toThrowError(/options.binarize must be a boolean/);
  });
});

describe('loadIdx', () => {
  // Three 2x3 images with values 0, 51, ..., 255 and labels 7, 8, 9.
  const pixels = Array.from({ length: 18 }, (_, i) => (i * 15) % 256);
  const imagesPath = join(dir, 'images-idx3-ubyte');
  const labelsPath = join(dir, 'labels-idx1-ubyte');
  beforeAll(() => {
    writeFileSync(imagesPath, idx([3, 2, 3], pixels));
    writeFileSync(labelsPath, idx([3], [7, 8, 9]));
    writeFileSync(`${imagesPath}.gz`, gzipSync(idx([3, 2, 3], pixels)));
    writeFileSync(`${labelsPath}.gz`, gzipSync(idx([3], [7, 8, 9])));
  });

  it('reads images scaled to [0, 1] and labels', () => {
    const ds = loadIdx(imagesPath, labelsPath, { binarize: false, pad: 0 });
    expect([ds.count, ds.height, ds.width, ds.channels]).toEqual([3, 2, 3, 1]);
    expect(Array.from(ds.images)).toEqual(pixels.map((v) => Math.fround(v / 255)));
    expect(Array.from(ds.labels!)).toEqual([7, 8, 9]);
  });

  it('reads gzipped files the same way', () => {
    const a = loadIdx(imagesPath, labelsPath, { binarize: false, pad: 1 });
    const b = loadIdx(`${imagesPath}.gz`, `${labelsPath}.gz`, { binarize: false, pad: 1 });
    expect(b).toEqual(a);
    expect([a.height, a.width]).toEqual([4, 5]);
    expect(a.images[0]).toBe(0);
    expect(a.images[1 * 5 + 1]).toBe(pixels[0] / 255);
  });

  it('binarises deterministically by default, 0 stays 0 and 255 stays 1', () => {
    const a = loadIdx(imagesPath);
    const b = loadIdx(imagesPath);
    expect(a.images).toEqual(b.images);
    expect([a.height, a.width]).toEqual([6, 7]);
    expect(a.images.every((v) => v === 0 || v === 1)).toBe(true);
    const c = loadIdx(imagesPath, undefined, { pad: 0 });
    pixels.forEach((v, i) => {
      if (v === 0) expect(c.images[i]).toBe(0);
      if (v === 255) expect(c.images[i]).toBe(1);
    });
    expect(c.labels).toBeUndefined();
  });

  it('rejects a bad magic number, truncated files, a label count mismatch and a missing file', () => {
    const bad = join(dir, 'bad-magic');
    writeFileSync(bad, idx([3], [1, 2, 3]));
    expect(() => loadIdx(bad)).toThrowError(/loadIdx: imagesPath must be an unsigned-byte IDX file of rank 3 .*magic 0x00000801/);
    const rank = join(dir, 'bad-rank');
    writeFileSync(rank, idx([3, 2, 3], pixels, 4));
    expect(() => loadIdx(rank)).toThrowError(/magic 0x00000804/);
    const short = join(dir, 'short');
    writeFileSync(short, idx([3, 2, 3], pixels).subarray(0, 30));
    expect(() => loadIdx(short)).toThrowError(/imagesPath must hold 18 bytes of data for dims \[3, 2, 3\], but .* is truncated \(14 bytes\)/);
    const header = join(dir, 'header');
    writeFileSync(header, idx([3, 2, 3], pixels).subarray(0, 10));
    expect(() => loadIdx(header)).toThrowError(/complete IDX header/);
    const tiny = join(dir, 'tiny');
    writeFileSync(tiny, Buffer.from([0, 0]));
    expect(() => loadIdx(tiny)).toThrowError(/has only 2 bytes/);
    const twoLabels = join(dir, 'two-labels');
    writeFileSync(twoLabels, idx([2], [1, 2]));
    expect(() => loadIdx(imagesPath, twoLabels)).toThrowError(/labelsPath must hold one label per image \(3\), but .* holds 2/);
    expect(() => loadIdx(join(dir, 'nope'))).toThrowError(/imagesPath must be a readable file/);
    const notGz = join(dir, 'not.gz');
    writeFileSync(notGz, 'hello');
    expect(() => loadIdx(notGz)).toThrowError(/must be a valid gzip file/);
  });
});

describe('loadAmat', () => {
  const row = (f: (i: number) => number) => Array.from({ length: 784 }, (_, i) => f(i)).join(' ');

  it('parses 0/1 rows, skips blank lines and pads', () => {
    const path = join(dir, 'ok.amat');
    writeFileSync(path, `${row((i) => i % 2)}\n\n${row((i) => (i === 0 ? 1 : 0))}\n`);
    const ds = loadAmat(path);
    expect([ds.count, ds.height, ds.width, ds.channels]).toEqual([2, 32, 32, 1]);
    expect(ds.images[2 * 32 + 2]).toBe(0);
    expect(ds.images[2 * 32 + 3]).toBe(1);
    expect(ds.images[1024 + 2 * 32 + 2]).toBe(1);
    expect(ds.images.reduce((a, b) => a + b, 0)).toBe(392 + 1);
    const raw = loadAmat(path, { pad: 0 });
    expect([raw.height, raw.width]).toEqual([28, 28]);
  });

  it('names the line of a malformed row, and rejects an empty file', () => {
    const count = join(dir, 'count.amat');
    writeFileSync(count, `${row(() => 0)}\n${row(() => 1)} 1\n`);
    expect(() => loadAmat(count)).toThrowError(/loadAmat: path must hold 784 values per line, but line 2 of .* has 785/);
    const value = join(dir, 'value.amat');
    writeFileSync(value, row((i) => (i === 5 ? 0.5 : 0)));
    expect(() => loadAmat(value)).toThrowError(/must hold only 0\/1 values, but line 1 of .* has "0.5" at position 6/);
    const text = join(dir, 'text.amat');
    writeFileSync(text, row((i) => (i === 0 ? 'x' as unknown as number : 1)));
    expect(() => loadAmat(text)).toThrowError(/has "x" at position 1/);
    const empty = join(dir, 'empty.amat');
    writeFileSync(empty, '\n\n');
    expect(() => loadAmat(empty)).toThrowError(/must hold at least one image, but .* is empty/);
  });
});

describe('loadPngFolder', () => {
  const folder = join(dir, 'png');
  const odd = join(dir, 'png-odd');
  function writePng(path: string, w: number, h: number, rgba: (x: number, y: number) => number[]): void {
    const png = new PNG({ width: w, height: h });
    for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) png.data.set(rgba(x, y), 4 * (y * w + x));
    writeFileSync(path, PNG.sync.write(png));
  }
  beforeAll(() => {
    mkdirSync(folder);
    mkdirSync(odd);
    writePng(join(folder, 'b.png'), 3, 2, (x, y) => [255, x * 100, y * 51, 10]);
    writePng(join(folder, 'a.png'), 3, 2, () => [0, 0, 255, 255]);
    writeFileSync(join(folder, 'notes.txt'), 'ignored');
    writePng(join(odd, 'a.png'), 3, 2, () => [0, 0, 0, 255]);
    writePng(join(odd, 'b.png'), 2, 2, () => [0, 0, 0, 255]);
  });

  it('reads RGB in [0, 1], sorted by name, alpha dropped', () => {
    const ds = loadPngFolder(folder);
    expect([ds.count, ds.height, ds.width, ds.channels]).toEqual([2, 2, 3, 3]);
    expect(Array.from(ds.images.subarray(0, 3))).toEqual([0, 0, 1]); // a.png first
    const b = ds.images.subarray(18);
    // pixel (x = 2, y = 1) of b.png: [255, 200, 51]
    expect(Array.from(b.subarray((1 * 3 + 2) * 3, (1 * 3 + 2) * 3 + 3))).toEqual([1, 200 / 255, 51 / 255].map(Math.fround));
    expect(loadPngFolder(folder, { size: [2, 3] }).count).toBe(2);
  });

  it('names the file of another size, and rejects a folder without PNGs', () => {
    expect(() => loadPngFolder(odd)).toThrowError(/loadPngFolder: dir must hold images of one size \(2x3\), but "b.png" is 2x2/);
    expect(() => loadPngFolder(folder, { size: 2 })).toThrowError(/one size \(2x2\), but "a.png" is 2x3/);
    expect(() => loadPngFolder(join(dir, 'missing'))).toThrowError(/dir must be a readable folder/);
    const none = mkdtempSync(join(dir, 'none-'));
    expect(() => loadPngFolder(none)).toThrowError(/must hold at least one .png file/);
  });
});

describe.each(BACKENDS)('dataset tensors on %s', (name) => {
  beforeAll(() => useBackend(name));
  const ds: ImageDataset = {
    images: Float32Array.from({ length: 5 * 2 * 2 * 1 }, (_, i) => i / 20),
    count: 5, height: 2, width: 2, channels: 1,
  };

  it('datasetToTensor slices NHWC', () => {
    const before = tf.memory().numTensors;
    const t = datasetToTensor(ds, 1, 3);
    expect(t.shape).toEqual([2, 2, 2, 1]);
    expect(Array.from(t.dataSync())).toEqual(Array.from(ds.images.subarray(4, 12)));
    t.dispose();
    const all = datasetToTensor(ds);
    expect(all.shape).toEqual([5, 2, 2, 1]);
    all.dispose();
    expect(tf.memory().numTensors).toBe(before);
    expect(() => datasetToTensor(ds, 3, 2)).toThrowError(/datasetToTensor: end must be an integer in \[3, 5\]/);
  });

  it('gatherImages, sampleBatch and datasetBatches', () => {
    const before = tf.memory().numTensors;
    const g = gatherImages(ds, [4, 0]);
    expect(Array.from(g.dataSync())).toEqual([...ds.images.subarray(16, 20), ...ds.images.subarray(0, 4)]);
    g.dispose();
    expect(() => gatherImages(ds, [5])).toThrowError(/gatherImages: indices must be integers in \[0, 4\], but got 5/);

    const s1 = sampleBatch(ds, 3, mulberry32(4));
    const s2 = sampleBatch(ds, 3, mulberry32(4));
    expect(s1.shape).toEqual([3, 2, 2, 1]);
    expect(Array.from(s1.dataSync())).toEqual(Array.from(s2.dataSync()));
    const firsts = Array.from(s1.dataSync()).filter((_, i) => i % 4 === 0);
    expect(new Set(firsts).size).toBe(3); // distinct images
    tf.dispose([s1, s2]);
    expect(() => sampleBatch(ds, 6, mulberry32(0))).toThrowError(/sampleBatch: batchSize must be an integer in \[1, 5\]/);

    const sizes: number[] = [];
    const seen: number[] = [];
    for (const b of datasetBatches(ds, 2, { shuffle: true, seed: 1 })) {
      sizes.push(b.shape[0]);
      Array.from(b.dataSync()).forEach((v, i) => { if (i % 4 === 0) seen.push(Math.round(v * 5)); });
      b.dispose();
    }
    expect(sizes).toEqual([2, 2, 1]);
    expect(seen.sort()).toEqual([0, 1, 2, 3, 4]);
    expect([...datasetBatches(ds, 2, { dropLast: true })].map((b) => { b.dispose(); return b.shape[0]; })).toEqual([2, 2]);
    expect(tf.memory().numTensors).toBe(before);
  });
});
