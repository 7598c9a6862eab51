// What the cache holds (for `qwen-ts list`) and removing a model (`qwen-ts rm`). Reads only local
// files: config.json / GGUF metadata for architecture and quantisation, the model card's YAML front
// matter (or GGUF general.base_model.*) for the base model, so derived models show their lineage.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fail } from '../errors.js';
import { openGguf } from '../formats/gguf.js';
import { cacheRoot, ggufFiles, loadablePath, RepoCache, type Env } from './cache.js';
import { isCommitHash, parseModelRef, repoFolderName, repoFromFolder, type HubName } from './ids.js';

export interface CachedSnapshot {
  commit: string;
  /** branches / tags whose refs/ file names this commit */
  refs: string[];
  dir: string;
  /** what loadModel takes, when the snapshot is complete */
  path?: string;
  format?: 'safetensors' | 'gguf';
  /** bytes of the distinct blobs it links to */
  size: number;
  architecture?: string;
  quantization?: string;
  baseModel?: string[];
  /** the card's base_model_relation: finetune, quantized, adapter, merge */
  relation?: string;
}

export interface CachedModel {
  hub: HubName;
  repo: string;
  dir: string;
  /** all blobs, partial downloads included */
  size: number;
  snapshots: CachedSnapshot[];
}

// llama.cpp's llama_ftype numbering (general.file_type)
const FTYPES: Record<number, string> = {
  0: 'F32',
  1: 'F16',
  2: 'Q4_0',
  3: 'Q4_1',
  7: 'Q8_0',
  8: 'Q5_0',
  9: 'Q5_1',
  10: 'Q2_K',
  11: 'Q3_K_S',
  12: 'Q3_K_M',
  13: 'Q3_K_L',
  14: 'Q4_K_S',
  15: 'Q4_K_M',
  16: 'Q5_K_S',
  17: 'Q5_K_M',
  18: 'Q6_K',
  19: 'IQ2_XXS',
  20: 'IQ2_XS',
  21: 'Q2_K_S',
  22: 'IQ3_XS',
  23: 'IQ3_XXS',
  24: 'IQ1_S',
  25: 'IQ4_NL',
  26: 'IQ3_S',
  27: 'IQ3_M',
  28: 'IQ2_S',
  29: 'IQ2_M',
  30: 'IQ4_XS',
  31: 'IQ1_M',
  32: 'BF16',
  36: 'TQ1_0',
  37: 'TQ2_0',
};

/** `base_model` (a string or a list) and `base_model_relation` from a model card's front matter. */
export function cardBaseModel(readme: string): { baseModel?: string[]; relation?: string } {
  const m = /^---\r?\n([\s\S]*?)\r?\n---/.exec(readme);
  if (!m) return {};
  const lines = m[1]!.split(/\r?\n/);
  const unq = (s: string) => s.trim().replace(/^['"]|['"]$/g, '');
  const out: { baseModel?: string[]; relation?: string } = {};
  for (let i = 0; i < lines.length; i++) {
    const kv = /^(base_model|base_model_relation):\s*(.*)$/.exec(lines[i]!);
    if (!kv) continue;
    const v = kv[2]!.trim();
    if (kv[1] === 'base_model_relation') {
      out.relation = unq(v);
      continue;
    }
    if (v.startsWith('['))
      out.baseModel = v
        .replace(/^\[|\]$/g, '')
        .split(',')
        .map(unq)
        .filter(Boolean);
    else if (v) out.baseModel = [unq(v)];
    else {
      const list: string[] = [];
      while (i + 1 < lines.length && /^\s*-\s+/.test(lines[i + 1]!)) list.push(unq(lines[++i]!.replace(/^\s*-\s+/, '')));
      if (list.length) out.baseModel = list;
    }
  }
  return out;
}

function readJson(p: string): Record<string, unknown> | undefined {
  try {
    return JSON.parse(fs.readFileSync(p, 'utf8')) as Record<string, unknown>;
  } catch {
    return undefined;
  }
}

function describeSnapshot(dir: string, commit: string, refs: string[]): CachedSnapshot {
  const s: CachedSnapshot = { commit, refs, dir, size: 0 };
  const seen = new Set<string>();
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) {
        walk(p);
        continue;
      }
      try {
        const real = fs.realpathSync(p);
        if (!seen.has(real)) {
          seen.add(real);
          s.size += fs.statSync(real).size;
        }
      } catch {
        /* dangling link: blob removed */
      }
    }
  };
  walk(dir);
  s.path = loadablePath(dir);
  const cfg = readJson(path.join(dir, 'config.json'));
  if (cfg) {
    s.format = 'safetensors';
    const arch = Array.isArray(cfg.architectures) ? cfg.architectures[0] : undefined;
    s.architecture = typeof arch === 'string' ? arch : typeof cfg.model_type === 'string' ? cfg.model_type : undefined;
    const q = cfg.quantization_config as { quant_method?: unknown; bits?: unknown } | undefined;
    const dtype = cfg.torch_dtype ?? cfg.dtype;
    if (q && typeof q.quant_method === 'string') s.quantization = `${q.quant_method}${typeof q.bits === 'number' ? ` ${q.bits}-bit` : ''}`;
    else if (typeof dtype === 'string') s.quantization = dtype;
  }
  const gguf = s.path?.endsWith('.gguf') ? s.path : !cfg ? ggufFiles(dir).map((g) => path.join(dir, g))[0] : undefined;
  if (gguf) {
    s.format = 'gguf';
    try {
      const g = openGguf(gguf);
      try {
        const md = g.metadata;
        const arch = md.get('general.architecture');
        if (typeof arch === 'string') s.architecture = arch;
        const ft = md.get('general.file_type');
        s.quantization = typeof ft === 'number' ? (FTYPES[ft] ?? `file_type ${ft}`) : undefined;
        const n = md.get('general.base_model.count');
        const bases: string[] = [];
        for (let i = 0; typeof n === 'number' && i < n; i++) {
          const url = md.get(`general.base_model.${i}.repo_url`),
            org = md.get(`general.base_model.${i}.organization`),
            name = md.get(`general.base_model.${i}.name`);
          if (typeof url === 'string') bases.push(url.replace(/^https?:\/\/[^/]+\//, ''));
          else if (typeof name === 'string') bases.push(typeof org === 'string' ? `${org}/${name}` : name);
        }
        if (bases.length) s.baseModel = bases;
      } finally {
        g.close();
      }
    } catch {
      /* unreadable GGUF: list what we know */
    }
  }
  try {
    const card = cardBaseModel(fs.readFileSync(path.join(dir, 'README.md'), 'utf8'));
    if (card.baseModel) s.baseModel = card.baseModel;
    if (card.relation) s.relation = card.relation;
  } catch {
    /* no model card */
  }
  return s;
}

function refsOf(dir: string): Map<string, string[]> {
  const byCommit = new Map<string, string[]>();
  const walk = (d: string, rel: string) => {
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(d, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) {
        walk(path.join(d, e.name), r);
        continue;
      }
      const c = fs.readFileSync(path.join(d, e.name), 'utf8').trim();
      if (isCommitHash(c)) byCommit.set(c, [...(byCommit.get(c) ?? []), r]);
    }
  };
  walk(path.join(dir, 'refs'), '');
  return byCommit;
}

function dirSize(d: string): number {
  let n = 0;
  try {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) if (e.isFile()) n += fs.statSync(path.join(d, e.name)).size;
  } catch {
    /* none */
  }
  return n;
}

export function describeRepo(hub: HubName, root: string, repo: string): CachedModel {
  const rc = new RepoCache(root, repo);
  const refs = refsOf(rc.dir);
  let commits: string[] = [];
  try {
    commits = fs.readdirSync(path.join(rc.dir, 'snapshots'));
  } catch {
    /* none yet */
  }
  const snapshots = commits.map((c) => describeSnapshot(rc.snapshot(c), c, refs.get(c) ?? []));
  return { hub, repo, dir: rc.dir, size: dirSize(path.join(rc.dir, 'blobs')), snapshots };
}

/** Every model repo in the Hugging Face and ModelScope caches (datasets and spaces are skipped). */
export function listCached(opts: { env?: Env; hubs?: HubName[]; cacheDir?: string } = {}): CachedModel[] {
  const out: CachedModel[] = [];
  for (const hub of opts.hubs ?? (['hf', 'modelscope'] as HubName[])) {
    const root = opts.cacheDir ?? cacheRoot(hub, opts.env);
    let names: string[] = [];
    try {
      names = fs.readdirSync(root);
    } catch {
      continue;
    }
    for (const n of names.sort()) {
      const repo = repoFromFolder(n);
      if (repo) out.push(describeRepo(hub, root, repo));
    }
  }
  return out;
}

/**
 * Remove a model (or, with `@revision`, one snapshot, its refs and the blobs no other snapshot uses)
 * from the cache. Returns the folders removed and the bytes freed.
 */
export function removeCached(spec: string, opts: { env?: Env; hub?: HubName; cacheDir?: string } = {}): { removed: string[]; freed: number } {
  const ref = parseModelRef(spec);
  const only = opts.hub ?? ref.hub;
  const hubs: HubName[] = only ? [only] : ['hf', 'modelscope'];
  const removed: string[] = [];
  let freed = 0;
  for (const hub of hubs) {
    const root = opts.cacheDir ?? cacheRoot(hub, opts.env);
    const rc = new RepoCache(root, ref.repo);
    if (!fs.existsSync(rc.dir)) continue;
    if (!ref.revision) {
      freed += dirSize(path.join(rc.dir, 'blobs'));
      fs.rmSync(rc.dir, { recursive: true, force: true });
      fs.rmSync(path.join(root, '.locks', repoFolderName(ref.repo)), { recursive: true, force: true });
      removed.push(rc.dir);
      continue;
    }
    const commit = rc.commitFor(ref.revision);
    if (!commit || !fs.existsSync(rc.snapshot(commit))) continue;
    const before = describeRepo(hub, root, ref.repo);
    fs.rmSync(rc.snapshot(commit), { recursive: true, force: true });
    for (const r of refsOf(rc.dir).get(commit) ?? []) fs.rmSync(rc.ref(r), { force: true });
    // keep blobs that another snapshot still links to
    const used = new Set<string>();
    for (const s of before.snapshots) if (s.commit !== commit) collectLinks(s.dir, used);
    for (const b of fs.readdirSync(path.join(rc.dir, 'blobs'))) {
      const p = path.join(rc.dir, 'blobs', b);
      if (used.has(fs.realpathSync(p)) || b.endsWith('.incomplete')) continue; // links are compared resolved (the cache may sit behind a symlink)
      freed += fs.statSync(p).size;
      fs.rmSync(p, { force: true });
    }
    removed.push(rc.snapshot(commit));
  }
  if (!removed.length) fail(`${spec} is not in the cache (looked in ${hubs.map((h) => opts.cacheDir ?? cacheRoot(h, opts.env)).join(' and ')})`);
  return { removed, freed };
}

function collectLinks(d: string, used: Set<string>): void {
  for (const e of fs.readdirSync(d, { withFileTypes: true })) {
    const p = path.join(d, e.name);
    if (e.isDirectory()) collectLinks(p, used);
    else
      try {
        used.add(fs.realpathSync(p));
      } catch {
        /* dangling */
      }
  }
}
