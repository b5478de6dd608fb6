/**
 * Backend choice shared by both pages of the browser example (and the training worker):
 * webgpu where `navigator.gpu` offers a hardware adapter, then webgl on a hardware
 * renderer, then wasm, then cpu. `?backend=<name>` forces one.
 *
 * Without a GPU, Chromium still offers WebGL (and sometimes WebGPU) through SwiftShader,
 * a software renderer: tfjs's shaders take tens of seconds to compile there and the page
 * runs 6-18 NCA steps/s, against about 330 on wasm. So a software renderer is detected
 * (`WEBGL_debug_renderer_info`, the WebGPU adapter's `isFallbackAdapter` and its
 * description) and skipped, and the page says why.
 *
 * On wasm it also registers vnca's training kernels (`enableWasmTraining`) and then its
 * relaxed-SIMD kernels (`enableRelaxedSimdKernels`: matMuls and convolutions with a hardware
 * FMA), where the browser has relaxed SIMD (Chromium 114 and later); elsewhere that call
 * returns false and changes nothing. {@link BackendChoice.fma} says which.
 *
 * Works in a window and in a worker (it uses OffscreenCanvas where there is no document);
 * each thread has its own tfjs, so the training worker calls {@link startBackend} too.
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-webgl';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import wasmUrl from '@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm.wasm?url';
import wasmSimdUrl from '@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm-simd.wasm?url';
import wasmThreadedSimdUrl from '@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm-threaded-simd.wasm?url';
import { enableRelaxedSimdKernels, enableWasmTraining } from '../../src/index.js';

setWasmPaths({
  'tfjs-backend-wasm.wasm': wasmUrl,
  'tfjs-backend-wasm-simd.wasm': wasmSimdUrl,
  'tfjs-backend-wasm-threaded-simd.wasm': wasmThreadedSimdUrl,
});

/** The backends the pages know, fastest first. */
export const BACKEND_ORDER = ['webgpu', 'webgl', 'wasm', 'cpu'] as const;
export type BackendName = (typeof BACKEND_ORDER)[number];

/** What {@link startBackend} started and why it passed over the others. */
export interface BackendChoice {
  /** The backend in use. */
  name: BackendName;
  /** Backends passed over, each with the reason (`webgl: software renderer (SwiftShader)`). */
  skipped: { name: BackendName; reason: string }[];
  /** The WebGL renderer string, when one could be read. */
  renderer: string | null;
  /** True when the machine's WebGL is a software renderer: expect CPU speeds. */
  softwareGpu: boolean;
  /**
   * True when vnca's relaxed-SIMD (FMA) kernels run the wasm backend's matMuls and
   * convolutions; false on other backends and where the browser lacks relaxed SIMD.
   */
  fma: boolean;
}

/** Renderer names of software rasterisers. */
const SOFTWARE_RENDERER = /swiftshader|llvmpipe|softpipe|software|basic render|microsoft basic/i;

function glContext(): WebGLRenderingContext | WebGL2RenderingContext | null {
  try {
    if (typeof OffscreenCanvas !== 'undefined') {
      const c = new OffscreenCanvas(1, 1);
      return (c.getContext('webgl2') ?? c.getContext('webgl')) as WebGL2RenderingContext | null;
    }
    if (typeof document !== 'undefined') {
      const c = document.createElement('canvas');
      return (c.getContext('webgl2') ?? c.getContext('webgl')) as WebGL2RenderingContext | null;
    }
  } catch {
    // no WebGL at all
  }
  return null;
}

/**
 * Reads the WebGL renderer: `null` when there is no WebGL. Creating a context compiles no
 * shader, so this is quick even on a software renderer.
 */
export function webglRenderer(): { renderer: string; software: boolean } | null {
  const gl = glContext();
  if (!gl) return null;
  const info = gl.getExtension('WEBGL_debug_renderer_info');
  const renderer = String(
    (info && gl.getParameter(info.UNMASKED_RENDERER_WEBGL)) || gl.getParameter(gl.RENDERER) || 'unknown',
  );
  gl.getExtension('WEBGL_lose_context')?.loseContext();
  return { renderer, software: SOFTWARE_RENDERER.test(renderer) };
}

/** Why webgpu cannot be used here, or null when a hardware adapter is there. */
async function webgpuProblem(): Promise<string | null> {
  const gpu = (globalThis.navigator as Navigator & { gpu?: { requestAdapter(): Promise<unknown> } }).gpu;
  if (!gpu) return 'navigator.gpu missing';
  const adapter = await gpu.requestAdapter().catch(() => null) as
    | { isFallbackAdapter?: boolean; info?: { isFallbackAdapter?: boolean; description?: string; vendor?: string; architecture?: string } }
    | null;
  if (!adapter) return 'no adapter';
  const info = adapter.info ?? {};
  const text = `${info.vendor ?? ''} ${info.architecture ?? ''} ${info.description ?? ''}`;
  if (adapter.isFallbackAdapter || info.isFallbackAdapter || SOFTWARE_RENDERER.test(text)) return 'software adapter';
  return null;
}

/** Starts `name` and checks that it computes. */
async function tryBackend(name: BackendName): Promise<boolean> {
  if (name === 'webgpu') await import('@tensorflow/tfjs-backend-webgpu'); // registers it; a separate chunk
  if (!(await tf.setBackend(name))) return false;
  await tf.ready();
  const two = tf.tidy(() => tf.add(tf.scalar(1), tf.scalar(1)).dataSync()[0]);
  return two === 2;
}

/**
 * On wasm: the training kernels first (the FMA kernels also replace the
 * `Conv2DBackpropFilter` they add), then the FMA kernels where relaxed SIMD runs.
 */
async function wasmKernels(name: BackendName): Promise<boolean> {
  if (name !== 'wasm') return false;
  enableWasmTraining();
  try {
    return await enableRelaxedSimdKernels();
  } catch (e) {
    console.warn('relaxed-SIMD kernels did not start; the backend keeps its own', e);
    return false;
  }
}

/**
 * Starts the fastest backend that works here, or the forced one.
 *
 * @param forced - A backend name (from `?backend=`), or null to choose.
 */
export async function startBackend(forced: string | null = null): Promise<BackendChoice> {
  const gl = webglRenderer();
  const softwareGpu = gl?.software ?? false;
  const skipped: BackendChoice['skipped'] = [];
  const order: BackendName[] = forced && (BACKEND_ORDER as readonly string[]).includes(forced)
    ? [forced as BackendName]
    : [...BACKEND_ORDER];
  for (const name of order) {
    let reason: string | null = null;
    if (!forced) {
      if (name === 'webgpu') reason = await webgpuProblem();
      if (name === 'webgl') reason = !gl ? 'no WebGL' : gl.software ? `software renderer (${shortRenderer(gl.renderer)})` : null;
    }
    if (reason === null) {
      try {
        if (await tryBackend(name)) {
          return { name, skipped, renderer: gl?.renderer ?? null, softwareGpu, fma: await wasmKernels(name) };
        }
        reason = 'did not start';
      } catch (e) {
        console.warn(`backend ${name} did not start`, e);
        reason = 'did not start';
      }
    }
    skipped.push({ name, reason });
  }
  throw new Error(`no tfjs backend started (${skipped.map((s) => `${s.name}: ${s.reason}`).join('; ')})`);
}

function shortRenderer(renderer: string): string {
  return /swiftshader/i.test(renderer) ? 'SwiftShader' : renderer.slice(0, 40);
}

/** One line for the page: which backend and why the faster ones were passed over. */
export function describeBackend(choice: BackendChoice): { label: string; title: string } {
  const why = choice.skipped.map((s) => `${s.name}: ${s.reason}`).join('; ');
  // The label names the webgl verdict (the one that matters on most machines); the title has all.
  const gl = choice.skipped.find((s) => s.name === 'webgl');
  const fma = choice.name === 'wasm' ? (choice.fma ? ' · FMA kernels on' : ' · FMA kernels off') : '';
  const label = `backend: ${choice.name}${gl ? ` (webgl: ${gl.reason})` : ''}${fma}`;
  let title = `tfjs backend ${choice.name}`;
  if (choice.name === 'wasm') {
    title += choice.fma
      ? '. vnca\'s relaxed-SIMD kernels (hardware FMA) run its matMuls and convolutions'
      : '. This browser has no relaxed SIMD: the wasm backend\'s own kernels run';
  }
  if (why) title += ` (passed over: ${why})`;
  if (choice.renderer) title += `. WebGL renderer: ${choice.renderer}`;
  return { label, title };
}

/**
 * A sentence for the page when the choice deserves one (no GPU, software renderer), else ''.
 */
export function backendNote(choice: BackendChoice): string {
  if (choice.name === 'webgpu' || choice.name === 'webgl') return '';
  if (choice.softwareGpu) {
    return `This browser's WebGL is a software renderer (${shortRenderer(choice.renderer ?? '')}), `
      + 'slower here than WebAssembly, so the page runs on wasm, on the CPU.';
  }
  if (choice.skipped.some((s) => s.name === 'webgl')) return 'No WebGL here: the page runs on wasm, on the CPU.';
  return '';
}
