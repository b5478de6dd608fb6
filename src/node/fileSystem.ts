import * as tf from '@tensorflow/tfjs-core';
import {
  closeSync, constants, fstatSync, fsyncSync, mkdirSync, openSync, readdirSync, readSync, realpathSync, renameSync,
  statSync, unlinkSync, writeSync, type Stats,
} from 'node:fs';
import { createHash } from 'node:crypto';
import { dirname, isAbsolute, join, relative, resolve, sep, win32 } from 'node:path';
import { VncaError, describe } from '../core/errors.js';
import { checkWeightData, checkWeightSpecs } from '../core/io.js';

/** `model.json` larger than this is refused unread (a vnca model.json is a few kB). */
const MAX_MODEL_JSON_BYTES = 64 * 2 ** 20;

/** Weight files a save of ours writes: `weights-<16 hex digits of sha256>.bin`, and `weights.bin` of older saves. */
const WEIGHTS_FILE = /^weights(-[0-9a-f]{16})?\.bin$/;

/** Temporary files of {@link writeFileAtomic} in a model folder: `<name>.tmp-<pid>-<random>`. */
const TEMP_FILE = /^(model\.json|weights(-[0-9a-f]{16})?\.bin)\.tmp-(\d+)-[0-9a-z]+$/;

/** The code of a Node system error, or undefined. */
function errorCode(e: unknown): string | undefined {
  return (e as NodeJS.ErrnoException | undefined)?.code;
}

/** What a file system entry is, for error messages. */
function kindOf(st: Stats): string {
  if (st.isDirectory()) return 'a folder';
  if (st.isFIFO()) return 'a FIFO';
  if (st.isSocket()) return 'a socket';
  if (st.isCharacterDevice() || st.isBlockDevice()) return 'a device';
  if (st.isSymbolicLink()) return 'a symbolic link';
  return st.isFile() ? 'a file' : 'not a regular file';
}

/**
 * Creates `dir` and its missing parents, one level at a time. (Node 20's
 * `mkdirSync(dir, { recursive: true })` spins forever on paths such as `/proc/self/x`,
 * where the parent exists but refuses new entries.)
 */
function makeDirs(dir: string, fn: string, arg: string): void {
  const missing: string[] = [];
  for (let d = resolve(dir); ; d = dirname(d)) {
    let st: Stats | undefined;
    try {
      st = statSync(d);
    } catch (e) {
      if (errorCode(e) !== 'ENOENT') throw new VncaError(fn, arg, `must be in a folder that can be created, but ${JSON.stringify(d)} cannot be read (${errorCode(e) ?? (e as Error).message}).`);
    }
    if (st) {
      if (!st.isDirectory()) throw new VncaError(fn, arg, `must be in a folder, but ${JSON.stringify(d)} is ${kindOf(st)}.`);
      break;
    }
    missing.push(d);
    if (dirname(d) === d) break;
  }
  for (const d of missing.reverse()) {
    try {
      mkdirSync(d);
    } catch (e) {
      if (errorCode(e) !== 'EEXIST') throw new VncaError(fn, arg, `must be in a folder that can be created, but creating ${JSON.stringify(d)} failed (${errorCode(e) ?? (e as Error).message}).`);
    }
  }
}

/** Flushes a folder's entries (renames, deletions) to disk. Not every platform can; those skip it. */
function fsyncDir(dir: string): void {
  let fd: number;
  try {
    fd = openSync(dir, 'r');
  } catch {
    return; // e.g. Windows cannot open a folder
  }
  try {
    fsyncSync(fd);
  } catch (e) {
    if (!['EINVAL', 'EISDIR', 'EPERM', 'EBADF', 'ENOTSUP'].includes(errorCode(e) ?? '')) throw e;
  } finally {
    closeSync(fd);
  }
}

/** Writes `data` to a new temporary file beside `path`, flushes it, renames it over `path`, flushes the folder. */
function writeDurably(path: string, data: Uint8Array): void {
  const tmp = `${path}.tmp-${process.pid}-${Math.random().toString(36).slice(2, 10)}`;
  try {
    const fd = openSync(tmp, 'wx');
    try {
      for (let at = 0; at < data.byteLength;) at += writeSync(fd, data, at, data.byteLength - at);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, path);
  } catch (e) {
    try {
      unlinkSync(tmp);
    } catch { /* it was never created, or is gone */ }
    throw e;
  }
  fsyncDir(dirname(path));
}

/**
 * Writes a file atomically and durably: the bytes go to a new temporary file beside the
 * target, which is flushed to disk (fsync), renamed over the target, and the folder flushed
 * too. A reader never sees a half-written file, and after a crash or power cut the file
 * holds the old bytes or the new ones.
 *
 * @param path Target path (its folder is created).
 * @param data Bytes or text.
 * @throws VncaError when the folder cannot be created.
 * @category Node
 */
export function writeFileAtomic(path: string, data: Uint8Array | string): void {
  const fn = 'writeFileAtomic';
  if (typeof path !== 'string' || path.length === 0) throw new VncaError(fn, 'path', `must be a non-empty path string, but got ${describe(path)}.`);
  makeDirs(dirname(resolve(path)), fn, 'path');
  writeDurably(path, typeof data === 'string' ? new TextEncoder().encode(data) : data);
}

/** Options of {@link fileSystem}. @category Node */
export interface FileSystemOptions {
  /**
   * JSON data to store in `model.json` as `userDefinedMetadata` on save (e.g. a training
   * step), written in the same atomic step as the weights; `load()` returns it as
   * `artifacts.userDefinedMetadata`.
   */
  metadata?: Record<string, unknown>;
}

/** An open regular file inside the model folder. */
interface OpenFile { fd: number; size: number; path: string }

/**
 * Opens `name`, a path relative to the model folder `root` (already resolved with realpath),
 * for reading, refusing paths that are absolute, carry a URL scheme, lead outside the
 * folder (also through symbolic links), or name anything but a regular file. A FIFO is
 * opened without blocking and refused, so it cannot hang the load.
 */
function openInside(root: string, name: unknown, fn: string, arg: string): OpenFile {
  if (typeof name !== 'string' || name.length === 0 || name.includes('\0')) {
    throw new VncaError(fn, arg, `must be a non-empty relative file name, but got ${describe(name)}.`);
  }
  if (isAbsolute(name) || win32.isAbsolute(name) || /^[a-z][a-z0-9+.-]*:/i.test(name)) {
    throw new VncaError(fn, arg, `must be a path relative to the model folder, but got ${JSON.stringify(name)}.`);
  }
  const inside = (p: string) => {
    const r = relative(root, p);
    return r !== '..' && !r.startsWith(`..${sep}`) && !isAbsolute(r);
  };
  const outside = () => new VncaError(fn, arg, `must name a file inside the model folder ${JSON.stringify(root)}, but ${JSON.stringify(name)} leads outside it.`);
  const full = resolve(root, name);
  if (!inside(full)) throw outside();
  let real: string;
  try {
    real = realpathSync(full);
  } catch (e) {
    throw new VncaError(fn, arg, `must name an existing file, but ${JSON.stringify(full)} cannot be resolved (${errorCode(e) ?? (e as Error).message}).`);
  }
  if (!inside(real)) throw outside();
  let fd: number;
  try {
    fd = openSync(real, constants.O_RDONLY | (constants.O_NONBLOCK ?? 0) | (constants.O_NOFOLLOW ?? 0));
  } catch (e) {
    throw new VncaError(fn, arg, `must name a readable file, but opening ${JSON.stringify(full)} failed (${errorCode(e) ?? (e as Error).message}).`);
  }
  const st = fstatSync(fd);
  if (!st.isFile()) {
    closeSync(fd);
    throw new VncaError(fn, arg, `must name a regular file, but ${JSON.stringify(full)} is ${kindOf(st)}.`);
  }
  return { fd, size: st.size, path: full };
}

/** Reads `file.size` bytes of an open file into `into` at `offset`. */
function readAll(file: OpenFile, into: Uint8Array, offset: number, fn: string, arg: string): void {
  let at = 0;
  while (at < file.size) {
    const n = readSync(file.fd, into, offset + at, file.size - at, null);
    if (n === 0) throw new VncaError(fn, arg, `must hold ${file.size} bytes, but ${JSON.stringify(file.path)} ended after ${at} (it changed while being read).`);
    at += n;
  }
}

/** Deletes weight files of earlier saves (and temporary files of crashed ones) that `keep` does not use. */
function removeStale(root: string, keep: string): void {
  for (const name of readdirSync(root)) {
    const temp = TEMP_FILE.exec(name);
    let stale = WEIGHTS_FILE.test(name) && name !== keep;
    if (temp) {
      const pid = Number(temp[3]);
      try {
        if (pid !== process.pid) process.kill(pid, 0); // throws when no such process lives
      } catch (e) {
        stale = errorCode(e) === 'ESRCH';
      }
    }
    if (!stale) continue;
    try {
      unlinkSync(join(root, name));
    } catch { /* gone already, or not ours to remove: the model is saved either way */ }
  }
}

/**
 * A tfjs IO handler that saves to and loads from a folder on disk: `model.json` (tfjs format,
 * with the model's config as `modelTopology`) and one weights file named by its content,
 * `weights-<16 hex digits of its sha256>.bin`. (`@tensorflow/tfjs-node` registers `file://`;
 * this works without it, on any backend.)
 *
 * **A save is atomic as a whole.** The weights go to their new file first, then `model.json`,
 * which names them, replaces the old one in one rename; the old weights file is deleted only
 * after that. Every file and the folder are flushed to disk (fsync) before the next step.
 * Killed or cut off at any point, the folder loads as the previous save or as the new one,
 * never as a mix. One process at a time may save into a folder.
 *
 * **A load is a security boundary.** Every path in `model.json` must be relative and lead to
 * a regular file inside the folder (also after following symbolic links); FIFOs, devices,
 * folders, absolute paths and `../` are refused with a `VncaError`, as are a malformed
 * manifest, duplicated weight names, dtypes other than float32, quantised weights, files
 * whose size differs from what the manifest declares (checked before reading them) and
 * weights that hold NaN or ±Infinity.
 *
 * @param dir The folder.
 * @param options `metadata`: JSON data saved in `model.json` with the weights.
 * @returns An IO handler for `VNCA.save` and `VNCA.load` (and `GrowingNCA`'s).
 * @example
 * ```ts
 * import { fileSystem } from 'vnca/node';
 * await model.save(fileSystem('checkpoints/run1'));
 * const again = await VNCA.load(fileSystem('checkpoints/run1'));
 * ```
 * @category Node
 */
export function fileSystem(dir: string, options: FileSystemOptions = {}): tf.io.IOHandler {
  if (typeof dir !== 'string' || dir.length === 0) {
    throw new VncaError('fileSystem', 'dir', `must be a non-empty path string, but got ${describe(dir)}.`);
  }
  if (typeof options !== 'object' || options === null) {
    throw new VncaError('fileSystem', 'options', `must be an object, but got ${describe(options)}.`);
  }
  const { metadata } = options;
  if (metadata !== undefined && (typeof metadata !== 'object' || metadata === null || Array.isArray(metadata))) {
    throw new VncaError('fileSystem', 'options.metadata', `must be a JSON object, but got ${describe(metadata)}.`);
  }
  const root = resolve(dir);
  return {
    async save(artifacts: tf.io.ModelArtifacts): Promise<tf.io.SaveResult> {
      const fn = 'fileSystem.save';
      const data = new Uint8Array(artifacts.weightData
        ? tf.io.concatenateArrayBuffers(Array.isArray(artifacts.weightData) ? artifacts.weightData : [artifacts.weightData])
        : new ArrayBuffer(0));
      const weightsName = `weights-${createHash('sha256').update(data).digest('hex').slice(0, 16)}.bin`;
      const userDefinedMetadata = { ...(artifacts.userDefinedMetadata ?? {}), ...(metadata ?? {}) };
      let text: string;
      try {
        text = JSON.stringify({
          modelTopology: artifacts.modelTopology,
          format: artifacts.format,
          generatedBy: artifacts.generatedBy,
          convertedBy: artifacts.convertedBy ?? null,
          weightsManifest: [{ paths: [weightsName], weights: artifacts.weightSpecs ?? [] }],
          ...(Object.keys(userDefinedMetadata).length ? { userDefinedMetadata } : {}),
        });
      } catch (e) {
        throw new VncaError(fn, 'artifacts', `must be JSON-serialisable, but JSON.stringify failed (${(e as Error).message}).`);
      }
      makeDirs(root, fn, 'dir');
      // 1. The weights, under a new name: the current model.json still names the old file.
      writeDurably(join(root, weightsName), data);
      // 2. model.json, in one rename: from here on the folder loads as the new save.
      writeDurably(join(root, 'model.json'), new TextEncoder().encode(text));
      // 3. The previous save's weights (and leftovers of crashed saves) are no longer named by anything.
      removeStale(root, weightsName);
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
      let real: string;
      try {
        real = realpathSync(root);
      } catch {
        throw new VncaError(fn, 'dir', `must be a folder holding model.json, but ${JSON.stringify(root)} does not exist.`);
      }
      if (!statSync(real).isDirectory()) throw new VncaError(fn, 'dir', `must be a folder holding model.json, but ${JSON.stringify(root)} is not a folder.`);
      const modelFile = openInside(real, 'model.json', fn, 'model.json');
      let json: unknown;
      try {
        if (modelFile.size > MAX_MODEL_JSON_BYTES) {
          throw new VncaError(fn, 'model.json', `must be at most ${MAX_MODEL_JSON_BYTES} bytes, but it has ${modelFile.size}.`);
        }
        const bytes = new Uint8Array(modelFile.size);
        readAll(modelFile, bytes, 0, fn, 'model.json');
        try {
          json = JSON.parse(new TextDecoder().decode(bytes));
        } catch {
          // The parser's message quotes the text; the file may not be ours to show.
          throw new VncaError(fn, 'model.json', 'must be valid JSON, but it does not parse.');
        }
      } finally {
        closeSync(modelFile.fd);
      }
      if (typeof json !== 'object' || json === null || Array.isArray(json)) {
        throw new VncaError(fn, 'model.json', `must hold a JSON object, but holds ${describe(json)}.`);
      }
      const model = json as tf.io.ModelJSON;
      const manifest = model.weightsManifest as unknown;
      if (!Array.isArray(manifest)) {
        throw new VncaError(fn, 'model.json weightsManifest', `must be an array of { paths, weights }, but got ${describe(manifest)}.`);
      }
      const allSpecs: unknown[] = [];
      const names: { name: unknown; arg: string }[] = [];
      manifest.forEach((group: unknown, g) => {
        const arg = `model.json weightsManifest[${g}]`;
        if (typeof group !== 'object' || group === null || Array.isArray(group)) {
          throw new VncaError(fn, arg, `must be an object { paths, weights }, but got ${describe(group)}.`);
        }
        const { paths, weights } = group as { paths?: unknown; weights?: unknown };
        if (!Array.isArray(paths)) throw new VncaError(fn, `${arg}.paths`, `must be an array of file names, but got ${describe(paths)}.`);
        if (!Array.isArray(weights)) throw new VncaError(fn, `${arg}.weights`, `must be an array of weight specs, but got ${describe(weights)}.`);
        allSpecs.push(...(weights as unknown[]));
        paths.forEach((name, i) => names.push({ name, arg: `${arg}.paths[${i}]` }));
      });
      const { specs, bytes } = checkWeightSpecs(allSpecs, fn, 'model.json weights');
      const files: OpenFile[] = [];
      try {
        for (const { name, arg } of names) files.push(openInside(real, name, fn, arg));
        const total = files.reduce((a, f) => a + f.size, 0);
        if (total !== bytes) {
          throw new VncaError(fn, 'weights', `must hold the ${bytes} bytes that model.json declares, but its weight files hold ${total}.`);
        }
        const data = new Uint8Array(total);
        let offset = 0;
        for (const f of files) {
          readAll(f, data, offset, fn, 'weights');
          offset += f.size;
        }
        checkWeightData(specs, data.buffer, fn, 'weights');
        return {
          modelTopology: model.modelTopology,
          format: model.format,
          generatedBy: model.generatedBy,
          convertedBy: model.convertedBy ?? undefined,
          weightSpecs: specs,
          weightData: data.buffer,
          ...(model.userDefinedMetadata ? { userDefinedMetadata: model.userDefinedMetadata } : {}),
        };
      } finally {
        for (const f of files) closeSync(f.fd);
      }
    },
  };
}
