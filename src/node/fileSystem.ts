import * as tf from '@tensorflow/tfjs-core';
import { mkdirSync, readFileSync, renameSync, writeFileSync, rmSync, existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { VncaError, describe } from '../core/errors.js';

/**
 * Writes a file atomically: the bytes go to a temporary file beside it, which is then renamed
 * over the target, so a reader never sees a half-written file.
 *
 * @param path Target path (its folder is created).
 * @param data Bytes or text.
 * @category Node
 */
export function writeFileAtomic(path: string, data: Uint8Array | string): void {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.tmp-${process.pid}-${Date.now()}`;
  try {
    writeFileSync(tmp, data);
    renameSync(tmp, path);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
}

/**
 * A tfjs IO handler that saves to and loads from a folder on disk: `model.json` (tfjs format,
 * with the VNCA config as `modelTopology`) and `weights.bin`. Both files are written
 * atomically, weights first, so an interrupted save leaves the previous model intact.
 * (`@tensorflow/tfjs-node` registers `file://`; this works without it, on any backend.)
 *
 * @param dir The folder.
 * @returns An IO handler for `VNCA.save` and `VNCA.load`.
 * @example
 * ```ts
 * import { fileSystem } from 'vnca/node';
 * await model.save(fileSystem('checkpoints/run1'));
 * const again = await VNCA.load(fileSystem('checkpoints/run1'));
 * ```
 * @category Node
 */
export function fileSystem(dir: string): tf.io.IOHandler {
  if (typeof dir !== 'string' || dir.length === 0) {
    throw new VncaError('fileSystem', 'dir', `must be a non-empty path string, but got ${describe(dir)}.`);
  }
  const root = resolve(dir);
  const modelPath = join(root, 'model.json');
  const weightsName = 'weights.bin';
  return {
    async save(artifacts: tf.io.ModelArtifacts): Promise<tf.io.SaveResult> {
      const data = artifacts.weightData
        ? tf.io.concatenateArrayBuffers(Array.isArray(artifacts.weightData) ? artifacts.weightData : [artifacts.weightData])
        : new ArrayBuffer(0);
      const json = {
        modelTopology: artifacts.modelTopology,
        format: artifacts.format,
        generatedBy: artifacts.generatedBy,
        convertedBy: artifacts.convertedBy ?? null,
        weightsManifest: [{ paths: [weightsName], weights: artifacts.weightSpecs ?? [] }],
      };
      writeFileAtomic(join(root, weightsName), new Uint8Array(data));
      writeFileAtomic(modelPath, JSON.stringify(json));
      return {
        modelArtifactsInfo: {
          dateSaved: new Date(),
          modelTopologyType: 'JSON',
          modelTopologyBytes: JSON.stringify(artifacts.modelTopology ?? null).length,
          weightSpecsBytes: JSON.stringify(artifacts.weightSpecs ?? []).length,
          weightDataBytes: data.byteLength,
        },
      };
    },
    async load(): Promise<tf.io.ModelArtifacts> {
      const fn = 'fileSystem.load';
      if (!existsSync(modelPath)) throw new VncaError(fn, 'dir', `must contain model.json, but ${modelPath} does not exist.`);
      let json: tf.io.ModelJSON;
      try {
        json = JSON.parse(readFileSync(modelPath, 'utf8')) as tf.io.ModelJSON;
      } catch (e) {
        throw new VncaError(fn, 'model.json', `must be valid JSON, but it does not parse (${(e as Error).message}).`);
      }
      if (!Array.isArray(json.weightsManifest)) {
        throw new VncaError(fn, 'model.json', 'must have a weightsManifest array, but it is missing.');
      }
      const specs: tf.io.WeightsManifestEntry[] = [];
      const buffers: ArrayBuffer[] = [];
      for (const group of json.weightsManifest) {
        specs.push(...group.weights);
        for (const p of group.paths) {
          const file = join(root, p);
          if (!existsSync(file)) throw new VncaError(fn, 'weights', `must be at ${file}, but that file does not exist.`);
          const b = readFileSync(file);
          buffers.push(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer);
        }
      }
      return {
        modelTopology: json.modelTopology,
        format: json.format,
        generatedBy: json.generatedBy,
        convertedBy: json.convertedBy ?? undefined,
        weightSpecs: specs,
        weightData: tf.io.concatenateArrayBuffers(buffers),
      };
    },
  };
}
