// The on-disk cache, in huggingface_hub's layout so that models fetched by Python tools are reused:
//   <root>/models--owner--name/blobs/<etag>          file contents, named by sha256 (LFS) or git sha1
//   <root>/models--owner--name/snapshots/<commit>/<path> -> ../../blobs/<etag>   (relative symlinks)
//   <root>/models--owner--name/refs/<revision>       the commit a branch/tag pointed to (no newline)
//   <root>/.locks/models--owner--name/<etag>.lock    held while a blob downloads
// ModelScope downloads use the same layout under their own root. Every write is a temp file (or
// temp symlink) renamed into place, so a reader never sees half a file and concurrent pulls agree.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { ggufSets } from '../formats/gguf_split.js';
import { type HubName, isCommitHash, repoFolderName } from './ids.js';

export type Env = Record<string, string | undefined>;

function home(env: Env): string {
  return env.HOME || os.homedir();
}

/** HF_HUB_CACHE, else $HF_HOME/hub, else $XDG_CACHE_HOME/huggingface/hub, as huggingface_hub does. */
export function hfCacheRoot(env: Env = process.env): string {
  if (env.HF_HUB_CACHE) return env.HF_HUB_CACHE;
  if (env.HUGGINGFACE_HUB_CACHE) return env.HUGGINGFACE_HUB_CACHE;
  const hfHome = env.HF_HOME || path.join(env.XDG_CACHE_HOME || path.join(home(env), '.cache'), 'huggingface');
  return path.join(hfHome, 'hub');
}

export function modelscopeCacheRoot(env: Env = process.env): string {
  return env.MODELSCOPE_CACHE || path.join(home(env), '.cache', 'modelscope', 'hub');
}

export function cacheRoot(hub: HubName, env: Env = process.env): string {
  return hub === 'hf' ? hfCacheRoot(env) : modelscopeCacheRoot(env);
}

export function isOffline(env: Env = process.env): boolean {
  return /^(1|true|yes|on)$/i.test(env.HF_HUB_OFFLINE ?? '');
}

/** Paths of one repo inside a cache root. */
export class RepoCache {
  readonly dir: string;
  constructor(
    readonly root: string,
    readonly repo: string,
  ) {
    this.dir = path.join(root, repoFolderName(repo));
  }
  blob(etag: string): string {
    return path.join(this.dir, 'blobs', etag);
  }
  lock(etag: string): string {
    return path.join(this.root, '.locks', repoFolderName(this.repo), `${etag}.lock`);
  }
  snapshot(commit: string): string {
    return path.join(this.dir, 'snapshots', commit);
  }
  ref(revision: string): string {
    return path.join(this.dir, 'refs', ...revision.split('/'));
  }

  readRef(revision: string): string | undefined {
    try {
      const c = fs.readFileSync(this.ref(revision), 'utf8').trim();
      return isCommitHash(c) ? c : undefined;
    } catch {
      return undefined;
    }
  }

  /** The commit a revision names: itself when it is a hash, else what refs/ recorded. */
  commitFor(revision: string): string | undefined {
    return isCommitHash(revision) ? revision : this.readRef(revision);
  }

  writeRef(revision: string, commit: string): void {
    if (revision === commit) return;
    if (this.readRef(revision) === commit) return; // leave a read-only cache alone when nothing changed
    writeFileAtomic(this.ref(revision), commit); // no newline: huggingface_hub compares the raw text
  }

  /** A blob already in the cache with the right size (a crashed writer never leaves one: it renames last). */
  hasBlob(etag: string, size?: number): boolean {
    try {
      const st = fs.statSync(this.blob(etag));
      return st.isFile() && (size === undefined || st.size === size);
    } catch {
      return false;
    }
  }

  /** Point snapshots/<commit>/<file> at blobs/<etag> with a relative symlink, replacing atomically. */
  link(commit: string, file: string, etag: string): string {
    const dst = path.join(this.snapshot(commit), ...file.split('/'));
    const blob = this.blob(etag);
    fs.mkdirSync(path.dirname(dst), { recursive: true });
    const rel = path.relative(path.dirname(dst), blob);
    try {
      if (fs.readlinkSync(dst) === rel) return dst;
    } catch {
      /* missing, or a plain file */
    }
    const tmp = `${dst}.${tmpSuffix()}`;
    try {
      fs.symlinkSync(rel, tmp);
    } catch (e) {
      // No symlinks (some Windows setups): a copy, as huggingface_hub falls back to.
      if ((e as NodeJS.ErrnoException).code !== 'EPERM') throw e;
      fs.copyFileSync(blob, tmp);
    }
    fs.renameSync(tmp, dst);
    return dst;
  }
}

export function tmpSuffix(): string {
  return `${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
}

export function writeFileAtomic(file: string, data: string | Uint8Array): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.${tmpSuffix()}`;
  try {
    fs.writeFileSync(tmp, data);
    fs.renameSync(tmp, file);
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    throw e;
  }
}

function exists(p: string): boolean {
  return fs.existsSync(p); // follows symlinks: a link to a missing blob counts as missing
}

/** GGUF files in a snapshot (recursively), skipping multimodal projectors. */
export function ggufFiles(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string, rel: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) walk(path.join(d, e.name), r);
      else if (/\.gguf$/i.test(e.name) && !/mmproj/i.test(e.name) && exists(path.join(d, e.name))) out.push(r);
    }
  };
  try {
    walk(dir, '');
  } catch {
    /* no snapshot */
  }
  return out.sort();
}

/** The first file of the GGUF model `rel` belongs to (itself, or shard 1 of its split set) when every file of it is there. */
function completeGguf(snapshot: string, rel: string): string | undefined {
  const files = ggufSets([rel])[0]!.files.map((f) => path.join(snapshot, ...f.split('/')));
  return files.every(exists) ? files[0] : undefined;
}

/**
 * The loadable path inside a snapshot: the folder when it holds config.json and every safetensors
 * shard, else its only GGUF model (or `file` when given): the file, or the first shard of a split
 * set with every shard present; or a LoRA adapter's folder (adapter_config.json +
 * adapter_model.safetensors); undefined when the snapshot is incomplete.
 */
export function loadablePath(snapshot: string, file?: string): string | undefined {
  if (file) {
    if (exists(path.join(snapshot, ...file.split('/')))) return completeGguf(snapshot, file);
    const same = ggufFiles(snapshot).filter((g) => g.split('/').pop() === file); // `--file` may give a base name
    return same.length === 1 ? completeGguf(snapshot, same[0]!) : undefined;
  }
  if (exists(path.join(snapshot, 'config.json'))) {
    const idx = path.join(snapshot, 'model.safetensors.index.json');
    if (exists(idx)) {
      try {
        const map = (JSON.parse(fs.readFileSync(idx, 'utf8')) as { weight_map?: Record<string, string> }).weight_map ?? {};
        const shards = [...new Set(Object.values(map))];
        if (shards.length > 0 && shards.every((s) => typeof s === 'string' && !s.includes('..') && exists(path.join(snapshot, s)))) return snapshot;
      } catch {
        /* unreadable index: incomplete */
      }
    } else if (exists(path.join(snapshot, 'model.safetensors'))) return snapshot;
  }
  if (exists(path.join(snapshot, 'adapter_config.json')) && exists(path.join(snapshot, 'adapter_model.safetensors'))) return snapshot; // a LoRA adapter
  const g = ggufSets(ggufFiles(snapshot));
  return g.length === 1 && g[0]!.missing.length === 0 ? path.join(snapshot, ...g[0]!.files[0]!.split('/')) : undefined;
}

/** A complete cached copy of repo@revision (no network), or undefined. */
export function findCached(root: string, repo: string, revision: string, file?: string): { commit: string; path: string } | undefined {
  const rc = new RepoCache(root, repo);
  const commit = rc.commitFor(revision);
  if (!commit) return undefined;
  const p = loadablePath(rc.snapshot(commit), file);
  return p ? { commit, path: p } : undefined;
}
