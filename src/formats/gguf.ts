// GGUF v2/v3 reader (lazy: header parsed on open, tensor bytes read on demand).
// Layout: magic "GGUF", u32 version, u64 n_tensors, u64 n_kv, KV pairs, tensor infos,
// padding to general.alignment, tensor data. Every length is checked against the file size
// before anything is allocated, so a corrupt header gives an error, never a huge allocation.
import { fail, quote } from '../errors.js';
import { DTYPES, GGML_TYPE_NAMES, dtypeFromGgml, tensorBytes } from './dtype.js';
import { FileReader, readTensorInto, readTensorRange, type ByteReader, type TensorInfo, type TensorSource } from './file.js';

export type GgufScalarType = 'u8' | 'i8' | 'u16' | 'i16' | 'u32' | 'i32' | 'f32' | 'bool' | 'str' | 'u64' | 'i64' | 'f64';
export type GgufType = GgufScalarType | { array: GgufScalarType };
export type GgufValue = number | bigint | boolean | string | GgufValue[];
/** One metadata entry with its GGUF type, as the writer takes it. */
export interface GgufKV {
  key: string;
  type: GgufType;
  value: GgufValue;
}

/** GGUF value type ids, in the file's numbering. */
export const GGUF_TYPE_IDS: Record<GgufScalarType | 'array', number> = {
  u8: 0,
  i8: 1,
  u16: 2,
  i16: 3,
  u32: 4,
  i32: 5,
  f32: 6,
  bool: 7,
  str: 8,
  array: 9,
  u64: 10,
  i64: 11,
  f64: 12,
};
const TYPE_BY_ID = new Map(Object.entries(GGUF_TYPE_IDS).map(([k, v]) => [v, k as GgufScalarType | 'array']));
const SCALAR_BYTES: Record<GgufScalarType, number> = {
  u8: 1,
  i8: 1,
  u16: 2,
  i16: 2,
  u32: 4,
  i32: 4,
  f32: 4,
  bool: 1,
  str: 8,
  u64: 8,
  i64: 8,
  f64: 8,
};
// Keys llama.cpp reads as integers (it checks each key's stored type too): a float or string there
// is a corrupt or hand-edited file, not a value to round.
const INTEGER_KEY =
  /^general\.(alignment|file_type|quantization_version)$|_token_id$|\.(context_length|embedding_length|block_count|feed_forward_length|expert_count|expert_used_count|expert_feed_forward_length|expert_shared_feed_forward_length|head_count|head_count_kv|key_length|value_length|dimension_count|conv_kernel|state_size|group_count|time_step_rank|inner_size|full_attention_interval|nextn_predict_layers|sliding_window)$|^split\.(no|count|tensors\.count)$/;
const INTEGER_TYPES = new Set<GgufScalarType>(['u8', 'i8', 'u16', 'i16', 'u32', 'i32', 'u64', 'i64']);
export const GGUF_MAGIC = 0x46554747; // "GGUF" little-endian
export const GGUF_DEFAULT_ALIGNMENT = 32;

export interface GgufFile extends TensorSource {
  version: number;
  metadata: Map<string, GgufValue>;
  metadataTypes: Map<string, GgufType>;
  alignment: number;
  dataOffset: number;
  /** tensors in file order */
  tensorList: TensorInfo[];
}

/** Buffered forward reader over the header, growing its window as needed. */
class Cursor {
  private buf = new Uint8Array(0);
  private view = new DataView(this.buf.buffer);
  private bufStart = 0;
  pos = 0;
  constructor(private readonly r: ByteReader) {}

  private ensure(n: number, what: string): number {
    if (this.pos + n > this.r.size) {
      fail(`${this.r.path}: ${what} at byte ${this.pos} runs past the end of the file (${this.r.size} bytes); the file is truncated or corrupt`);
    }
    const rel = this.pos - this.bufStart;
    if (rel + n <= this.buf.length) return rel;
    const len = Math.min(this.r.size - this.pos, Math.max(n, 1 << 20));
    this.buf = this.r.readAt(this.pos, new Uint8Array(len), what);
    this.view = new DataView(this.buf.buffer);
    this.bufStart = this.pos;
    return 0;
  }
  u32(what: string): number {
    const o = this.ensure(4, what);
    this.pos += 4;
    return this.view.getUint32(o, true);
  }
  u64(what: string): number {
    const o = this.ensure(8, what);
    this.pos += 8;
    const v = this.view.getBigUint64(o, true);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) fail(`${this.r.path}: ${what} = ${v} is absurdly large; the file is corrupt`);
    return Number(v);
  }
  scalar(t: GgufScalarType, what: string): GgufValue {
    if (t === 'str') return this.str(what);
    const o = this.ensure(SCALAR_BYTES[t], what);
    this.pos += SCALAR_BYTES[t];
    const v = this.view;
    switch (t) {
      case 'u8':
        return v.getUint8(o);
      case 'i8':
        return v.getInt8(o);
      case 'u16':
        return v.getUint16(o, true);
      case 'i16':
        return v.getInt16(o, true);
      case 'u32':
        return v.getUint32(o, true);
      case 'i32':
        return v.getInt32(o, true);
      case 'f32':
        return v.getFloat32(o, true);
      case 'f64':
        return v.getFloat64(o, true);
      case 'bool':
        return v.getUint8(o) !== 0;
      case 'u64': {
        const b = v.getBigUint64(o, true);
        return b <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(b) : b;
      }
      case 'i64': {
        const b = v.getBigInt64(o, true);
        return b <= BigInt(Number.MAX_SAFE_INTEGER) && b >= -BigInt(Number.MAX_SAFE_INTEGER) ? Number(b) : b;
      }
    }
  }
  str(what: string): string {
    const n = this.u64(`length of ${what}`);
    const o = this.ensure(n, what);
    this.pos += n;
    return decoder.decode(this.buf.subarray(o, o + n));
  }
  remaining(): number {
    return this.r.size - this.pos;
  }
}
const decoder = new TextDecoder('utf-8', { fatal: false, ignoreBOM: true }); // keep a leading U+FEFF in strings

function valueType(c: Cursor, path: string, what: string): GgufScalarType | 'array' {
  const id = c.u32(`type of ${what}`);
  const t = TYPE_BY_ID.get(id);
  if (!t) fail(`${path}: ${what} has unknown GGUF value type ${id}; the file is corrupt`);
  return t;
}

function readValue(c: Cursor, path: string, key: string): [GgufType, GgufValue] {
  const t = valueType(c, path, `metadata ${quote(key)}`);
  if (t !== 'array') return [t, c.scalar(t, `metadata ${quote(key)}`)];
  const et = valueType(c, path, `elements of metadata ${quote(key)}`);
  if (et === 'array') fail(`${path}: metadata ${quote(key)} is a nested array, which qwen.ts does not read`);
  const n = c.u64(`element count of metadata ${quote(key)}`);
  if (n * (et === 'str' ? 8 : SCALAR_BYTES[et]) > c.remaining()) {
    fail(`${path}: metadata ${quote(key)} claims ${n} elements, more than the file can hold; the file is truncated or corrupt`);
  }
  const out: GgufValue[] = new Array(n);
  for (let i = 0; i < n; i++) out[i] = c.scalar(et, `metadata ${quote(key)}[${i}]`);
  return [{ array: et }, out];
}

export function openGguf(path: string): GgufFile {
  const r = new FileReader(path);
  try {
    return parseGguf(r);
  } catch (e) {
    r.close();
    throw e;
  }
}

/** A GGUF file's header read through `r` (a file, or a URL / Blob in a browser); tensors read through it too. */
export function parseGguf(r: ByteReader): GgufFile {
  const path = r.path;
  const c = new Cursor(r);
  if (r.size < 24) fail(`${path}: too small to be a GGUF file (${r.size} bytes)`);
  const magic = c.u32('magic');
  if (magic !== GGUF_MAGIC) fail(`${path}: not a GGUF file (bad magic 0x${magic.toString(16)})`);
  const version = c.u32('version');
  if (version !== 2 && version !== 3) fail(`${path}: GGUF version ${version} is not supported (2 and 3 are)`);
  const nTensors = c.u64('tensor count');
  const nKv = c.u64('metadata count');
  // each KV needs at least 12 bytes, each tensor info at least 28: reject absurd counts before looping
  if (nKv * 12 + nTensors * 28 > r.size) fail(`${path}: header claims ${nKv} metadata entries and ${nTensors} tensors, more than the file can hold; the file is corrupt`);

  const metadata = new Map<string, GgufValue>();
  const metadataTypes = new Map<string, GgufType>();
  for (let i = 0; i < nKv; i++) {
    const key = c.str(`metadata key #${i}`);
    if (metadata.has(key)) fail(`${path}: metadata key ${quote(key)} appears twice; the file is corrupt`);
    const [t, v] = readValue(c, path, key);
    metadata.set(key, v);
    metadataTypes.set(key, t);
  }
  for (const [key, t] of metadataTypes) {
    if (INTEGER_KEY.test(key) && !INTEGER_TYPES.has(typeof t === 'string' ? t : t.array)) {
      fail(`${path}: metadata ${quote(key)} must be an integer, but the file stores it as ${typeof t === 'string' ? t : `an array of ${t.array}`}; the file is corrupt`);
    }
  }
  let alignment = GGUF_DEFAULT_ALIGNMENT;
  if (metadata.has('general.alignment')) {
    const a = metadata.get('general.alignment');
    if (typeof a !== 'number' || a <= 0 || (a & (a - 1)) !== 0) fail(`${path}: general.alignment = ${quote(a)} is not a power of two`);
    alignment = a;
  }

  const raw: { name: string; dims: number[]; type: number; rel: number }[] = [];
  for (let i = 0; i < nTensors; i++) {
    const name = c.str(`name of tensor #${i}`);
    const nd = c.u32(`dimension count of tensor ${quote(name)}`);
    if (nd < 1 || nd > 4) fail(`${path}: tensor ${quote(name)} has ${nd} dimensions (1..4 allowed); the file is corrupt`);
    const dims: number[] = [];
    for (let d = 0; d < nd; d++) {
      const n = c.u64(`dimension ${d} of tensor ${quote(name)}`);
      if (n < 1) fail(`${path}: tensor ${quote(name)} has dimension ${d} = ${n}`);
      dims.push(n);
    }
    const type = c.u32(`type of tensor ${quote(name)}`);
    const rel = c.u64(`offset of tensor ${quote(name)}`);
    raw.push({ name, dims, type, rel });
  }
  const dataOffset = Math.ceil(c.pos / alignment) * alignment;

  const tensors = new Map<string, TensorInfo>();
  const tensorList: TensorInfo[] = [];
  for (const t of raw) {
    const dtype = dtypeFromGgml(t.type);
    if (!dtype) {
      const name = GGML_TYPE_NAMES[t.type];
      fail(`${path}: tensor ${quote(t.name)} has ggml type ${t.type} (${name ?? 'unknown'}), which qwen.ts does not read (supported: ${Object.keys(DTYPES).join(', ')})`);
    }
    const shape = [...t.dims].reverse(); // ggml ne is innermost-first
    let byteLength: number;
    try {
      byteLength = tensorBytes(dtype, shape);
    } catch (e) {
      fail(`${path}: tensor ${quote(t.name)} ${dtype} [${shape.join(', ')}]: ${(e as Error).message}`);
    }
    if (t.rel % alignment !== 0) fail(`${path}: tensor ${quote(t.name)} offset ${t.rel} is not aligned to ${alignment}; the file is corrupt`);
    const offset = dataOffset + t.rel;
    if (offset + byteLength > r.size) {
      fail(
        `${path}: tensor ${quote(t.name)} (${dtype} [${shape.join(', ')}], ${byteLength} bytes at offset ${offset}) lies past the end of the file (${r.size} bytes); the file is truncated or corrupt`,
      );
    }
    if (tensors.has(t.name)) fail(`${path}: tensor ${quote(t.name)} appears twice`);
    const info: TensorInfo = { name: t.name, dtype, shape, offset, byteLength, file: path };
    tensors.set(t.name, info);
    tensorList.push(info);
  }
  checkDisjoint(path, tensorList);
  return {
    path,
    version,
    metadata,
    metadataTypes,
    alignment,
    dataOffset,
    tensors,
    tensorList,
    readInto(name: string, dst: Uint8Array) {
      const info = tensors.get(name);
      if (!info) fail(`${path}: no tensor named ${quote(name)}`);
      readTensorInto(r, info, dst);
    },
    readRange(name: string, start: number, dst: Uint8Array) {
      const info = tensors.get(name);
      if (!info) fail(`${path}: no tensor named ${quote(name)}`);
      readTensorRange(r, info, start, dst);
    },
    close: () => r.close(),
  };
}

/**
 * Tensors may not share bytes: an offset moved onto another tensor (one flipped bit) would
 * otherwise load as silently different weights. (llama.cpp goes further and requires the exact
 * packed order; any writer's disjoint layout is accepted here.)
 */
function checkDisjoint(path: string, list: readonly TensorInfo[]): void {
  const sorted = [...list].sort((a, b) => a.offset - b.offset);
  for (let i = 1; i < sorted.length; i++) {
    const prev = sorted[i - 1]!,
      cur = sorted[i]!;
    if (cur.offset < prev.offset + prev.byteLength) {
      fail(
        `${path}: tensor ${quote(cur.name)} (bytes ${cur.offset}..${cur.offset + cur.byteLength}) overlaps tensor ${quote(prev.name)} (bytes ${prev.offset}..${prev.offset + prev.byteLength}); the file is corrupt`,
      );
    }
  }
}
