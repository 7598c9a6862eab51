// Pull a model into the cache: list the repo at a revision, choose the files a model needs, reuse
// every blob already cached (by us or by Python tools), download the rest under a per-blob lock,
// link them into snapshots/<commit>/, and record refs/<revision> last.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createHash } from 'node:crypto';
import { fail } from '../errors.js';
import { cacheRoot, findCached, isOffline, loadablePath, RepoCache, type Env } from './cache.js';
import type { HubClient, Listing } from './client.js';
import { DEFAULT_IO, downloadBlob, fmtBytes, freeBytes, type BlobIo } from './download.js';
import { HfClient, HF_DEFAULT_ENDPOINT, hfToken } from './hf.js';
import { DEFAULT_NET, HttpStatusError, type NetOptions } from './http.js';
import { checkRevision, DEFAULT_REVISION, parseModelRef, safeRepoPath, type HubName, type ModelRef } from './ids.js';
import { withLock } from './lock.js';
import { ModelScopeClient, modelscopeBase } from './modelscope.js';
import { SILENT, type PullProgress } from './progress.js';
import { selectFiles, shardsOf, type RemoteFile } from './select.js';

export interface PullOptions {
  /** overrides a `hf:` / `ms:` prefix in the id; default Hugging Face */
  hub?: HubName;
  /** overrides `@revision` in the id */
  revision?: string;
  /** one file (a GGUF) instead of the safetensors model */
  file?: string;
  /** environment to read HF_HOME, HF_ENDPOINT, HF_TOKEN, HF_HUB_OFFLINE, MODELSCOPE_* from */
  env?: Env;
  cacheDir?: string;
  endpoint?: string;
  token?: string;
  /** cache only, no network (default: HF_HUB_OFFLINE) */
  offline?: boolean;
  progress?: PullProgress;
  net?: Partial<NetOptions>;
  io?: BlobIo;
  lockStaleMs?: number;
  freeBytes?: (dir: string) => Promise<number | undefined>;
}

export interface PullResult {
  hub: HubName;
  repo: string;
  revision: string;
  commit: string;
  /** snapshots/<commit> */
  snapshot: string;
  /** what loadModel takes: the snapshot folder, or the GGUF file in it */
  path: string;
  files: string[];
  /** bytes fetched over the network by this call */
  downloaded: number;
}

export function hubClient(hub: HubName, opts: PullOptions, net: NetOptions): HubClient {
  const env = opts.env ?? process.env;
  if (hub === 'hf') return new HfClient(opts.endpoint ?? env.HF_ENDPOINT ?? HF_DEFAULT_ENDPOINT, opts.token ?? hfToken(env), net);
  return new ModelScopeClient((opts.endpoint ?? modelscopeBase(env)).replace(/\/+$/, ''), opts.token ?? env.MODELSCOPE_API_TOKEN, net);
}

function hubTitle(hub: HubName): string {
  return hub === 'hf' ? 'Hugging Face' : 'ModelScope';
}

export async function pullModel(spec: string | ModelRef, opts: PullOptions = {}): Promise<PullResult> {
  const ref = typeof spec === 'string' ? parseModelRef(spec) : { ...spec, repo: parseModelRef(spec.repo).repo };
  const env = opts.env ?? process.env;
  const hub = opts.hub ?? ref.hub ?? 'hf';
  const revision = checkRevision(opts.revision ?? ref.revision ?? DEFAULT_REVISION[hub]);
  const file = opts.file ?? ref.file;
  if (file !== undefined) safeRepoPath(file, '--file');
  const root = opts.cacheDir ?? cacheRoot(hub, env);
  const rc = new RepoCache(root, ref.repo);
  const label = `${hub === 'hf' ? '' : 'ms:'}${ref.repo}@${revision}`;

  if (opts.offline ?? isOffline(env)) {
    const c = findCached(root, ref.repo, revision, file);
    if (!c) fail(`offline (HF_HUB_OFFLINE is set) and ${label}${file ? ` (${file})` : ''} is not complete in the cache at ${root}; unset HF_HUB_OFFLINE to download it`);
    return { hub, repo: ref.repo, revision, commit: c.commit, snapshot: rc.snapshot(c.commit), path: c.path, files: [], downloaded: 0 };
  }

  const net = { ...DEFAULT_NET, ...opts.net };
  const client = hubClient(hub, opts, net);
  const progress = opts.progress ?? SILENT;
  const listing = await client.list(ref.repo, revision);
  const sel = selectFiles(listing.files, ref.repo, file);
  const snapshot = rc.snapshot(listing.commit);
  const ctx = { client, rc, listing, progress, net, io: opts.io ?? DEFAULT_IO, staleMs: opts.lockStaleMs, repo: ref.repo, bytes: { downloaded: 0 } };

  let files = sel.files;
  if (sel.index) {
    // the index says which shards to take: fetch it first
    await ensureFile({ ...ctx, progress: SILENT }, sel.index);
    const shards = shardsOf(fs.readFileSync(path.join(snapshot, sel.index.path), 'utf8'), listing.files, ref.repo);
    files = [sel.index, ...files, ...shards];
  }

  const plan = files.map((f) => ({ path: f.path, size: f.size ?? 0, cached: !!f.oid && rc.hasBlob(f.oid, f.size) }));
  const need = files.filter((_f, i) => !plan[i]!.cached).reduce((a, f) => a + (f.size ?? 0) - partialSize(rc, f), 0);
  const free = await (opts.freeBytes ?? freeBytes)(rc.dir);
  if (free !== undefined && need > free) {
    fail(`${label} needs ${fmtBytes(need)} more in ${root}, but only ${fmtBytes(free)} is free on that disk; free some space or set ${hub === 'hf' ? 'HF_HOME' : 'MODELSCOPE_CACHE'} to a bigger disk`);
  }

  progress.start({ label: `${hubTitle(hub)} ${label}`, commit: listing.commit, files: plan });
  try {
    for (const f of files) await ensureFile(ctx, f);
  } finally {
    progress.end();
  }
  rc.writeRef(revision, listing.commit);
  const p = loadablePath(snapshot, sel.gguf ?? (file ? sel.files[0]!.path : undefined));
  if (!p) fail(`${label}: the pulled snapshot ${snapshot} is not a complete model`);
  return { hub, repo: ref.repo, revision, commit: listing.commit, snapshot, path: p, files: files.map((f) => f.path), downloaded: ctx.bytes.downloaded };
}

interface Ctx {
  client: HubClient;
  rc: RepoCache;
  listing: Listing;
  progress: PullProgress;
  net: NetOptions;
  io: BlobIo;
  staleMs?: number;
  repo: string;
  /** shared by the copies of the context made for a silent fetch */
  bytes: { downloaded: number };
}

/** Name of the placeholder blob for a file the hub gives no hash for (renamed to its sha256 once fetched). */
function unhashedName(f: RemoteFile): string {
  return `unhashed-${createHash('sha1').update(`${f.path}\0${f.size}`).digest('hex')}`;
}

function partialSize(rc: RepoCache, f: RemoteFile): number {
  try {
    return fs.statSync(`${rc.blob(f.oid ?? unhashedName(f))}.incomplete`).size;
  } catch {
    return 0;
  }
}

/** Make snapshots/<commit>/<f.path> point at a verified blob, downloading it if no copy is cached. */
async function ensureFile(c: Ctx, f: RemoteFile): Promise<void> {
  const { rc, listing } = c;
  if (f.oid && rc.hasBlob(f.oid, f.size)) {
    rc.link(listing.commit, f.path, f.oid);
    return c.progress.fileDone(f.path, 'cached');
  }
  try {
    const plan = await c.client.plan(c.repo, listing, f);
    const key = plan.blobName ?? unhashedName(f);
    let etag = key;
    let fetched = false;
    await withLock(
      rc.lock(key),
      async () => {
        if (plan.blobName && rc.hasBlob(plan.blobName, plan.size)) return; // another pull finished it meanwhile
        let start = -1;
        const final = await downloadBlob(
          {
            label: `${c.repo}/${f.path}`,
            url: plan.url,
            authHeaders: c.client.authHeaders,
            blob: rc.blob(key),
            size: plan.size,
            hash: plan.hash,
            check: plan.check,
            onProgress: (have) => {
              if (start < 0) start = have;
              c.progress.file(f.path, have);
            },
          },
          c.net,
          c.io,
        );
        etag = path.basename(final);
        fetched = true;
        c.bytes.downloaded += plan.size - Math.max(0, start);
      },
      { staleMs: c.staleMs, onWait: () => c.progress.note(`  waiting for another pull of ${f.path} to finish...`) },
    );
    rc.link(listing.commit, f.path, etag);
    c.progress.fileDone(f.path, fetched ? 'downloaded' : 'cached');
  } catch (e) {
    throw e instanceof HttpStatusError ? c.client.explain(e, { repo: c.repo, revision: listing.revision, file: f.path }) : e;
  }
}
