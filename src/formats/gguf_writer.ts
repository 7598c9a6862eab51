// GGUF v3 writer. Tensor bytes may be produced lazily (one tensor in memory at a time), and the
// file appears atomically (written to a temp name, then renamed).
import { nodeFs } from '../node_builtin.js';
import { DTYPES, tensorBytes, type DType } from './dtype.js';
import { GGUF_DEFAULT_ALIGNMENT, GGUF_MAGIC, GGUF_TYPE_IDS, type GgufKV, type GgufScalarType, type GgufValue } from './gguf.js';

export type { GgufKV } from './gguf.js';
export interface GgufTensorOut {
  name: string;
  dtype: DType;
  /** [rows, cols] order; written reversed as ggml's ne */
  shape: number[];
  data: Uint8Array | (() => Uint8Array);
}

class Bytes {
  private chunks: Uint8Array[] = [];
  length = 0;
  push(b: Uint8Array) {
    this.chunks.push(b);
    this.length += b.length;
  }
  num(t: GgufScalarType, v: GgufValue) {
    const size = t === 'bool' || t === 'u8' || t === 'i8' ? 1 : t === 'u16' || t === 'i16' ? 2 : t === 'u32' || t === 'i32' || t === 'f32' ? 4 : 8;
    const b = new Uint8Array(size);
    const d = new DataView(b.buffer);
    switch (t) {
      case 'u8':
        d.setUint8(0, Number(v));
        break;
      case 'i8':
        d.setInt8(0, Number(v));
        break;
      case 'u16':
        d.setUint16(0, Number(v), true);
        break;
      case 'i16':
        d.setInt16(0, Number(v), true);
        break;
      case 'u32':
        d.setUint32(0, Number(v), true);
        break;
      case 'i32':
        d.setInt32(0, Number(v), true);
        break;
      case 'f32':
        d.setFloat32(0, Number(v), true);
        break;
      case 'f64':
        d.setFloat64(0, Number(v), true);
        break;
      case 'bool':
        d.setUint8(0, v ? 1 : 0);
        break;
      case 'u64':
        d.setBigUint64(0, BigInt(v as number), true);
        break;
      case 'i64':
        d.setBigInt64(0, BigInt(v as number), true);
        break;
      case 'str':
        throw new Error('str is not a number');
    }
    this.push(b);
  }
  str(s: string) {
    const b = Buffer.from(s, 'utf8');
    this.num('u64', b.length);
    this.push(b);
  }
  value(t: GgufScalarType, v: GgufValue) {
    if (t === 'str') this.str(String(v));
    else this.num(t, v);
  }
  concat(): Uint8Array {
    return Buffer.concat(this.chunks, this.length);
  }
}

export function writeGguf(path: string, opts: { metadata: GgufKV[]; tensors: GgufTensorOut[]; alignment?: number }): void {
  const alignment = opts.alignment ?? GGUF_DEFAULT_ALIGNMENT;
  const meta = [...opts.metadata];
  if (alignment !== GGUF_DEFAULT_ALIGNMENT && !meta.some((m) => m.key === 'general.alignment')) {
    meta.push({ key: 'general.alignment', type: 'u32', value: alignment });
  }
  const h = new Bytes();
  h.num('u32', GGUF_MAGIC);
  h.num('u32', 3);
  h.num('u64', opts.tensors.length);
  h.num('u64', meta.length);
  for (const kv of meta) {
    h.str(kv.key);
    if (typeof kv.type === 'string') {
      h.num('u32', GGUF_TYPE_IDS[kv.type]);
      h.value(kv.type, kv.value);
    } else {
      const arr = kv.value as GgufValue[];
      if (!Array.isArray(arr)) throw new Error(`gguf metadata ${kv.key}: array type with a non-array value`);
      h.num('u32', GGUF_TYPE_IDS.array);
      h.num('u32', GGUF_TYPE_IDS[kv.type.array]);
      h.num('u64', arr.length);
      for (const v of arr) h.value(kv.type.array, v);
    }
  }
  let rel = 0;
  const offsets: number[] = [];
  for (const t of opts.tensors) {
    h.str(t.name);
    h.num('u32', t.shape.length);
    for (const d of [...t.shape].reverse()) h.num('u64', d);
    h.num('u32', DTYPES[t.dtype].ggmlType);
    h.num('u64', rel);
    offsets.push(rel);
    rel += Math.ceil(tensorBytes(t.dtype, t.shape) / alignment) * alignment;
  }
  const header = h.concat();
  const tmp = `${path}.tmp-${process.pid}`;
  const fd = nodeFs().openSync(tmp, 'w');
  try {
    let pos = 0;
    const write = (b: Uint8Array) => {
      nodeFs().writeSync(fd, b);
      pos += b.length;
    };
    const pad = () => {
      const p = (alignment - (pos % alignment)) % alignment;
      if (p) write(new Uint8Array(p));
    };
    write(header);
    pad();
    for (const t of opts.tensors) {
      const data = typeof t.data === 'function' ? t.data() : t.data;
      const expect = tensorBytes(t.dtype, t.shape);
      if (data.length !== expect) throw new Error(`gguf tensor ${t.name}: ${data.length} bytes given, ${t.dtype} [${t.shape.join(', ')}] needs ${expect}`);
      write(data);
      pad();
    }
    nodeFs().closeSync(fd);
    nodeFs().renameSync(tmp, path);
  } catch (e) {
    try {
      nodeFs().closeSync(fd);
    } catch {
      /* already closed */
    }
    nodeFs().rmSync(tmp, { force: true });
    throw e;
  }
}
