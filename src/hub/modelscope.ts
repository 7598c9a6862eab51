// ModelScope: file list from /api/v1/models/{id}/repo/files?Revision={rev}&Recursive=true, shaped
// {Code: 200, Data: {Files: [{Name, Path, Type, Size, Sha256, Revision}]}}; files from
// /api/v1/models/{id}/repo?Revision={rev}&FilePath={path} (possibly redirected to object storage).
// Files are verified by the list's Sha256. The list names no commit for the whole repository, so
// a branch's snapshot is named by a hash of the list itself (paths, sizes, hashes): the same files
// give the same snapshot, any change gives a new one.
import { createHash } from 'node:crypto';
import { fail, printable, QwenError } from '../errors.js';
import type { Env } from './cache.js';
import { bodyMessage, type FilePlan, type HubClient, type Listing } from './client.js';
import { getJson, HttpStatusError, type NetOptions } from './http.js';
import { isCommitHash, safeRepoPath } from './ids.js';
import type { RemoteFile } from './select.js';

export const MODELSCOPE_DEFAULT = 'https://www.modelscope.cn';

/** MODELSCOPE_DOMAIN is a host name (https assumed) or, for mirrors and tests, a full URL. */
export function modelscopeBase(env: Env): string {
  const d = env.MODELSCOPE_DOMAIN?.trim();
  if (!d) return MODELSCOPE_DEFAULT;
  return (/^https?:\/\//i.test(d) ? d : `https://${d}`).replace(/\/+$/, '');
}

interface MsFile {
  Name?: unknown;
  Path?: unknown;
  Type?: unknown;
  Size?: unknown;
  Sha256?: unknown;
}

export class ModelScopeClient implements HubClient {
  readonly hub = 'modelscope' as const;
  readonly authHeaders: Record<string, string>;
  constructor(
    readonly base: string,
    private readonly token: string | undefined,
    private readonly net: NetOptions,
  ) {
    this.authHeaders = token ? { authorization: `Bearer ${token}` } : {};
  }

  async list(repo: string, revision: string): Promise<Listing> {
    const url = `${this.base}/api/v1/models/${repo}/repo/files?Revision=${encodeURIComponent(revision)}&Recursive=true`;
    let json: unknown;
    try {
      ({ json } = await getJson(url, { authHeaders: this.authHeaders }, this.net, `listing ${repo}`));
    } catch (e) {
      throw e instanceof HttpStatusError ? this.explain(e, { repo, revision }) : e;
    }
    const d = json as { Code?: unknown; Success?: unknown; Message?: unknown; Data?: { Files?: unknown } };
    if ((d.Code !== undefined && d.Code !== 200) || d.Success === false) {
      const msg = printable(typeof d.Message === 'string' ? d.Message : JSON.stringify(d), 300);
      if (/not (exist|found)|不存在/i.test(msg)) fail(`model '${repo}' (revision ${revision}) was not found on ModelScope (${this.base}): ${msg}`);
      fail(`ModelScope refused the file list of '${repo}'@${revision}: ${msg}`);
    }
    if (!Array.isArray(d.Data?.Files)) fail(`${repo}@${revision}: ModelScope's answer has no Data.Files list`);
    const files: RemoteFile[] = [];
    for (const f of d.Data.Files as MsFile[]) {
      if (f.Type === 'tree') continue;
      const p = safeRepoPath(f.Path ?? f.Name, "the hub's file list");
      if (typeof f.Sha256 === 'string' && f.Sha256 !== '' && !/^[0-9a-fA-F]{64}$/.test(f.Sha256)) {
        fail(`${repo}: ModelScope lists ${JSON.stringify(f.Sha256)} as the Sha256 of ${p}, not a sha256`);
      }
      files.push({
        path: p,
        size: typeof f.Size === 'number' && Number.isSafeInteger(f.Size) && f.Size >= 0 ? f.Size : undefined,
        oid: typeof f.Sha256 === 'string' && f.Sha256 ? f.Sha256.toLowerCase() : undefined,
      });
    }
    const manifest = files
      .map((f) => `${f.path}\0${f.size}\0${f.oid ?? ''}`)
      .sort()
      .join('\n');
    const commit = isCommitHash(revision) ? revision : createHash('sha1').update(manifest).digest('hex');
    return { revision, commit, files };
  }

  async plan(repo: string, listing: Listing, f: RemoteFile): Promise<FilePlan> {
    if (f.size === undefined) fail(`${repo}: ModelScope lists no size for ${f.path}`);
    const url = `${this.base}/api/v1/models/${repo}/repo?Revision=${encodeURIComponent(listing.revision)}&FilePath=${encodeURIComponent(f.path)}`;
    return { url, size: f.size, blobName: f.oid, hash: f.oid ? { kind: 'sha256', hex: f.oid } : undefined };
  }

  explain(e: HttpStatusError, ctx: { repo: string; revision: string; file?: string }): Error {
    const detail = bodyMessage(e.body);
    const st = `(HTTP ${e.status}${detail ? `: ${detail}` : ''})`;
    if (e.status === 401 || e.status === 403) {
      return new QwenError(`'${ctx.repo}' on ModelScope is private or needs approval${this.token ? ': MODELSCOPE_API_TOKEN has no access' : ': set MODELSCOPE_API_TOKEN'} ${st}`);
    }
    if (e.status === 404) {
      return new QwenError(ctx.file ? `'${ctx.repo}'@${ctx.revision} on ModelScope has no file '${ctx.file}' ${st}` : `model '${ctx.repo}' was not found on ModelScope (${this.base}) ${st}`);
    }
    return new QwenError(`ModelScope answered ${printable(e.url)} with HTTP ${e.status}${detail ? `: ${detail}` : ''}`);
  }
}
