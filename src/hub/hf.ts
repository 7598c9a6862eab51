// Hugging Face: file list from /api/models/{id}/revision/{rev}?blobs=true (falling back to the
// recursive tree API when siblings come without sizes and hashes), files from
// /{id}/resolve/{commit}/{path}, which serves small files itself (ETag = git sha1) and redirects LFS
// files to a CDN, naming their sha256 in X-Linked-Etag and their size in X-Linked-Size.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fail, printable, QwenError } from '../errors.js';
import type { Env } from './cache.js';
import { bodyMessage, encodePath, type FilePlan, type HubClient, type Listing } from './client.js';
import { getJson, HttpStatusError, open, withRetry, type NetOptions, type Opened } from './http.js';
import { checkCommit, hashKind, normalizeEtag, safeRepoPath } from './ids.js';
import type { RemoteFile } from './select.js';

export const HF_DEFAULT_ENDPOINT = 'https://huggingface.co';

/** Even at 50 entries a page, 10,000 pages of the tree is half a million files, far past any model. */
const MAX_TREE_PAGES = 10_000;

/** HF_TOKEN, the legacy HUGGING_FACE_HUB_TOKEN, or the file `huggingface-cli login` writes. */
export function hfToken(env: Env): string | undefined {
  const t = env.HF_TOKEN || env.HUGGING_FACE_HUB_TOKEN;
  if (t) return t.trim();
  const home = env.HF_HOME || path.join(env.XDG_CACHE_HOME || path.join(env.HOME || os.homedir(), '.cache'), 'huggingface');
  try {
    return fs.readFileSync(env.HF_TOKEN_PATH || path.join(home, 'token'), 'utf8').trim() || undefined;
  } catch {
    return undefined;
  }
}

interface Sibling {
  rfilename?: unknown;
  size?: unknown;
  blobId?: unknown;
  lfs?: { sha256?: unknown; size?: unknown };
}
interface TreeEntry {
  type?: unknown;
  path?: unknown;
  size?: unknown;
  oid?: unknown;
  lfs?: { oid?: unknown; size?: unknown };
}

const num = (v: unknown) => (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 ? v : undefined);
const str = (v: unknown) => (typeof v === 'string' && v ? v.toLowerCase() : undefined);

export class HfClient implements HubClient {
  readonly hub = 'hf' as const;
  readonly authHeaders: Record<string, string>;
  constructor(
    readonly base: string,
    readonly token: string | undefined,
    private readonly net: NetOptions,
  ) {
    this.base = base.replace(/\/+$/, '');
    this.authHeaders = token ? { authorization: `Bearer ${token}` } : {};
  }

  private async json(url: string, ctx: { repo: string; revision: string }): Promise<{ json: unknown; headers: Headers }> {
    try {
      return await getJson(url, { authHeaders: this.authHeaders }, this.net, `listing ${ctx.repo}`);
    } catch (e) {
      throw e instanceof HttpStatusError ? this.explain(e, ctx) : e;
    }
  }

  async list(repo: string, revision: string): Promise<Listing> {
    const ctx = { repo, revision };
    const { json } = await this.json(`${this.base}/api/models/${repo}/revision/${encodeURIComponent(revision)}?blobs=true`, ctx);
    const info = json as { sha?: unknown; siblings?: unknown };
    const commit = checkCommit(info.sha, `${repo}@${revision}`);
    if (!Array.isArray(info.siblings)) fail(`${repo}@${revision}: the hub's answer has no file list (siblings)`);
    let files: RemoteFile[] = (info.siblings as Sibling[]).map((s) => ({
      path: safeRepoPath(s.rfilename, "the hub's file list"),
      size: num(s.lfs?.size) ?? num(s.size),
      oid: hashOrUndefined(str(s.lfs?.sha256) ?? str(s.blobId)),
    }));
    if (files.some((f) => f.size === undefined || f.oid === undefined)) files = await this.tree(repo, revision, commit);
    return { revision, commit, files };
  }

  /** The recursive tree listing, following its `Link: <...>; rel="next"` pages. A hostile or broken hub
   * can page forever: a page asked before, or a file listed before (ever-new cursors over the same
   * entries), is a loop, and past MAX_TREE_PAGES the listing fails rather than end silently short. */
  private async tree(repo: string, revision: string, commit: string): Promise<RemoteFile[]> {
    const out: RemoteFile[] = [];
    const listed = new Set<string>();
    const visited = new Set<string>();
    const origin = new URL(this.base).origin;
    let url: string | undefined = new URL(`${this.base}/api/models/${repo}/tree/${commit}?recursive=true`).href;
    for (let page = 1; url; page++) {
      if (page > MAX_TREE_PAGES) fail(`${repo}@${revision}: the hub's file list goes on past ${MAX_TREE_PAGES} pages (next: ${printable(url)}); giving up`);
      visited.add(url);
      const { json, headers } = await this.json(url, { repo, revision });
      if (!Array.isArray(json)) fail(`${repo}@${revision}: the tree API did not answer with a list`);
      for (const e of json as TreeEntry[]) {
        if (e.type !== 'file') continue;
        const p = safeRepoPath(e.path, "the hub's file list");
        if (listed.has(p)) fail(`${repo}@${revision}: the hub's file list lists ${p} again on page ${page} (${printable(url)}): a pagination loop`);
        listed.add(p);
        out.push({ path: p, size: num(e.lfs?.size) ?? num(e.size), oid: hashOrUndefined(str(e.lfs?.oid) ?? str(e.oid)) });
      }
      const next = /<([^>]+)>\s*;\s*rel="?next"?/.exec(headers.get('link') ?? '');
      let nextUrl: URL | undefined;
      try {
        nextUrl = next ? new URL(next[1]!, url) : undefined;
      } catch {
        fail(`${repo}@${revision}: the hub's file list names ${printable(next![1]!)} as its next page, which is not a URL`);
      }
      url = nextUrl?.href;
      // the token goes with every page: never follow a listing onto another host
      if (nextUrl && nextUrl.origin !== origin) fail(`${repo}@${revision}: the hub's file list continues on another host (${printable(nextUrl.origin)}); refusing to send the token there`);
      if (url && visited.has(url)) fail(`${repo}@${revision}: the hub's file list is a pagination loop: page ${page} links back to ${printable(url)}`);
    }
    return out;
  }

  async plan(repo: string, listing: Listing, f: RemoteFile): Promise<FilePlan> {
    const url = `${this.base}/${repo}/resolve/${listing.commit}/${encodePath(f.path)}`;
    let { oid, size } = f;
    if (oid === undefined || size === undefined) {
      // No hash in the listing: ask the hub, as huggingface_hub does, without following the CDN redirect.
      const o = await withRetry(`reading ${f.path}`, this.net, () => open(url, { method: 'HEAD', authHeaders: this.authHeaders, stopAtCrossOrigin: true }, this.net)).catch((e) => {
        throw e instanceof HttpStatusError ? this.explain(e, { repo, revision: listing.revision, file: f.path }) : e;
      });
      const h = o.hops.at(-1)!.headers;
      oid ??= normalizeEtag(h.get('x-linked-etag') ?? h.get('etag'))?.toLowerCase();
      size ??= num(Number(h.get('x-linked-size') ?? h.get('content-length') ?? NaN));
    }
    const kind = oid ? hashKind(oid) : undefined;
    if (!oid || !kind) fail(`${repo}: the hub gives no sha256 or git hash for ${f.path} (got ${JSON.stringify(oid)}), so it cannot be verified`);
    if (size === undefined) fail(`${repo}: the hub gives no size for ${f.path}`);
    const origin = new URL(this.base).origin;
    const check = (o: Opened) => {
      for (const hop of o.hops) {
        if (new URL(hop.url).origin !== origin) continue; // a CDN's ETag is its own (often an MD5)
        const commit = hop.headers.get('x-repo-commit');
        if (commit && commit !== listing.commit) fail(`${repo}: ${f.path} came from commit ${printable(commit, 80)}, not ${listing.commit} as listed`);
        const etag = normalizeEtag(hop.headers.get('x-linked-etag') ?? hop.headers.get('etag'))?.toLowerCase();
        if (etag && hashKind(etag) && etag !== oid) {
          fail(`${repo}: the hub's ETag for ${f.path} is ${etag}, but its file list says ${oid}; the repository is inconsistent, try again later`);
        }
      }
    };
    return { url, size, blobName: oid, hash: { kind, hex: oid }, check };
  }

  explain(e: HttpStatusError, ctx: { repo: string; revision: string; file?: string }): Error {
    const code = e.headers.get('x-error-code') ?? '';
    const header = e.headers.get('x-error-message');
    const detail = header ? printable(header, 500) : bodyMessage(e.body);
    const page = `${this.base}/${ctx.repo}`;
    const st = `(HTTP ${e.status}${detail ? `: ${detail}` : ''})`;
    if (code === 'GatedRepo' || (e.status === 403 && code !== 'RepoNotFound')) {
      return new QwenError(
        this.token
          ? `the token in HF_TOKEN has no access to the gated model '${ctx.repo}': accept its conditions at ${page} with the token's account ${st}`
          : `'${ctx.repo}' is a gated model: accept its conditions at ${page}, then set HF_TOKEN to an access token of that account ${st}`,
      );
    }
    if (code === 'RevisionNotFound') return new QwenError(`'${ctx.repo}' has no revision '${ctx.revision}' on Hugging Face ${st}`);
    if (code === 'EntryNotFound' || (e.status === 404 && ctx.file && code !== 'RepoNotFound')) {
      return new QwenError(`'${ctx.repo}'@${ctx.revision} has no file '${ctx.file}' ${st}`);
    }
    if (e.status === 401 && this.token && code !== 'RepoNotFound') return new QwenError(`Hugging Face refused the token in HF_TOKEN for '${ctx.repo}': it is invalid or expired ${st}`);
    if (e.status === 401 || e.status === 404) {
      return new QwenError(`model '${ctx.repo}' was not found on Hugging Face (${this.base})${this.token ? '' : '; if it is private, set HF_TOKEN'} ${st}`);
    }
    return new QwenError(`Hugging Face answered ${printable(e.url)} with HTTP ${e.status}${detail ? `: ${detail}` : ''}`);
  }
}

/** A blob id is only used (as a file name in the cache) when it is a sha256 or git sha1 in hex. */
function hashOrUndefined(oid: string | undefined): string | undefined {
  const o = oid?.toLowerCase();
  return o && hashKind(o) ? o : undefined;
}
