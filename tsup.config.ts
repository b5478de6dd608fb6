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
  external: ['@tensorflow/tfjs-core', '@tensorflow/tfjs-layers'],
});
