// safetensors reader: u64 header length, JSON header {name: {dtype, shape, data_offsets}}, data.
// Single files and sharded sets (model.safetensors.index.json). Lazy: bytes read on demand.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fail } from '../errors.js';
import { tensorBytes, type DType } from './dtype.js';
import { FileReader, readTensorInto, type TensorInfo, type TensorSource } from './file.js';

const ST_DTYPES: Record<string, DType> = { F32: 'F32', F16: 'F16', BF16: 'BF16' };
// A header larger than this is not a model header (the format's own readers cap it at 100 MB).
const MAX_HEADER = 100_000_000;

export interface SafetensorsSource extends TensorSource {
  /** the header's __metadata__ (string map), merged over shards */
  metadata: Record<string, string>;
}

function parseFile(file: string): { reader: FileReader; infos: TensorInfo[]; metadata: Record<string, string> } {
  const reader = new FileReader(file);
  try {
    if (reader.size < 8) fail(`${file}: too small to be a safetensors file (${reader.size} bytes)`);
    const lenBuf = reader.readAt(0, new Uint8Array(8), 'header length');
    const len64 = new DataView(lenBuf.buffer).getBigUint64(0, true);
    if (len64 > BigInt(MAX_HEADER) || Number(len64) + 8 > reader.size) {
      fail(`${file}: header length ${len64} runs past the end of the file (${reader.size} bytes); the file is truncated or not safetensors`);
    }
    const hlen = Number(len64);
    const text = new TextDecoder().decode(reader.readAt(8, new Uint8Array(hlen), 'header'));
    let header: unknown;
    try {
      header = JSON.parse(text);
    } catch (e) {
      fail(`${file}: header is not valid JSON (${(e as Error).message})`);
    }
    if (typeof header !== 'object' || header === null || Array.isArray(header)) fail(`${file}: header is not a JSON object`);
    const base = 8 + hlen;
    const infos: TensorInfo[] = [];
    let metadata: Record<string, string> = {};
    for (const [name, v] of Object.entries(header as Record<string, unknown>)) {
      if (name === '__metadata__') {
        metadata = (v ?? {}) as Record<string, string>;
        continue;
      }
      const t = v as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
      if (typeof t !== 'object' || t === null) fail(`${file}: tensor '${name}' has no description in the header`);
      const dtype = ST_DTYPES[String(t.dtype)];
      if (!dtype) fail(`${file}: tensor '${name}' has dtype ${String(t.dtype)}; qwen.ts reads F32, F16 and BF16 safetensors`);
      if (!Array.isArray(t.shape) || !t.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) fail(`${file}: tensor '${name}' has an invalid shape ${JSON.stringify(t.shape)}`);
      const off = t.data_offsets;
      if (!Array.isArray(off) || off.length !== 2 || !off.every((d) => Number.isSafeInteger(d) && d >= 0) || off[1] < off[0]) {
        fail(`${file}: tensor '${name}' has invalid data_offsets ${JSON.stringify(off)}`);
      }
      const shape = t.shape as number[];
      const byteLength = tensorBytes(dtype, shape);
      if (off[1] - off[0] !== byteLength) {
        fail(`${file}: tensor '${name}' is ${dtype} [${shape.join(', ')}] (${byteLength} bytes) but its data_offsets span ${off[1] - off[0]} bytes`);
      }
      if (base + off[1] > reader.size) {
        fail(`${file}: tensor '${name}' data (bytes ${base + off[0]}..${base + off[1]}) lies past the end of the file (${reader.size} bytes); the file is truncated`);
      }
      infos.push({ name, dtype, shape, offset: base + off[0], byteLength, file });
    }
    return { reader, infos, metadata };
  } catch (e) {
    reader.close();
    throw e;
  }
}

/** Open one .safetensors file, or a folder / index.json describing a sharded set. */
export function openSafetensors(p: string): SafetensorsSource {
  let files: string[];
  let indexPath: string | undefined;
  if (fs.statSync(p).isDirectory()) {
    const idx = path.join(p, 'model.safetensors.index.json');
    if (fs.existsSync(idx)) indexPath = idx;
    else if (fs.existsSync(path.join(p, 'model.safetensors'))) files = [path.join(p, 'model.safetensors')];
    else fail(`${p}: no model.safetensors or model.safetensors.index.json in this folder`);
  } else if (p.endsWith('.index.json')) indexPath = p;
  else files = [p];
  let weightMap: Record<string, string> | undefined;
  if (indexPath) {
    let idx: { weight_map?: Record<string, string> };
    try {
      idx = JSON.parse(fs.readFileSync(indexPath, 'utf8'));
    } catch (e) {
      fail(`${indexPath}: not valid JSON (${(e as Error).message})`);
    }
    if (!idx.weight_map || typeof idx.weight_map !== 'object') fail(`${indexPath}: no weight_map object`);
    weightMap = idx.weight_map;
    const dir = path.dirname(indexPath);
    const names = [...new Set(Object.values(weightMap))];
    for (const n of names) {
      if (typeof n !== 'string' || n.includes('/') || n.includes('\\') || n.startsWith('.')) fail(`${indexPath}: shard name ${JSON.stringify(n)} is not a plain file name`);
    }
    for (const n of names) if (!fs.existsSync(path.join(dir, n))) fail(`${indexPath}: shard '${n}' is missing from ${dir}`);
    files = names.map((n) => path.join(dir, n));
  }
  const readers = new Map<string, FileReader>();
  const tensors = new Map<string, TensorInfo>();
  const metadata: Record<string, string> = {};
  try {
    for (const f of files!) {
      const parsed = parseFile(f);
      readers.set(f, parsed.reader);
      Object.assign(metadata, parsed.metadata);
      for (const info of parsed.infos) {
        if (tensors.has(info.name)) fail(`${f}: tensor '${info.name}' is also in ${tensors.get(info.name)!.file}`);
        if (weightMap && weightMap[info.name] !== path.basename(f)) {
          fail(`${f}: tensor '${info.name}' is in this shard, but ${indexPath} places it in '${weightMap[info.name] ?? '(nowhere)'}'`);
        }
        tensors.set(info.name, info);
      }
    }
    if (weightMap) {
      for (const [name, shard] of Object.entries(weightMap)) {
        if (!tensors.has(name)) fail(`${indexPath}: tensor '${name}' should be in shard '${shard}' but is not there`);
      }
    }
  } catch (e) {
    for (const r of readers.values()) r.close();
    throw e;
  }
  return {
    path: indexPath ?? files![0]!,
    tensors,
    metadata,
    readInto(name, dst) {
      const info = tensors.get(name);
      if (!info) fail(`${p}: no tensor named '${name}'`);
      readTensorInto(readers.get(info.file)!, info, dst);
    },
    close() {
      for (const r of readers.values()) r.close();
    },
  };
}
