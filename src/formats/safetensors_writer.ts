// safetensors writer (single file, or shards + model.safetensors.index.json), atomic per file.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { tensorBytes, type DType } from './dtype.js';

export interface StTensorOut {
  name: string;
  dtype: DType;
  shape: number[];
  data: Uint8Array;
}

/** A tensor to write whose bytes may come from a function called as it is written (one tensor in memory at a time). */
export type StTensorLazy = Omit<StTensorOut, 'data'> & { data: Uint8Array | (() => Uint8Array) };

export function writeSafetensors(file: string, tensors: StTensorLazy[], metadata: Record<string, string> = { format: 'pt' }): void {
  const header: Record<string, unknown> = { __metadata__: metadata };
  let off = 0;
  for (const t of tensors) {
    if (t.dtype !== 'F32' && t.dtype !== 'F16' && t.dtype !== 'BF16') throw new Error(`safetensors cannot store ${t.dtype} (${t.name})`);
    const n = tensorBytes(t.dtype, t.shape);
    if (typeof t.data !== 'function' && n !== t.data.length) throw new Error(`safetensors tensor ${t.name}: ${t.data.length} bytes given, ${n} needed`);
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [off, off + n] };
    off += n;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - ((json.length + 8) % 8)) % 8); // keep data 8-byte aligned, as the reference writer does
  const hb = Buffer.from(json, 'utf8');
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(hb.length));
  const tmp = `${file}.tmp-${process.pid}`;
  const fd = fs.openSync(tmp, 'w');
  try {
    fs.writeSync(fd, len);
    fs.writeSync(fd, hb);
    for (const t of tensors) {
      const d = typeof t.data === 'function' ? t.data() : t.data;
      if (d.length !== tensorBytes(t.dtype, t.shape)) throw new Error(`safetensors tensor ${t.name}: ${d.length} bytes given, ${tensorBytes(t.dtype, t.shape)} needed`);
      fs.writeSync(fd, d);
    }
    fs.closeSync(fd);
    fs.renameSync(tmp, file);
  } catch (e) {
    try {
      fs.closeSync(fd);
    } catch {
      /* closed */
    }
    fs.rmSync(tmp, { force: true });
    throw e;
  }
}

/** Write tensors split into shards of about `maxShardBytes`, with the HF index file. */
export function writeShardedSafetensors(dir: string, tensors: StTensorLazy[], maxShardBytes: number): string[] {
  const shards: StTensorLazy[][] = [[]];
  let size = 0;
  for (const t of tensors) {
    const n = tensorBytes(t.dtype, t.shape);
    if (size > 0 && size + n > maxShardBytes) {
      shards.push([]);
      size = 0;
    }
    shards[shards.length - 1]!.push(t);
    size += n;
  }
  const names = shards.map((_, i) => `model-${String(i + 1).padStart(5, '0')}-of-${String(shards.length).padStart(5, '0')}.safetensors`);
  const weightMap: Record<string, string> = {};
  shards.forEach((s, i) => {
    writeSafetensors(path.join(dir, names[i]!), s);
    for (const t of s) weightMap[t.name] = names[i]!;
  });
  const total = tensors.reduce((a, t) => a + tensorBytes(t.dtype, t.shape), 0);
  fs.writeFileSync(path.join(dir, 'model.safetensors.index.json'), JSON.stringify({ metadata: { total_size: total }, weight_map: weightMap }, null, 2));
  return names;
}
