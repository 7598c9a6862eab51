// A local stand-in for Hugging Face and ModelScope (127.0.0.1, ephemeral port) serving the tiny
// fixture models the way each hub does: HF's revision/tree APIs, /resolve/ with ETag (git sha1) for
// small files and a 302 to a CDN with X-Linked-Etag / X-Linked-Size for LFS files, 401/403/404 with
// X-Error-Code; ModelScope's api/v1 file list and file endpoint. Faults are switched on per file
// path: 503s, a connection cut halfway, a stalled body, wrong bytes. Importing this starts nothing.
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import { createHash } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { openSafetensors } from '../../src/formats/safetensors.js';

export interface FixtureFile {
  path: string;
  data: Buffer;
  lfs: boolean;
  sha256: string;
  gitSha1: string;
}
export interface FixtureRepo {
  id: string;
  commit: string;
  files: FixtureFile[];
  /** resolve needs `Authorization: Bearer <token>` (HF: 401/403 GatedRepo; ModelScope: 401) */
  gatedToken?: string;
  /** revision API without sizes/hashes, so the client must use the (paged) tree API */
  bareSiblings?: boolean;
  /** paths listed but never served (path-escape tests) */
  extraListed?: string[];
  /** ModelScope lists this (wrong) Sha256 for some paths */
  msSha?: Record<string, string>;
}
export interface Faults {
  fail503: Map<string, number>;
  drop: Map<string, number>;
  stall: Map<string, number>;
  corrupt: Set<string>;
  /** the body is sent in pieces over this many ms */
  slowMs: Map<string, number>;
  /** HF names another sha256 in X-Linked-Etag than its file list does */
  wrongEtag: Set<string>;
}
export interface LogEntry {
  method: string;
  url: string;
  range?: string;
  auth?: string;
}
export interface FixtureHub {
  url: string;
  repos: Map<string, FixtureRepo>;
  faults: Faults;
  log: LogEntry[];
  /** content requests (not API) in the log, by file path */
  fetches(p: string): LogEntry[];
  close(): Promise<void>;
}

/** The repository root, found upward from this file (it runs from test/hub/ under tsx, dist/test/hub/ compiled). */
export const REPO_ROOT = (() => {
  let d = path.dirname(fileURLToPath(import.meta.url));
  while (!fs.existsSync(path.join(d, 'package.json')) && path.dirname(d) !== d) d = path.dirname(d);
  return d;
})();
/** The tiny Qwen2 fixture model every fixture repo is made from (served read-only). */
export const TINY_MODEL = path.join(REPO_ROOT, 'test', 'fixtures', 'models', 'qwen2-tiny-tied');
const MODEL = TINY_MODEL;
const read = (n: string) => fs.readFileSync(path.join(MODEL, n));
const sha1 = (s: string | Buffer) => createHash('sha1').update(s).digest('hex');

export function fixtureFile(p: string, data: Buffer, lfs = data.length > 4096): FixtureFile {
  return {
    path: p,
    data,
    lfs,
    sha256: createHash('sha256').update(data).digest('hex'),
    gitSha1: createHash('sha1').update(`blob ${data.length}\0`).update(data).digest('hex'),
  };
}

export function makeRepo(id: string, files: FixtureFile[], extra: Partial<FixtureRepo> = {}): FixtureRepo {
  return { id, commit: sha1(`commit:${id}:${files.map((f) => f.sha256).join()}`), files, ...extra };
}

const README = (base: string, relation: string) => Buffer.from(`---\nlicense: apache-2.0\nbase_model:\n- ${base}\nbase_model_relation: ${relation}\ntags:\n- qwen\n---\n# tiny\nA test model.\n`);

/** The standard fixture repos. */
export function standardRepos(): FixtureRepo[] {
  const side = [
    fixtureFile('config.json', read('config.json')),
    fixtureFile('generation_config.json', Buffer.from(JSON.stringify({ bos_token_id: 260, eos_token_id: 260, do_sample: false }))),
    fixtureFile('tokenizer.json', read('tokenizer.json'), false),
    fixtureFile('tokenizer_config.json', read('tokenizer_config.json')),
  ];
  const st = fixtureFile('model.safetensors', read('model.safetensors'));
  const gguf = fixtureFile('model-f32.gguf', read('model-f32.gguf'));
  const tiny = [
    ...side,
    st,
    gguf,
    fixtureFile('README.md', README('Qwen/Qwen2-0.5B', 'finetune')),
    fixtureFile('A.prefill_logits.f32', read('A.prefill_logits.f32')),
    fixtureFile('.gitattributes', Buffer.from('*.safetensors filter=lfs\n')),
  ];
  const s = openSafetensors(path.join(MODEL, 'model.safetensors'));
  const weightMap = Object.fromEntries([...s.tensors.keys()].map((k) => [k, 'model.safetensors']));
  s.close();
  return [
    makeRepo('Qwen/tiny-qwen2', tiny),
    makeRepo('Qwen/tiny-tree', tiny, { bareSiblings: true }),
    makeRepo('Qwen/tiny-qwen2-GGUF', [fixtureFile('tiny-qwen2-f32.gguf', gguf.data), fixtureFile('README.md', README('Qwen/tiny-qwen2', 'quantized'))]),
    makeRepo('Qwen/tiny-indexed', [
      ...side,
      st,
      fixtureFile('consolidated.safetensors', gguf.data),
      fixtureFile('model.safetensors.index.json', Buffer.from(JSON.stringify({ metadata: {}, weight_map: weightMap }))),
    ]),
    makeRepo('Qwen/gated', tiny, { gatedToken: 'hf_secret' }),
    makeRepo('Qwen/evil-dotdot', side, { extraListed: ['../../../evil.json'] }),
    makeRepo('Qwen/evil-abs', side, { extraListed: ['/etc/evil.json'] }),
    makeRepo('Qwen/bad-sha', tiny, { msSha: { 'config.json': 'ab'.repeat(32) } }),
  ];
}

export async function startFixtureHub(repos: FixtureRepo[] = standardRepos()): Promise<FixtureHub> {
  const byId = new Map(repos.map((r) => [r.id, r]));
  const faults: Faults = { fail503: new Map(), drop: new Map(), stall: new Map(), corrupt: new Set(), slowMs: new Map(), wrongEtag: new Set() };
  const log: LogEntry[] = [];
  const cdn = new Map<string, FixtureFile>(); // sha256 -> file
  for (const r of repos) for (const f of r.files) cdn.set(f.sha256, f);
  let base = '';
  let cdnBase = ''; // another origin (another port), as a real CDN is another host

  const json = (res: http.ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) => {
    res.writeHead(status, { 'content-type': 'application/json', ...headers });
    res.end(JSON.stringify(body));
  };
  const take = (m: Map<string, number>, p: string) => {
    const n = m.get(p) ?? 0;
    if (n > 0) m.set(p, n - 1);
    return n > 0;
  };

  /** File bytes with Range support and the per-path faults. */
  const serve = (req: http.IncomingMessage, res: http.ServerResponse, f: FixtureFile, headers: Record<string, string>) => {
    if (take(faults.fail503, f.path)) return json(res, 503, { error: 'busy' }, { 'retry-after': '0' });
    let data = f.data;
    if (faults.corrupt.has(f.path)) {
      data = Buffer.from(data);
      data[data.length >> 1] ^= 0xff;
    }
    const len = data.length;
    const m = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '');
    let start = 0,
      end = len - 1,
      status = 200;
    const h: Record<string, string> = { 'accept-ranges': 'bytes', 'content-type': 'application/octet-stream', ...headers };
    if (m) {
      start = Number(m[1]);
      end = m[2] ? Math.min(Number(m[2]), len - 1) : len - 1;
      if (start >= len) {
        res.writeHead(416, { ...h, 'content-range': `bytes */${len}` });
        return res.end();
      }
      status = 206;
      h['content-range'] = `bytes ${start}-${end}/${len}`;
    }
    const body = data.subarray(start, end + 1);
    res.writeHead(status, { ...h, 'content-length': String(body.length) });
    if (req.method === 'HEAD') return res.end();
    if (take(faults.drop, f.path)) return void res.write(body.subarray(0, body.length >> 1), () => res.destroy());
    if (take(faults.stall, f.path)) return void res.write(body.subarray(0, body.length >> 1)); // never ends
    const slow = faults.slowMs.get(f.path);
    if (slow) {
      const step = Math.ceil(body.length / 8);
      const send = (i: number): void => void (i >= body.length ? res.end() : res.write(body.subarray(i, i + step), () => setTimeout(() => send(i + step), slow / 8)));
      return send(0);
    }
    res.end(body);
  };

  const hfRevision = (res: http.ServerResponse, r: FixtureRepo, rev: string, blobs: boolean) => {
    if (rev !== 'main' && rev !== r.commit) return json(res, 404, { error: `Invalid rev id: ${rev}` }, { 'x-error-code': 'RevisionNotFound' });
    const listed = [...r.files.map((f) => f.path), ...(r.extraListed ?? [])];
    const siblings = listed.map((p) => {
      const f = r.files.find((x) => x.path === p);
      if (!f || !blobs || r.bareSiblings) return { rfilename: p };
      return { rfilename: p, size: f.data.length, blobId: f.gitSha1, ...(f.lfs ? { lfs: { sha256: f.sha256, size: f.data.length, pointerSize: 134 } } : {}) };
    });
    json(res, 200, { _id: 'x', id: r.id, sha: r.commit, gated: r.gatedToken ? 'manual' : false, siblings, cardData: {} });
  };

  const hfTree = (res: http.ServerResponse, r: FixtureRepo, cursor: number) => {
    const all = r.files.map((f) => ({
      type: 'file',
      oid: f.gitSha1,
      size: f.lfs ? 134 : f.data.length,
      path: f.path,
      ...(f.lfs ? { lfs: { oid: f.sha256, size: f.data.length, pointerSize: 134 } } : {}),
    }));
    const page = all.slice(cursor, cursor + 3); // small pages, to exercise the Link header
    const next: Record<string, string> = cursor + 3 < all.length ? { link: `<${base}/api/models/${r.id}/tree/${r.commit}?recursive=true&cursor=${cursor + 3}>; rel="next"` } : {};
    json(res, 200, [{ type: 'directory', oid: 'x', size: 0, path: 'sub' }, ...page], next);
  };

  const hfResolve = (req: http.IncomingMessage, res: http.ServerResponse, r: FixtureRepo, rev: string, p: string) => {
    if (rev !== 'main' && rev !== r.commit) return json(res, 404, { error: 'Revision not found' }, { 'x-error-code': 'RevisionNotFound' });
    if (r.gatedToken && req.headers.authorization !== `Bearer ${r.gatedToken}`) {
      const st = req.headers.authorization ? 403 : 401;
      return json(res, st, { error: `Access to model ${r.id} is restricted.` }, { 'x-error-code': 'GatedRepo', 'x-error-message': `Access to model ${r.id} is restricted.` });
    }
    const f = r.files.find((x) => x.path === p);
    if (!f) return json(res, 404, { error: 'Entry not found' }, { 'x-error-code': 'EntryNotFound' });
    const meta = { 'x-repo-commit': r.commit };
    if (!f.lfs) return serve(req, res, f, { ...meta, etag: `"${f.gitSha1}"` });
    res.writeHead(302, {
      ...meta,
      location: `${cdnBase}/cdn/${f.sha256}?expires=9999`,
      'x-linked-etag': `"${faults.wrongEtag.has(f.path) ? 'b'.repeat(64) : f.sha256}"`,
      'x-linked-size': String(f.data.length),
      etag: `W/"${sha1('pointer' + f.path)}"`,
      'content-length': '0',
    });
    res.end();
  };

  const msFiles = (res: http.ServerResponse, r: FixtureRepo) => {
    const files = [
      ...r.files.map((f) => ({ Name: path.posix.basename(f.path), Path: f.path, Type: 'blob', Size: f.data.length, Sha256: r.msSha?.[f.path] ?? f.sha256, Revision: r.commit })),
      ...(r.extraListed ?? []).map((p) => ({ Name: p, Path: p, Type: 'blob', Size: 1, Sha256: 'ab'.repeat(32) })),
      { Name: 'sub', Path: 'sub', Type: 'tree', Size: 0, Sha256: '' },
    ];
    json(res, 200, { Code: 200, Data: { Files: files, LatestCommitter: {} }, Message: 'success', Success: true, RequestId: 'r' });
  };

  const handle = (req: http.IncomingMessage, res: http.ServerResponse) => {
    const u = new URL(req.url!, base);
    log.push({ method: req.method!, url: req.url!, range: req.headers.range, auth: req.headers.authorization });
    let m: RegExpExecArray | null;
    if ((m = /^\/(?:cdn|oss)\/([0-9a-f]{64})$/.exec(u.pathname))) {
      const f = cdn.get(m[1]!);
      return f ? serve(req, res, f, { etag: `"${createHash('md5').update(f.data).digest('hex')}"` }) : json(res, 404, { error: 'NoSuchKey' });
    }
    if ((m = /^\/api\/v1\/models\/([^/]+\/[^/]+)\/repo(\/files)?$/.exec(u.pathname))) {
      // ModelScope
      const r = byId.get(m[1]!);
      if (!r) return json(res, 404, { Code: 10010205001, Message: `model ${m[1]} not exist`, Success: false });
      if (r.gatedToken && req.headers.authorization !== `Bearer ${r.gatedToken}`) return json(res, 401, { Code: 10010205004, Message: 'no permission', Success: false });
      if (m[2]) return msFiles(res, r);
      const f = r.files.find((x) => x.path === u.searchParams.get('FilePath'));
      if (!f) return json(res, 404, { Code: 10010205002, Message: 'file not exist', Success: false });
      if (f.lfs) {
        res.writeHead(302, { location: `${cdnBase}/oss/${f.sha256}` });
        return res.end();
      }
      return serve(req, res, f, {});
    }
    if ((m = /^\/api\/models\/([^/]+\/[^/]+)\/(revision|tree)\/(.+)$/.exec(u.pathname))) {
      // HF API
      if (m[1] === 'Qwen/old-name') {
        // a renamed repo: HF answers with a relative redirect
        res.writeHead(307, { location: u.pathname.replace('Qwen/old-name', 'Qwen/tiny-qwen2') + u.search });
        return res.end();
      }
      const r = byId.get(m[1]!);
      if (!r) {
        const st = req.headers.authorization ? 404 : 401;
        return json(res, st, { error: 'Repository not found' }, { 'x-error-code': 'RepoNotFound', 'x-error-message': 'Repository not found' });
      }
      const rev = decodeURIComponent(m[3]!);
      if (m[2] === 'tree') return hfTree(res, r, Number(u.searchParams.get('cursor') ?? 0));
      return hfRevision(res, r, rev, u.searchParams.get('blobs') === 'true');
    }
    if ((m = /^\/([^/]+\/[^/]+)\/resolve\/([^/]+)\/(.+)$/.exec(u.pathname))) {
      // HF files
      if (m[1] === 'Qwen/old-name') {
        res.writeHead(307, { location: u.pathname.replace('Qwen/old-name', 'Qwen/tiny-qwen2') });
        return res.end();
      }
      const r = byId.get(m[1]!);
      if (!r) return json(res, 401, { error: 'Repository not found' }, { 'x-error-code': 'RepoNotFound' });
      return hfResolve(req, res, r, decodeURIComponent(m[2]!), m[3]!.split('/').map(decodeURIComponent).join('/'));
    }
    json(res, 404, { error: 'not found' });
  };

  const server = http.createServer(handle);
  const cdnServer = http.createServer(handle);
  const listen = async (s: http.Server) => {
    await new Promise<void>((ok) => s.listen(0, '127.0.0.1', ok));
    return `http://127.0.0.1:${(s.address() as { port: number }).port}`;
  };
  base = await listen(server);
  cdnBase = await listen(cdnServer);
  return {
    url: base,
    repos: byId,
    faults,
    log,
    fetches: (p) =>
      log.filter((e) => {
        const u = new URL(e.url, base);
        if (u.pathname.startsWith('/cdn/') || u.pathname.startsWith('/oss/')) return cdn.get(u.pathname.slice(5))?.path === p;
        return (u.pathname.includes('/resolve/') && u.pathname.endsWith('/' + p)) || (u.pathname.endsWith('/repo') && u.searchParams.get('FilePath') === p);
      }),
    close: async () => {
      for (const s of [server, cdnServer]) {
        s.closeAllConnections();
        await new Promise((ok) => s.close(ok));
      }
    },
  };
}
