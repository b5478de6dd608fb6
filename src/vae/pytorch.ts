import { VncaError } from '../core/errors.js';
import type { Safetensors, SafetensorsEntry } from './safetensors.js';

/**
 * Sizes read off a PyTorch reference `state_dict` of the doubling VNCA.
 *
 * @category Weights
 */
export interface PyTorchVNCASizes {
  zSize: number;
  hidden: number;
  nBlocks: number;
  imageChannels: number;
  encoderChannels: number[];
}

/** Permutes a row-major array of `shape` by `perm` (like numpy's transpose). @internal */
export function permute(data: Float32Array, shape: number[], perm: number[]): { data: Float32Array; shape: number[] } {
  const rank = shape.length;
  const outShape = perm.map((p) => shape[p]!);
  const inStrides = new Array<number>(rank);
  let s = 1;
  for (let i = rank - 1; i >= 0; i--) { inStrides[i] = s; s *= shape[i]!; }
  const out = new Float32Array(data.length);
  const idx = new Array<number>(rank).fill(0);
  const strideOfOut = perm.map((p) => inStrides[p]!);
  for (let o = 0; o < out.length; o++) {
    let src = 0;
    for (let d = 0; d < rank; d++) src += idx[d]! * strideOfOut[d]!;
    out[o] = data[src]!;
    for (let d = rank - 1; d >= 0; d--) {
      if (++idx[d]! < outShape[d]!) break;
      idx[d] = 0;
    }
  }
  return { data: out, shape: outShape };
}

function take(st: Safetensors, key: string, rank: number, used: Set<string>): SafetensorsEntry {
  const fn = 'VNCA.fromPyTorch';
  const t = st.tensors.get(key);
  if (!t) throw new VncaError(fn, 'bytes', `must hold the reference key '${key}', but it is missing.`);
  if (t.shape.length !== rank) throw new VncaError(fn, `'${key}'`, `must be rank ${rank}, but got shape [${t.shape.join(', ')}].`);
  used.add(key);
  return t;
}

/** Conv weight `[out, in, kh, kw]` → tfjs `[kh, kw, in, out]`. */
function convKernel(t: SafetensorsEntry): SafetensorsEntry {
  return permute(t.data, t.shape, [2, 3, 1, 0]);
}

/**
 * Reads the sizes of a doubling VNCA from the reference's `state_dict` keys and shapes.
 * @internal
 */
export function pytorchSizes(st: Safetensors): PyTorchVNCASizes {
  const fn = 'VNCA.fromPyTorch';
  const none = new Set<string>();
  const first = take(st, 'nca.update_net.0.weight', 4, none);
  const zSize = first.shape[0]!;
  let nBlocks = 0;
  while (st.tensors.has(`nca.update_net.${nBlocks + 1}.delegate.0.weight`)) nBlocks++;
  if (nBlocks === 0) throw new VncaError(fn, 'bytes', "must hold residual blocks 'nca.update_net.1.delegate.0.weight', ..., but none was found.");
  const hidden = take(st, 'nca.update_net.1.delegate.0.weight', 4, none).shape[0]!;
  const encoderChannels: number[] = [];
  for (let i = 0; st.tensors.has(`encoder.${2 * i}.weight`); i++) encoderChannels.push(st.tensors.get(`encoder.${2 * i}.weight`)!.shape[0]!);
  if (encoderChannels.length === 0) throw new VncaError(fn, 'bytes', "must hold the encoder key 'encoder.0.weight', but it is missing.");
  const imageChannels = take(st, 'encoder.0.weight', 4, none).shape[1]!;
  return { zSize, hidden, nBlocks, imageChannels, encoderChannels };
}

/**
 * Maps the reference's `state_dict` onto our weight names (`encoder/...`, `rule/...`), converting
 * NCHW conv kernels to HWIO and the encoder's final linear layer from the reference's
 * (C, H, W) flatten order to our NHWC (H, W, C) order. Every key must be used exactly once.
 * @internal
 */
export function pytorchToNamedWeights(st: Safetensors, sizes: PyTorchVNCASizes): Map<string, SafetensorsEntry> {
  const fn = 'VNCA.fromPyTorch';
  const used = new Set<string>();
  const out = new Map<string, SafetensorsEntry>();
  const nConv = sizes.encoderChannels.length;
  for (let i = 0; i < nConv; i++) {
    out.set(`encoder/conv${i}/kernel`, convKernel(take(st, `encoder.${2 * i}.weight`, 4, used)));
    out.set(`encoder/conv${i}/bias`, take(st, `encoder.${2 * i}.bias`, 1, used));
  }
  const linearKey = `encoder.${2 * nConv + 1}`;
  const lin = take(st, `${linearKey}.weight`, 2, used);
  const c = sizes.encoderChannels[nConv - 1]!;
  const [outDim, inDim] = lin.shape as [number, number];
  const hw = Math.round(Math.sqrt(inDim / c));
  if (hw * hw * c !== inDim) {
    throw new VncaError(fn, `'${linearKey}.weight'`, `must have in-features C*H*W with C = ${c} and H = W, but got ${inDim}.`);
  }
  // [out, C, H, W] → [H, W, C, out] → [H*W*C, out]
  const dense = permute(lin.data, [outDim, c, hw, hw], [2, 3, 1, 0]);
  out.set('encoder/dense/kernel', { data: dense.data, shape: [inDim, outDim] });
  out.set('encoder/dense/bias', take(st, `${linearKey}.bias`, 1, used));
  out.set('rule/conv_in/kernel', convKernel(take(st, 'nca.update_net.0.weight', 4, used)));
  out.set('rule/conv_in/bias', take(st, 'nca.update_net.0.bias', 1, used));
  for (let b = 0; b < sizes.nBlocks; b++) {
    const p = `nca.update_net.${b + 1}.delegate`;
    out.set(`rule/block${b}/conv1/kernel`, convKernel(take(st, `${p}.0.weight`, 4, used)));
    out.set(`rule/block${b}/conv1/bias`, take(st, `${p}.0.bias`, 1, used));
    out.set(`rule/block${b}/conv2/kernel`, convKernel(take(st, `${p}.2.weight`, 4, used)));
    out.set(`rule/block${b}/conv2/bias`, take(st, `${p}.2.bias`, 1, used));
  }
  const last = `nca.update_net.${sizes.nBlocks + 1}`;
  out.set('rule/conv_out/kernel', convKernel(take(st, `${last}.weight`, 4, used)));
  out.set('rule/conv_out/bias', take(st, `${last}.bias`, 1, used));
  const unknown = [...st.tensors.keys()].filter((k) => !used.has(k));
  if (unknown.length) throw new VncaError(fn, 'bytes', `hold keys the doubling VNCA does not have: ${unknown.join(', ')}.`);
  return out;
}
