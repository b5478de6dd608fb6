import { defineConfig } from 'tsup';

export default defineConfig({
  // parallelWorker: the worker-thread script of ParallelVNCA (vnca/node), found next to node.js / node.cjs.
  entry: { index: 'src/index.ts', node: 'src/node.ts', parallelWorker: 'src/node/parallelWorker.ts' },
  format: ['esm', 'cjs'],
  dts: { entry: { index: 'src/index.ts', node: 'src/node.ts' } },
  sourcemap: true,
  clean: true,
  target: 'es2022',
  // import.meta.url in the CommonJS build (ParallelVNCA locates its worker script with it).
  shims: true,
  // Shared code in chunks for the CommonJS build too (esm splits by default): otherwise
  // require('vnca') and require('vnca/node') would each carry their own copy of the classes,
  // and an error from one would not be an instance of the other's VncaError.
  splitting: true,
  external: ['@tensorflow/tfjs-core', '@tensorflow/tfjs-layers'],
});
