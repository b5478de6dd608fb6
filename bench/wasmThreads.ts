/**
 * EXPERIMENT (benchmark only, not part of the library): starts tfjs-backend-wasm 4.22's
 * multi-threaded SIMD build in Node, which the package turns off there
 * (`WASM_HAS_MULTITHREAD_SUPPORT` is false under Node, tensorflow/tfjs#3830).
 *
 * What stands in the way, and the work-arounds used here:
 * 1. the flag: set to true before the backend starts;
 * 2. the backend hands Emscripten its pthread worker script as a `blob:` URL and its main
 *    script as a `Blob`, neither of which Node's `worker_threads.Worker` can load: while the
 *    backend starts, `Blob`, `URL.createObjectURL` and the `mainScriptUrlOrBlob` property are
 *    intercepted and the scripts written to files in the OS temp folder;
 * 3. the main script is the bundled factory's source text, which refers to the bundle's
 *    module variables (`require$$0` = fs, ...); the file defines them first;
 * 4. the C++ side caps XNNPACK's thread pool at half the logical cores (it assumes two
 *    hyper-threads per core), i.e. 1 on a 2-core machine: `os.cpus()` reports
 *    `2 * threads` entries while the backend starts.
 * Everything is put back once `tf.setBackend('wasm')` has resolved.
 */
import { writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { setThreadsCount, getThreadsCount } from '@tensorflow/tfjs-backend-wasm';

const MODULE_VARIABLES = 'var require$$0=require("fs"),require$$1=require("path"),require$$2=require("worker_threads"),'
  + 'require$$3=require("perf_hooks"),require$$4=require("os"),commonjsGlobal=globalThis;\n';

/**
 * Starts the wasm backend with `threads` XNNPACK threads (see the module comment).
 *
 * @returns The number of threads the backend reports.
 */
export async function startThreadedWasm(threads: number): Promise<number> {
  const OriginalBlob = globalThis.Blob;
  const originalCreate = URL.createObjectURL;
  const originalCpus = os.cpus;
  class TextBlob extends OriginalBlob {
    readonly source: string;
    constructor(parts: BlobPart[], options?: BlobPropertyBag) {
      super(parts, options);
      this.source = parts.map(String).join('');
    }
  }
  const toFile = (source: string): string => {
    const text = source.startsWith('var WasmBackendModuleThreadedSimd') ? MODULE_VARIABLES + source : source;
    const file = path.join(os.tmpdir(), `vnca-bench-wasm-${createHash('sha1').update(text).digest('hex').slice(0, 16)}.cjs`);
    writeFileSync(file, text);
    return file;
  };
  const key = 'mainScriptUrlOrBlob';
  globalThis.Blob = TextBlob as typeof Blob;
  URL.createObjectURL = (b: Blob) => (b instanceof TextBlob ? toFile(b.source) : originalCreate(b));
  Object.defineProperty(Object.prototype, key, {
    configurable: true,
    set(this: object, v: unknown) {
      Object.defineProperty(this, key, { value: v instanceof TextBlob ? toFile(v.source) : v, writable: true, enumerable: true, configurable: true });
    },
  });
  (os as { cpus: () => os.CpuInfo[] }).cpus = () => {
    const cpus = originalCpus();
    return Array.from({ length: 2 * threads }, (_, i) => cpus[i % cpus.length]!);
  };
  try {
    tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', true);
    setThreadsCount(threads);
    if (!(await tf.setBackend('wasm'))) throw new Error('could not start the threaded wasm backend');
    await tf.ready();
  } finally {
    globalThis.Blob = OriginalBlob;
    URL.createObjectURL = originalCreate;
    delete (Object.prototype as Record<string, unknown>)[key];
    (os as { cpus: () => os.CpuInfo[] }).cpus = originalCpus;
  }
  return getThreadsCount();
}
