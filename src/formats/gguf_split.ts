// Split GGUF files, as llama.cpp's gguf-split writes them (and the hubs ship big models):
// `NAME-00001-of-00003.gguf` ... `NAME-00003-of-00003.gguf`, each a complete GGUF file. Every shard
// carries `split.no` (0-based, u16), `split.count` (u16) and `split.tensors.count` (i32, the
// tensors of the whole set); the first also holds all the model's metadata; each tensor lies in
// exactly one shard. (llama.cpp: tools/gguf-split/gguf-split.cpp, llama_split_path() in
// src/llama.cpp, the shard checks in src/llama-model-loader.cpp.) A set opens as one GgufFile.
import { nodeFs, nodePath } from '../node_builtin.js';
import { fail, quote } from '../errors.js';
import type { TensorInfo } from './file.js';
import { openGguf, type GgufFile, type GgufKV } from './gguf.js';
import { writeGguf, type GgufTensorOut } from './gguf_writer.js';

export const SPLIT_NO = 'split.no';
export const SPLIT_COUNT = 'split.count';
export const SPLIT_TENSORS_COUNT = 'split.tensors.count';

// llama_split_path's "%s-%05d-of-%05d.gguf" (shard numbers 1-based in names, 0-based in split.no)
const SPLIT_NAME = /^(.*)-(\d{5})-of-(\d{5})\.gguf$/;

export interface SplitName {
  prefix: string;
  no: number;
  count: number;
}

/** `dir/NAME-00002-of-00003.gguf` -> { prefix: 'dir/NAME', no: 2, count: 3 }; undefined for other names. */
export function parseSplitName(p: string): SplitName | undefined {
  const m = SPLIT_NAME.exec(p);
  if (!m) return undefined;
  const no = Number(m[2]),
    count = Number(m[3]);
  return no >= 1 && no <= count ? { prefix: m[1]!, no, count } : undefined;
}

/** The name of shard `no` (1-based) of `count`. */
export function splitPath(prefix: string, no: number, count: number): string {
  return `${prefix}-${String(no).padStart(5, '0')}-of-${String(count).padStart(5, '0')}.gguf`;
}

/** Every shard name of the set `p` belongs to (p itself when it is not a shard name). */
export function splitSiblings(p: string): string[] {
  const s = parseSplitName(p);
  return s ? Array.from({ length: s.count }, (_, i) => splitPath(s.prefix, i + 1, s.count)) : [p];
}

function splitInt(g: GgufFile, key: string): number | undefined {
  const v = g.metadata.get(key);
  if (v === undefined) return undefined;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) fail(`${g.path}: metadata ${quote(key)} = ${quote(v)} is not a non-negative integer; the file is corrupt`);
  return v;
}

/**
 * Open a GGUF model: a single file, or the whole split set that `p` (any of its shards) belongs
 * to. A shard missing, shards of different sets, a count that disagrees, or a tensor in two
 * shards is an error naming the file.
 */
export function openGgufModel(p: string): GgufFile {
  const g = openGguf(p);
  let count: number | undefined, no: number | undefined;
  try {
    count = splitInt(g, SPLIT_COUNT);
    no = splitInt(g, SPLIT_NO);
  } catch (e) {
    g.close();
    throw e;
  }
  if (count === undefined || count <= 1) return g; // gguf-split's one-shard output is a plain file
  const shards: GgufFile[] = [g];
  try {
    const base = nodePath().basename(p);
    if (no === undefined) fail(`${p}: split.count = ${count} but split.no is missing; the file is corrupt`);
    if (no >= count) fail(`${p}: split.no = ${no} is not below split.count = ${count}; the file is corrupt`);
    const name = parseSplitName(p);
    if (!name)
      fail(
        `${p}: shard ${no + 1} of ${count} of a split GGUF, but its name does not end in -${pad(no + 1)}-of-${pad(count)}.gguf, so the other shards cannot be found; keep the names gguf-split gave them`,
      );
    if (name.no !== no + 1 || name.count !== count) {
      fail(`${p}: the name says shard ${name.no} of ${name.count}, but the file is shard ${no + 1} of ${count} (split.no = ${no}, split.count = ${count}); it belongs to another split set`);
    }
    const files = Array.from({ length: count }, (_, i) => splitPath(name.prefix, i + 1, count!));
    const missing = files.filter((f) => f !== p && !nodeFs().existsSync(f));
    if (missing.length) {
      const which = missing.length === 1 ? '' : ` (${missing.length} are missing: ${missing.map((f) => nodePath().basename(f)).join(', ')})`;
      fail(`${missing[0]}: no such file: ${base} is shard ${no + 1} of a split GGUF of ${count} shards, and this one is not there${which}; download every shard`);
    }
    const byIndex: GgufFile[] = [];
    byIndex[no] = g;
    for (let i = 0; i < count; i++) {
      if (i === no) continue;
      const s = openGguf(files[i]!);
      shards.push(s);
      byIndex[i] = s;
      const sc = splitInt(s, SPLIT_COUNT),
        sn = splitInt(s, SPLIT_NO);
      if (sc !== count) fail(`${s.path}: split.count = ${sc ?? '(missing)'}, but ${base} says the set has ${count} shards; the files come from different split sets`);
      if (sn !== i) fail(`${s.path}: split.no = ${sn ?? '(missing)'}, but its name makes it shard ${i + 1} of ${count} (split.no ${i}); the files come from different split sets`);
    }
    return merge(byIndex);
  } catch (e) {
    for (const s of shards) s.close();
    throw e;
  }
}

const pad = (n: number) => String(n).padStart(5, '0');

/** One GgufFile over the shards (in split.no order): the first shard's metadata, every tensor. */
function merge(shards: GgufFile[]): GgufFile {
  const first = shards[0]!;
  const want = splitInt(first, SPLIT_TENSORS_COUNT);
  const tensors = new Map<string, TensorInfo>();
  const owner = new Map<string, GgufFile>();
  const tensorList: TensorInfo[] = [];
  for (const s of shards) {
    const n = splitInt(s, SPLIT_TENSORS_COUNT);
    if (n !== want) fail(`${s.path}: split.tensors.count = ${n ?? '(missing)'}, but ${nodePath().basename(first.path)} says ${want ?? '(missing)'}; the files come from different split sets`);
    for (const t of s.tensorList) {
      const other = tensors.get(t.name);
      if (other)
        fail(`${s.path}: tensor ${quote(t.name)} is also in ${nodePath().basename(other.file)}; a tensor belongs to one shard only (the files come from different split sets, or one is corrupt)`);
      tensors.set(t.name, t);
      owner.set(t.name, s);
      tensorList.push(t);
    }
  }
  if (want !== undefined && tensors.size !== want) {
    fail(`${first.path}: split.tensors.count = ${want}, but the ${shards.length} shards hold ${tensors.size} tensors; the set is incomplete or mixed`);
  }
  const src = (name: string) => {
    const s = owner.get(name);
    if (!s) fail(`${first.path}: no tensor named ${quote(name)}`);
    return s;
  };
  // the split.* keys describe the files, not the model: a converter copying the metadata must not
  // make its single output file look like a shard
  const keep = <V>(m: Map<string, V>) => new Map([...m].filter(([k]) => !k.startsWith('split.')));
  return {
    ...first,
    tensors,
    tensorList,
    metadata: keep(first.metadata),
    metadataTypes: keep(first.metadataTypes),
    readInto: (name, dst) => src(name).readInto(name, dst),
    readRange: (name, start, dst) => src(name).readRange!(name, start, dst),
    close: () => {
      for (const s of shards) s.close();
    },
  };
}

/** GGUF files grouped into models: a plain file alone, a split set's shards together. */
export interface GgufSet {
  /** `NAME.gguf`, or `NAME-*-of-0000N.gguf` for a split set */
  label: string;
  /** the name as a plain file would have it (`NAME.gguf`), for matching quantisation suffixes */
  stem: string;
  /** every file of the model, in order (for a split set: the names of all its shards) */
  files: string[];
  /** those of `files` not among the given paths */
  missing: string[];
}

export function ggufSets(paths: readonly string[]): GgufSet[] {
  const have = new Set(paths);
  const sets = new Map<string, GgufSet>();
  for (const p of [...paths].sort()) {
    const s = parseSplitName(p);
    const label = s ? `${s.prefix}-*-of-${pad(s.count)}.gguf` : p;
    if (sets.has(label)) continue;
    const files = splitSiblings(p);
    sets.set(label, { label, stem: s ? `${s.prefix}.gguf` : p, files, missing: files.filter((f) => !have.has(f)) });
  }
  return [...sets.values()];
}

/**
 * The GGUF model in a folder that has no config.json: its only split set, or its only GGUF file
 * (multimodal projectors aside). Undefined when there is none; an error listing them when there
 * are several.
 */
export function ggufInFolder(dir: string): string | undefined {
  const sets = ggufSets(
    nodeFs()
      .readdirSync(dir)
      .filter((n) => n.endsWith('.gguf') && !/mmproj/i.test(n)),
  );
  if (sets.length === 0) return undefined;
  if (sets.length > 1) fail(`${dir}: holds several GGUF models (${sets.map((s) => s.label).join(', ')}); name the file to load`);
  // a set opens from a shard that is there, so that a missing one is reported as missing
  const s = sets[0]!;
  return nodePath().join(dir, s.files.find((f) => !s.missing.includes(f))!);
}

/**
 * Write a model as a split set, laid out as llama.cpp's `gguf-split --split-max-tensors N` does:
 * all metadata and then split.no / split.count / split.tensors.count in the first shard, only
 * those three in the others, a new shard every N tensors (`noTensorFirstSplit`: the first shard
 * holds metadata only). Returns the shard paths. `prefix` is the name before `-00001-of-...`.
 */
export function writeGgufSplit(prefix: string, opts: { metadata: GgufKV[]; tensors: GgufTensorOut[]; maxTensors: number; noTensorFirstSplit?: boolean }): string[] {
  const groups: GgufTensorOut[][] = opts.noTensorFirstSplit ? [[]] : [];
  opts.tensors.forEach((t, i) => {
    if (i % opts.maxTensors === 0) groups.push([]);
    groups[groups.length - 1]!.push(t);
  });
  if (groups.length === 0) groups.push([]);
  const n = groups.length;
  // in gguf-split's order: it sets split.count last (ggml's gguf_set_* moves a replaced key to the end)
  const splitKv = (i: number): GgufKV[] => [
    { key: SPLIT_NO, type: 'u16', value: i },
    { key: SPLIT_TENSORS_COUNT, type: 'i32', value: opts.tensors.length },
    { key: SPLIT_COUNT, type: 'u16', value: n },
  ];
  const model = opts.metadata.filter((kv) => !kv.key.startsWith('split.'));
  return groups.map((tensors, i) => {
    const file = splitPath(prefix, i + 1, n);
    writeGguf(file, { metadata: i === 0 ? [...model, ...splitKv(0)] : splitKv(i), tensors });
    return file;
  });
}
