// safetensors reader: u64 header length, JSON header {name: {dtype, shape, data_offsets}}, data.
// Single files and sharded sets (model.safetensors.index.json). Lazy: bytes read on demand.
import { fail, quote } from '../errors.js';
import { tensorBytes, type DType } from './dtype.js';
import { FileReader, readTensorInto, readTensorRange, type ByteReader, type TensorInfo, type TensorSource } from './file.js';
import { nodeFs, nodePath } from '../node_builtin.js';

const ST_DTYPES: Record<string, DType> = { F32: 'F32', F16: 'F16', BF16: 'BF16' };
// A header larger than this is not a model header (the format's own readers cap it at 100 MB).
const MAX_HEADER = 100_000_000;
// Tensors in one file: the largest checkpoints have tens of thousands, spread over shards.
const MAX_TENSORS = 1 << 18;

export interface SafetensorsSource extends TensorSource {
  /** the header's __metadata__ (string map), merged over shards */
  metadata: Record<string, string>;
}

function parseFile(file: string): { reader: ByteReader; infos: TensorInfo[]; metadata: Record<string, string> } {
  const reader = new FileReader(file);
  try {
    return { reader, ...parseSafetensors(reader) };
  } catch (e) {
    reader.close();
    throw e;
  }
}

/** One safetensors file's header read through `r` (a file, or a URL / Blob in a browser). */
export function parseSafetensors(reader: ByteReader): { infos: TensorInfo[]; metadata: Record<string, string> } {
  const file = reader.path;
  {
    if (reader.size < 8) fail(`${file}: too small to be a safetensors file (${reader.size} bytes)`);
    const lenBuf = reader.readAt(0, new Uint8Array(8), 'header length');
    const len64 = new DataView(lenBuf.buffer).getBigUint64(0, true);
    if (len64 > BigInt(MAX_HEADER) || Number(len64) + 8 > reader.size) {
      fail(`${file}: header length ${len64} runs past the end of the file (${reader.size} bytes); the file is truncated or not safetensors`);
    }
    const hlen = Number(len64);
    const text = new TextDecoder().decode(reader.readAt(8, new Uint8Array(hlen), 'header'));
    // count entries before parsing: a hostile header of a million tiny entries would cost seconds
    // and a gigabyte as objects, and no model file has anything near this many
    const count = countOf(text, '"data_offsets"');
    if (count > MAX_TENSORS) fail(`${file}: header describes ${count} tensors, more than the ${MAX_TENSORS} a model file has; refusing it`);
    let header: unknown;
    try {
      header = JSON.parse(text);
    } catch (e) {
      fail(`${file}: header is not valid JSON (${(e as Error).message})`);
    }
    if (typeof header !== 'object' || header === null || Array.isArray(header)) fail(`${file}: header is not a JSON object`);
    const base = 8 + hlen;
    const infos: TensorInfo[] = [];
    const metadata: Record<string, string> = {};
    for (const [name, v] of Object.entries(header as Record<string, unknown>)) {
      if (name === '__metadata__') {
        if (typeof v !== 'object' || v === null || Array.isArray(v)) fail(`${file}: __metadata__ must be an object of strings, got ${quote(v)}`);
        for (const [k, s] of Object.entries(v)) {
          if (typeof s !== 'string') fail(`${file}: __metadata__ entry ${quote(k)} must be a string, got ${quote(s)}`);
          metadata[k] = s;
        }
        continue;
      }
      const t = v as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
      if (typeof t !== 'object' || t === null || Array.isArray(t)) fail(`${file}: tensor ${quote(name)} has no description in the header`);
      if (typeof t.dtype !== 'string') fail(`${file}: tensor ${quote(name)} has dtype ${quote(t.dtype)}, which is not a string`);
      const dtype = Object.hasOwn(ST_DTYPES, t.dtype) ? ST_DTYPES[t.dtype] : undefined;
      if (!dtype) fail(`${file}: tensor ${quote(name)} has dtype ${quote(t.dtype)}; qwen.ts reads F32, F16 and BF16 safetensors`);
      if (!Array.isArray(t.shape) || t.shape.length > 8 || !t.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) fail(`${file}: tensor ${quote(name)} has an invalid shape ${quote(t.shape)}`);
      const off = t.data_offsets;
      if (!Array.isArray(off) || off.length !== 2 || !off.every((d) => Number.isSafeInteger(d) && d >= 0) || off[1] < off[0]) {
        fail(`${file}: tensor ${quote(name)} has invalid data_offsets ${quote(off)}`);
      }
      const shape = t.shape as number[];
      const byteLength = tensorBytes(dtype, shape);
      if (off[1] - off[0] !== byteLength) {
        fail(`${file}: tensor ${quote(name)} is ${dtype} [${shape.join(', ')}] (${byteLength} bytes) but its data_offsets span ${off[1] - off[0]} bytes`);
      }
      if (base + off[1] > reader.size) {
        fail(`${file}: tensor ${quote(name)} data (bytes ${base + off[0]}..${base + off[1]}) lies past the end of the file (${reader.size} bytes); the file is truncated`);
      }
      infos.push({ name, dtype, shape, offset: base + off[0], byteLength, file });
    }
    checkTiling(file, infos, base, reader.size);
    return { infos, metadata };
  }
}

/** Open one .safetensors file, or a folder / index.json describing a sharded set. */
export function openSafetensors(p: string): SafetensorsSource {
  const fs = nodeFs(),
    path = nodePath();
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
    for (const n of names) if (!fs.existsSync(path.join(dir, n))) fail(`${indexPath}: shard ${quote(n)} is missing from ${dir}`);
    files = names.map((n) => path.join(dir, n));
  }
  const readers = new Map<string, ByteReader>();
  const tensors = new Map<string, TensorInfo>();
  const metadata: Record<string, string> = {};
  try {
    for (const f of files!) {
      const parsed = parseFile(f);
      readers.set(f, parsed.reader);
      Object.assign(metadata, parsed.metadata);
      for (const info of parsed.infos) {
        if (tensors.has(info.name)) fail(`${f}: tensor ${quote(info.name)} is also in ${tensors.get(info.name)!.file}`);
        if (weightMap && weightMap[info.name] !== path.basename(f)) {
          fail(`${f}: tensor ${quote(info.name)} is in this shard, but ${indexPath} places it in ${weightMap[info.name] === undefined ? '(nowhere)' : quote(weightMap[info.name])}`);
        }
        tensors.set(info.name, info);
      }
    }
    if (weightMap) {
      for (const [name, shard] of Object.entries(weightMap)) {
        if (!tensors.has(name)) fail(`${indexPath}: tensor ${quote(name)} should be in shard ${quote(shard)} but is not there`);
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
      if (!info) fail(`${p}: no tensor named ${quote(name)}`);
      readTensorInto(readers.get(info.file)!, info, dst);
    },
    readRange(name, start, dst) {
      const info = tensors.get(name);
      if (!info) fail(`${p}: no tensor named ${quote(name)}`);
      readTensorRange(readers.get(info.file)!, info, start, dst);
    },
    close() {
      for (const r of readers.values()) r.close();
    },
  };
}

function countOf(text: string, needle: string): number {
  let n = 0;
  for (let i = text.indexOf(needle); i >= 0; i = text.indexOf(needle, i + needle.length)) n++;
  return n;
}

/**
 * The format's rule (as its reference reader enforces): tensors tile the data section, each
 * starting where the one before ends, with nothing after the last. An offset moved by one byte,
 * or onto another tensor, is refused instead of loading as silently different weights.
 */
function checkTiling(file: string, infos: readonly TensorInfo[], base: number, size: number): void {
  const sorted = [...infos].sort((a, b) => a.offset - b.offset || a.byteLength - b.byteLength);
  // overlaps first: a tensor moved onto another's bytes also leaves a gap, and the overlap is the news
  for (let i = 1; i < sorted.length; i++) {
    const prev = sorted[i - 1]!,
      t = sorted[i]!;
    if (t.offset < prev.offset + prev.byteLength) {
      fail(
        `${file}: tensor ${quote(t.name)} starts at data byte ${t.offset - base} and overlaps tensor ${quote(prev.name)} (data bytes ${prev.offset - base}..${prev.offset + prev.byteLength - base}); the header is corrupt`,
      );
    }
  }
  let end = base;
  let prev: TensorInfo | undefined;
  for (const t of sorted) {
    if (t.offset !== end) {
      fail(
        `${file}: tensor ${quote(t.name)} starts at data byte ${t.offset - base}, leaving a gap of ${t.offset - end} bytes after ${prev ? `tensor ${quote(prev.name)}` : 'the header'}; the header is corrupt`,
      );
    }
    end = t.offset + t.byteLength;
    prev = t;
  }
  if (end !== size) fail(`${file}: the tensors end at byte ${end} but the file has ${size} bytes; the header or file is corrupt`);
}
