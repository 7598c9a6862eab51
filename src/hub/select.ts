// Which files of a repository make a runnable model: config, generation config, tokenizer files, the
// model card and the safetensors weights (with their index), or one GGUF model: a file, or every
// shard of a split set (NAME-00001-of-00003.gguf...). Repos also hold PyTorch .bin copies, ONNX
// exports, images...: those are never fetched.
import { fail } from '../errors.js';
import { ggufSets, type GgufSet } from '../formats/gguf_split.js';

export interface RemoteFile {
  path: string;
  size?: number;
  /** expected digest and blob name: sha256 (LFS / ModelScope) or git sha1 (small HF files) */
  oid?: string;
}

export interface Selection {
  files: RemoteFile[];
  /** the safetensors index, to be read before its shards are chosen */
  index?: RemoteFile;
  /** the GGUF file the model is (a split set's first shard), when it is one */
  gguf?: string;
}

const SIDE_FILES = [
  'config.json',
  'generation_config.json',
  'tokenizer.json',
  'tokenizer_config.json',
  'vocab.json',
  'merges.txt',
  'special_tokens_map.json',
  'added_tokens.json',
  'chat_template.json',
  'chat_template.jinja',
  'README.md',
];

// a PEFT LoRA adapter (what --lora loads from a hub id): its config and weights
const ADAPTER_FILES = ['adapter_config.json', 'adapter_model.safetensors'];

// Quantisations the engine runs, best size/quality trade-off first (what `ollama pull` defaults to).
const GGUF_PREFERENCE = ['q4_k_m', 'q8_0', 'q6_k', 'q4_0', 'f16', 'bf16', 'f32'];

/** The files of a GGUF model (all shards of a split set), each of which the repo must list. */
function ggufModelFiles(set: GgufSet, byPath: Map<string, RemoteFile>, repo: string): RemoteFile[] {
  const missing = set.files.filter((f) => !byPath.has(f));
  if (missing.length) {
    fail(`'${repo}' has ${set.files.length - missing.length} of the ${set.files.length} shards of ${set.label}; missing: ${missing.join(', ')}`);
  }
  return set.files.map((f) => byPath.get(f)!);
}

export function selectFiles(all: RemoteFile[], repo: string, file?: string): Selection {
  const byPath = new Map(all.map((f) => [f.path, f]));
  const readme = byPath.get('README.md');
  if (file) {
    let f = byPath.get(file);
    if (!f) {
      const base = all.filter((x) => x.path.split('/').pop() === file);
      if (base.length === 1) f = base[0];
    }
    if (!f) {
      const gg = ggufSets(all.filter((x) => /\.gguf$/i.test(x.path)).map((x) => x.path)).map((g) => g.label);
      fail(`'${repo}' has no file '${file}'${gg.length ? `; its GGUF files: ${gg.join(', ')}` : ''}`);
    }
    if (!/\.gguf$/i.test(f.path)) return { files: readme && readme !== f ? [f, readme] : [f] };
    // one shard of a split set names the whole set
    const files = ggufModelFiles(ggufSets([f.path])[0]!, byPath, repo);
    return { files: readme && !files.includes(readme) ? [...files, readme] : files, gguf: files[0]!.path };
  }
  const top = all.filter((f) => !f.path.includes('/'));
  if (ADAPTER_FILES.every((n) => byPath.has(n)) && !byPath.has('config.json')) return { files: [...ADAPTER_FILES, 'README.md'].flatMap((n) => byPath.get(n) ?? []) };
  const shards = top.filter((f) => f.path.endsWith('.safetensors'));
  if (shards.length > 0) {
    if (!byPath.has('config.json')) fail(`'${repo}' has safetensors weights but no config.json: not a Hugging Face model folder qwen-ts can load`);
    const side = SIDE_FILES.map((n) => byPath.get(n)).filter((f): f is RemoteFile => !!f);
    const index = byPath.get('model.safetensors.index.json');
    if (index) return { files: side, index };
    const single = byPath.get('model.safetensors');
    if (!single) fail(`'${repo}' has ${shards.map((s) => s.path).join(', ')} but neither model.safetensors nor model.safetensors.index.json`);
    return { files: [...side, single] };
  }
  const ggufs = ggufSets(all.filter((f) => /\.gguf$/i.test(f.path) && !/mmproj/i.test(f.path)).map((f) => f.path));
  if (ggufs.length > 0) {
    let pick = ggufs.length === 1 ? ggufs[0] : undefined;
    for (const q of GGUF_PREFERENCE) {
      if (pick) break;
      pick = ggufs.find((g) => new RegExp(`[-_.]${q}\\.gguf$`, 'i').test(g.stem));
    }
    if (!pick) fail(`'${repo}' has several GGUF files and none in a quantisation qwen-ts prefers; choose one with --file: ${ggufs.map((g) => g.label).join(', ')}`);
    const files = ggufModelFiles(pick, byPath, repo);
    return { files: readme ? [...files, readme] : files, gguf: files[0]!.path };
  }
  fail(
    `'${repo}' has no model.safetensors, safetensors index or GGUF file that qwen-ts can load (files: ${all
      .slice(0, 20)
      .map((f) => f.path)
      .join(', ')}${all.length > 20 ? ', ...' : ''})`,
  );
}

/** The shards an index names, checked against the repo's file list. */
export function shardsOf(indexJson: string, all: RemoteFile[], repo: string): RemoteFile[] {
  let map: unknown;
  try {
    map = (JSON.parse(indexJson) as { weight_map?: unknown }).weight_map;
  } catch (e) {
    fail(`${repo}: model.safetensors.index.json is not valid JSON (${(e as Error).message})`);
  }
  if (!map || typeof map !== 'object') fail(`${repo}: model.safetensors.index.json has no weight_map`);
  const byPath = new Map(all.map((f) => [f.path, f]));
  return [...new Set(Object.values(map as Record<string, unknown>))].map((n) => {
    const f = typeof n === 'string' ? byPath.get(n) : undefined;
    if (!f) fail(`${repo}: model.safetensors.index.json names the shard ${JSON.stringify(n)}, which the repository does not have`);
    return f;
  });
}
