// Model ids (`[hf:|ms:]owner/name[/FILE.gguf][@revision]`) and the checks that keep every name a
// hub sends us (file paths, commits, etags) from addressing anything outside the cache.
import { fail } from '../errors.js';

export type HubName = 'hf' | 'modelscope';

export interface ModelRef {
  /** set when the id carried a `hf:` / `ms:` / `modelscope:` prefix */
  hub?: HubName;
  /** `owner/name` */
  repo: string;
  revision?: string;
  /** one file inside the repo (a GGUF), when the id names one */
  file?: string;
}

export const DEFAULT_REVISION: Record<HubName, string> = { hf: 'main', modelscope: 'master' };

// Both hubs allow letters, digits, '-', '_', '.' in each part; '--' and '..' are refused by HF
// (the cache folder name joins owner and name with '--', so '--' inside a part would be ambiguous).
const PART = /^[A-Za-z0-9][A-Za-z0-9._-]{0,95}$/;

export function parseHub(s: string): HubName {
  const v = s.toLowerCase();
  if (v === 'hf' || v === 'huggingface' || v === 'hugging-face') return 'hf';
  if (v === 'ms' || v === 'modelscope') return 'modelscope';
  fail(`unknown hub '${s}': use hf or modelscope`);
}

function validRepo(owner: string, name: string): boolean {
  return PART.test(owner) && PART.test(name) && !/--|\.\./.test(owner + '/' + name) && !owner.endsWith('.') && !name.endsWith('.');
}

/** Parse a model id; throws a QwenError that says what an id looks like. */
export function parseModelRef(spec: string): ModelRef {
  let s = spec.trim();
  let hub: HubName | undefined;
  const pre = /^(hf|huggingface|ms|modelscope):(?!\/\/)/i.exec(s);
  if (pre) {
    hub = parseHub(pre[1]!);
    s = s.slice(pre[0].length);
  }
  let revision: string | undefined;
  const at = s.indexOf('@');
  if (at >= 0) {
    revision = s.slice(at + 1);
    s = s.slice(0, at);
    checkRevision(revision);
  }
  const parts = s.split('/');
  const [owner, name] = parts;
  if (parts.length < 2 || owner === undefined || name === undefined || !validRepo(owner, name)) {
    fail(`'${spec}' is not a model id: expected owner/name[@revision], e.g. Qwen/Qwen2.5-0.5B-Instruct`);
  }
  const file = parts.length > 2 ? safeRepoPath(parts.slice(2).join('/'), `the id '${spec}'`) : undefined;
  return { hub, repo: `${owner}/${name}`, revision, file };
}

/** True when `s` has the shape of a hub id (whether or not such a model exists). */
export function looksLikeModelRef(s: string): boolean {
  if (/^(\.{1,2}[\\/]|[\\/]|~|[A-Za-z]:[\\/])/.test(s)) return false; // explicit paths
  try {
    const r = parseModelRef(s);
    return !r.file || /\.gguf$/i.test(r.file);
  } catch {
    return false;
  }
}

/** A revision goes into URLs (encoded) and into `refs/<revision>` in the cache. */
export function checkRevision(rev: string): string {
  if (!rev || rev.length > 200 || /[\0\\]/.test(rev) || rev.startsWith('/') || rev.split('/').some((p) => p === '' || p === '.' || p === '..')) {
    fail(`'${rev}' is not a usable revision (branch, tag or commit)`);
  }
  return rev;
}

/**
 * A path from a hub's file list, checked before it becomes part of a local path: relative, '/'
 * separated, no '.', '..' or empty segments, no NUL or backslash (a Windows separator), not absolute.
 */
export function safeRepoPath(p: unknown, what: string): string {
  if (
    typeof p !== 'string' ||
    p.length === 0 ||
    p.length > 1024 ||
    /[\0\\]/.test(p) ||
    p.startsWith('/') ||
    /^[A-Za-z]:/.test(p) ||
    p.split('/').some((seg) => seg === '' || seg === '.' || seg === '..')
  ) {
    fail(`${what} has the path ${JSON.stringify(p)}, which would leave the model's cache folder; refusing to download it`);
  }
  return p;
}

const HEX40 = /^[0-9a-f]{40}$/;
const HEX64 = /^[0-9a-f]{64}$/;

export function isCommitHash(s: string): boolean {
  return HEX40.test(s);
}

/** A commit id from a server names a snapshot folder: only a 40-hex id is accepted. */
export function checkCommit(c: unknown, what: string): string {
  if (typeof c !== 'string' || !HEX40.test(c)) fail(`${what}: the hub sent ${JSON.stringify(c)} as the commit id, not a 40-digit hex hash`);
  return c;
}

/** HF ETags: quoted, maybe weak (`W/"..."`); the blob name is the bare value. */
export function normalizeEtag(e: string | null | undefined): string | undefined {
  if (!e) return undefined;
  return e
    .trim()
    .replace(/^W\//, '')
    .replace(/^"(.*)"$/, '$1');
}

/** What an etag / oid verifies: a sha256 (LFS files) or a git blob sha1 (files kept in git). */
export function hashKind(oid: string): 'sha256' | 'git-sha1' | undefined {
  if (HEX64.test(oid)) return 'sha256';
  if (HEX40.test(oid)) return 'git-sha1';
  return undefined;
}

/** `models--owner--name`, the folder huggingface_hub uses for a model repo. */
export function repoFolderName(repo: string): string {
  return `models--${repo.split('/').join('--')}`;
}

/** Inverse of repoFolderName, or undefined for folders that are not model repos. */
export function repoFromFolder(folder: string): string | undefined {
  const m = /^models--([^/]+?)--([^/]+)$/.exec(folder);
  return m && validRepo(m[1]!, m[2]!) ? `${m[1]}/${m[2]}` : undefined;
}
