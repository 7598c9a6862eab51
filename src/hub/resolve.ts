// resolveModel: what commands that take `--model` call. A local path is returned as is; a hub id
// is looked up in the caches (no network when a complete copy is there) and pulled on first use.
import * as fs from 'node:fs';
import { cacheRoot, findCached } from './cache.js';
import { DEFAULT_REVISION, looksLikeModelRef, parseModelRef, type HubName } from './ids.js';
import { streamProgress } from './progress.js';
import { pullModel, type PullOptions } from './pull.js';

/**
 * Turn `--model`'s value into a local path for loadModel: an existing file or folder as is, else a
 * hub id (`owner/name[@revision]`, `hf:` / `ms:` prefix, or `owner/name/FILE.gguf`) from the cache,
 * pulling it (with progress on stderr) when the cache has no complete copy. Anything else is
 * returned unchanged, so the loader reports the missing path.
 */
export async function resolveModel(idOrPath: string, opts: PullOptions = {}): Promise<string> {
  if (fs.existsSync(idOrPath) || !looksLikeModelRef(idOrPath)) return idOrPath;
  const ref = parseModelRef(idOrPath);
  const env = opts.env ?? process.env;
  const explicit = opts.hub ?? ref.hub;
  const hubs: HubName[] = explicit ? [explicit] : ['hf', 'modelscope'];
  for (const hub of hubs) {
    const found = findCached(opts.cacheDir ?? cacheRoot(hub, env), ref.repo, opts.revision ?? ref.revision ?? DEFAULT_REVISION[hub], opts.file ?? ref.file);
    if (found) return found.path;
  }
  const r = await pullModel(ref, { ...opts, progress: opts.progress ?? streamProgress(process.stderr) });
  return r.path;
}
