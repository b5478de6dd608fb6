import { defineConfig } from 'tsup';

export default defineConfig({
  // parallelWorker: the worker-thread script of ParallelVNCA (vnca/node), found next to node.js / node.cjs.
  // cli: the `vnca` command (package.json bin -> dist/cli.js; its #! line makes tsup mark it executable).
  entry: { index: 'src/index.ts', node: 'src/node.ts', parallelWorker: 'src/node/parallelWorker.ts', cli: 'src/cli.ts' },
  format: ['esm', 'cjs'],
  dts: { entry: { index: 'src/index.ts', node: 'src/node.ts' } },
  // No source maps in the package: tsup's maps embed the TypeScript sources (sourcesContent),
  // which would double what users download; the output is not minified and reads as it is.
  sourcemap: false,
  clean: true,
  target: 'es2022',
  // import.meta.url in the CommonJS build (ParallelVNCA locates its worker script with it).
  shims: true,
  // Shared code in chunks for the CommonJS build too (esm splits by default): otherwise
  // require('vnca') and require('vnca/node') would each carry their own copy of the classes,
  // and an error from one would not be an instance of the other's VncaError.
  splitting: true,
  // Peer dependencies (the backends and mnist are optional peers, imported only when used).
  external: ['@tensorflow/tfjs-core', '@tensorflow/tfjs-layers', '@tensorflow/tfjs-backend-cpu', '@tensorflow/tfjs-backend-wasm', 'mnist'],
});
