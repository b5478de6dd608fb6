/**
 * Vite config of the browser example.
 *
 *   npx vite examples/browser              # dev server, open the printed URL
 *   npx vite build examples/browser        # static site in examples/browser/dist
 *
 * Two pages: index.html (grow digits with the shipped VNCA) and train.html (train a
 * GrowingNCA on your own picture, in a worker). They import the library's source (../../src/index.ts). The shipped models
 * (models/ at the repository root: mnist-small grows the samples, mnist-regen runs the damage
 * and inpaint modes) are served at `./models/` by the plugin below, in dev and in the build,
 * whatever their weights files are called (each model.json names its own); the wasm
 * backend's .wasm files come in through `?url` imports in main.ts.
 */
import { defineConfig, type Plugin } from 'vite';
import { createReadStream, existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const repoRoot = resolve(here, '../..');
/** Folder of model folders; `VNCA_MODELS_DIR` points the example at other trained models. */
const modelsDir = resolve(process.env.VNCA_MODELS_DIR ?? join(repoRoot, 'models'));

const MIME: Record<string, string> = { '.json': 'application/json', '.bin': 'application/octet-stream' };

/** Every file under `dir`, as paths relative to it with `/` separators. */
function listFiles(dir: string, prefix = ''): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory()
    ? listFiles(join(dir, e.name), `${prefix}${e.name}/`)
    : [`${prefix}${e.name}`]));
}

/** Serves `modelsDir` at `<base>models/` in dev and copies it into the build. */
function serveModels(): Plugin {
  return {
    name: 'vnca-models',
    configureServer(server) {
      server.middlewares.use('/models', (req, res, next) => {
        const rel = decodeURIComponent((req.url ?? '/').split('?')[0]!);
        const file = resolve(modelsDir, `.${rel}`);
        if (!file.startsWith(modelsDir + sep) || !existsSync(file) || !statSync(file).isFile()) return next();
        const ext = file.slice(file.lastIndexOf('.'));
        res.setHeader('Content-Type', MIME[ext] ?? 'application/octet-stream');
        createReadStream(file).pipe(res);
      });
    },
    generateBundle() {
      const files = listFiles(modelsDir);
      if (files.length === 0) this.warn(`no model under ${modelsDir}: run npx tsx tools/convert-shipped.ts`);
      for (const rel of files) {
        this.emitFile({ type: 'asset', fileName: `models/${rel}`, source: readFileSync(join(modelsDir, rel)) });
      }
    },
  };
}

export default defineConfig({
  root: here,
  base: './',
  plugins: [serveModels()],
  // Workers as ES modules: the training worker shares chunks (tfjs, the library) with the pages.
  worker: { format: 'es' },
  build: {
    outDir: 'dist',
    // Two pages: the VNCA demo and the training page.
    rollupOptions: { input: { index: join(here, 'index.html'), train: join(here, 'train.html') } },
    emptyOutDir: true,
    target: 'es2022',
    // tfjs is large; one chunk is fine for an example.
    chunkSizeWarningLimit: 4096,
  },
  server: { fs: { allow: [repoRoot] } },
});
