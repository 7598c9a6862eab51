// Hub files in the browser: `${base}/<owner>/<name>/resolve/<revision>/<file>` (Hugging Face's
// layout; the base is configurable so that a test or a mirror can serve them), downloaded once
// into the Cache API or the origin private file system (OPFS) with progress, then read from
// there as a Blob (by slice(): never the whole file in JS memory).
import { fail } from '../errors.js';
import { openBlob, type FetchFn, type RangeSource } from './remote.js';

export const HF_BASE = 'https://huggingface.co';
const REPO_ID = /^[A-Za-z0-9][\w.-]*\/[\w.-]+$/;

/** The URL of a hub file; the id, revision and file name are checked (no path tricks). */
export function hubUrl(id: string, file: string, revision = 'main', base = HF_BASE): string {
  if (!REPO_ID.test(id) || id.includes('..')) fail(`hub id ${JSON.stringify(id)} is not of the form owner/name`);
  if (!file || file.split('/').some((p) => p === '' || p === '.' || p === '..')) fail(`hub file ${JSON.stringify(file)} is not a file path in the repository`);
  if (!revision || revision.includes('..')) fail(`revision ${JSON.stringify(revision)} is not a branch, tag or commit`);
  return `${base.replace(/\/+$/, '')}/${id}/resolve/${encodeURIComponent(revision)}/${file.split('/').map(encodeURIComponent).join('/')}`;
}

/** Where downloaded files are kept: get() a cached file, put() a download (its body with its size). */
export interface FileStore {
  get(url: string): Promise<Blob | null>;
  put(url: string, body: ReadableStream<Uint8Array>, size: number): Promise<Blob>;
}

/** The Cache API (`caches`), one cache named `qwen-ts`. */
export function cacheApiStore(storage: CacheStorage = caches, name = 'qwen-ts'): FileStore {
  return {
    async get(url) {
      const r = await (await storage.open(name)).match(url);
      return r ? r.blob() : null;
    },
    async put(url, body, size) {
      const c = await storage.open(name);
      await c.put(url, new Response(body, { headers: { 'Content-Length': String(size), 'Content-Type': 'application/octet-stream' } }));
      const r = await c.match(url);
      if (!r) fail(`${url}: the Cache API did not keep the file (storage full or blocked?)`);
      return r.blob();
    },
  };
}

/** The origin private file system: one file per URL, named by a hash of it, in a `qwen-ts` folder. */
export function opfsStore(root: () => Promise<FileSystemDirectoryHandle> = () => navigator.storage.getDirectory()): FileStore {
  const fileName = async (url: string) => {
    const h = new Uint8Array(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(url)));
    return `${Array.from(h.subarray(0, 16), (b) => b.toString(16).padStart(2, '0')).join('')}-${url.split('/').pop()}`;
  };
  const dir = async () => (await root()).getDirectoryHandle('qwen-ts', { create: true });
  return {
    async get(url) {
      try {
        return await (await (await dir()).getFileHandle(await fileName(url))).getFile();
      } catch {
        return null;
      }
    },
    async put(url, body) {
      const d = await dir(),
        name = await fileName(url);
      const partial = await d.getFileHandle(`${name}.partial`, { create: true });
      await body.pipeTo(await partial.createWritable());
      // the finished file takes its name only when complete: an interrupted download is not a cached file
      await (partial as unknown as { move(to: string): Promise<void> }).move(name);
      return (await d.getFileHandle(name)).getFile();
    },
  };
}

/**
 * A hub file through `store`: the cached copy, or downloaded into it (progress: bytes done and
 * total) after `check` has seen the remote file (e.g. its header: a model too large is refused
 * before it is downloaded).
 */
export async function cachedFile(
  url: string,
  store: FileStore,
  open: (url: string) => Promise<RangeSource>,
  check: (remote: RangeSource) => Promise<void>,
  onProgress: (done: number, total: number) => void,
  fetchFn: FetchFn = fetch,
  signal?: AbortSignal,
): Promise<RangeSource> {
  const hit = await store.get(url);
  if (hit) {
    onProgress(hit.size, hit.size);
    return openBlob(hit, url);
  }
  const remote = await open(url);
  await check(remote);
  const res = await fetchFn(url, { signal });
  if (!res.ok || !res.body) fail(`${url}: HTTP ${res.status} ${res.statusText}`);
  let done = 0;
  const counted = res.body.pipeThrough(
    new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, ctl) {
        done += chunk.length;
        onProgress(done, remote.size);
        ctl.enqueue(chunk);
      },
      flush() {
        if (done !== remote.size) throw new Error(`${url}: the download ended after ${done} of ${remote.size} bytes`);
      },
    }),
  );
  const blob = await store.put(url, counted, remote.size);
  if (blob.size !== remote.size) fail(`${url}: the cached copy has ${blob.size} bytes, the file ${remote.size}`);
  return openBlob(blob, url);
}
