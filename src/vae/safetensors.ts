import { VncaError, describe } from '../core/errors.js';

/**
 * One tensor of a safetensors file, as plain data.
 *
 * @category Weights
 */
export interface SafetensorsEntry {
  /** Shape as stored (PyTorch order, e.g. `[out, in, kh, kw]` for a convolution). */
  shape: number[];
  /** Values converted to float32, row-major. */
  data: Float32Array;
}

/**
 * A parsed safetensors file.
 *
 * @category Weights
 */
export interface Safetensors {
  /** Tensors by name. */
  tensors: Map<string, SafetensorsEntry>;
  /** The optional `__metadata__` string map. */
  metadata: Record<string, string>;
}

const MAX_HEADER_BYTES = 100 * 1024 * 1024;
const DTYPE_BYTES: Record<string, number> = { F32: 4, F64: 8, F16: 2, BF16: 2 };

function halfToFloat(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const f = h & 0x3ff;
  if (e === 0) return s * 2 ** -14 * (f / 1024);
  if (e === 31) return f ? NaN : s * Infinity;
  return s * 2 ** (e - 15) * (1 + f / 1024);
}

/**
 * Parses a safetensors file (the format PyTorch's `safetensors.torch.save_file` writes):
 * an 8-byte little-endian header length, a JSON header, then the raw little-endian data.
 * Supports F32, F64, F16 and BF16 tensors (all returned as float32). Every inconsistency
 * (absurd or truncated header, bad JSON, unknown dtype, offsets out of range or not matching
 * the shape, overlapping tensors) throws a {@link VncaError}.
 *
 * @param bytes The file's bytes.
 * @returns The tensors and metadata.
 * @category Weights
 */
export function parseSafetensors(bytes: ArrayBuffer | Uint8Array): Safetensors {
  const fn = 'parseSafetensors';
  const u8 = bytes instanceof Uint8Array ? bytes
    : bytes instanceof ArrayBuffer ? new Uint8Array(bytes) : null;
  if (!u8) throw new VncaError(fn, 'bytes', `must be an ArrayBuffer or Uint8Array, but got ${describe(bytes)}.`);
  if (u8.byteLength < 8) throw new VncaError(fn, 'bytes', `must hold at least the 8-byte header length, but got ${u8.byteLength} bytes.`);
  const view = new DataView(u8.buffer, u8.byteOffset, u8.byteLength);
  const headerLen = Number(view.getBigUint64(0, true));
  if (headerLen > MAX_HEADER_BYTES) throw new VncaError(fn, 'header length', `must be at most ${MAX_HEADER_BYTES} bytes, but the file says ${headerLen}.`);
  if (8 + headerLen > u8.byteLength) {
    throw new VncaError(fn, 'bytes', `are truncated: the header needs ${headerLen} bytes but only ${u8.byteLength - 8} follow the length.`);
  }
  let header: Record<string, unknown>;
  try {
    header = JSON.parse(new TextDecoder().decode(u8.subarray(8, 8 + headerLen))) as Record<string, unknown>;
  } catch (e) {
    throw new VncaError(fn, 'header', `must be JSON, but it does not parse (${(e as Error).message}).`);
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) {
    throw new VncaError(fn, 'header', `must be a JSON object, but got ${describe(header)}.`);
  }
  const dataStart = 8 + headerLen;
  const dataLen = u8.byteLength - dataStart;
  const tensors = new Map<string, SafetensorsEntry>();
  let metadata: Record<string, string> = {};
  const ranges: [number, number, string][] = [];
  for (const [name, raw] of Object.entries(header)) {
    if (name === '__metadata__') {
      metadata = (raw ?? {}) as Record<string, string>;
      continue;
    }
    const info = raw as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    const bytesPer = typeof info?.dtype === 'string' ? DTYPE_BYTES[info.dtype] : undefined;
    if (!bytesPer) throw new VncaError(fn, `tensor '${name}'`, `must have dtype F32, F64, F16 or BF16, but got ${describe(info?.dtype)}.`);
    const shape = info.shape;
    if (!Array.isArray(shape) || !shape.every((d) => Number.isInteger(d) && d >= 0)) {
      throw new VncaError(fn, `tensor '${name}'`, `must have a shape of non-negative integers, but got ${describe(shape)}.`);
    }
    const off = info.data_offsets;
    if (!Array.isArray(off) || off.length !== 2 || !off.every((o) => Number.isInteger(o) && o >= 0) || off[1] < off[0]) {
      throw new VncaError(fn, `tensor '${name}'`, `must have data_offsets [begin, end], but got ${describe(off)}.`);
    }
    const [begin, end] = off as [number, number];
    const count = (shape as number[]).reduce((a, d) => a * d, 1);
    if (end - begin !== count * bytesPer) {
      throw new VncaError(fn, `tensor '${name}'`, `must span ${count * bytesPer} bytes for shape [${shape.join(', ')}], but its offsets span ${end - begin}.`);
    }
    if (end > dataLen) {
      throw new VncaError(fn, 'bytes', `are truncated: tensor '${name}' ends at byte ${end} of the data but the data holds ${dataLen}.`);
    }
    ranges.push([begin, end, name]);
    const data = new Float32Array(count);
    const base = dataStart + begin;
    for (let i = 0; i < count; i++) {
      const p = base + i * bytesPer;
      switch (info.dtype) {
        case 'F32': data[i] = view.getFloat32(p, true); break;
        case 'F64': data[i] = view.getFloat64(p, true); break;
        case 'F16': data[i] = halfToFloat(view.getUint16(p, true)); break;
        default: {
          const tmp = new DataView(new ArrayBuffer(4));
          tmp.setUint32(0, view.getUint16(p, true) << 16, true);
          data[i] = tmp.getFloat32(0, true);
        }
      }
    }
    tensors.set(name, { shape: shape as number[], data });
  }
  ranges.sort((a, b) => a[0] - b[0]);
  for (let i = 1; i < ranges.length; i++) {
    if (ranges[i]![0] < ranges[i - 1]![1]) {
      throw new VncaError(fn, `tensor '${ranges[i]![2]}'`, `overlaps tensor '${ranges[i - 1]![2]}' in the data.`);
    }
  }
  return { tensors, metadata };
}

/**
 * Writes tensors as a safetensors file (F32, keys sorted, 8-byte aligned header).
 *
 * @param tensors Name → `{ shape, data }`.
 * @param metadata Optional string map stored as `__metadata__`.
 * @returns The file's bytes.
 * @category Weights
 */
export function writeSafetensors(tensors: Map<string, SafetensorsEntry> | Record<string, SafetensorsEntry>, metadata?: Record<string, string>): Uint8Array {
  const entries = [...(tensors instanceof Map ? tensors.entries() : Object.entries(tensors))].sort((a, b) => (a[0] < b[0] ? -1 : 1));
  const header: Record<string, unknown> = {};
  if (metadata) header.__metadata__ = metadata;
  let offset = 0;
  for (const [name, t] of entries) {
    header[name] = { dtype: 'F32', shape: t.shape, data_offsets: [offset, offset + t.data.length * 4] };
    offset += t.data.length * 4;
  }
  let json = JSON.stringify(header);
  while ((8 + json.length) % 8 !== 0) json += ' ';
  const head = new TextEncoder().encode(json);
  const out = new Uint8Array(8 + head.length + offset);
  const view = new DataView(out.buffer);
  view.setBigUint64(0, BigInt(head.length), true);
  out.set(head, 8);
  let p = 8 + head.length;
  for (const [, t] of entries) {
    for (let i = 0; i < t.data.length; i++, p += 4) view.setFloat32(p, t.data[i]!, true);
  }
  return out;
}
