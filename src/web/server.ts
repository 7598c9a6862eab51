// The HTTP side of `qwen-ts web`: static files only. The model runs in the browser (src/browser/),
// so this process serves the chat page, the browser build (dist/src/**: the library's modules and
// the kernels' .wasm) and the model's files (Range requests), and never loads the model itself.
//
// Cross-origin isolation: every answer carries `Cross-Origin-Opener-Policy: same-origin`,
// `Cross-Origin-Embedder-Policy: require-corp` and `Cross-Origin-Resource-Policy: same-origin`,
// which make the page cross-origin isolated: SharedArrayBuffer, so the engine's kernels can run on
// several Web Workers sharing one WebAssembly memory. `isolation: false` leaves them out (the
// page then runs one thread and says so).
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ggufSets, splitSiblings } from '../formats/gguf_split.js';
import { webPage, type WebConfig } from './html.js';
import { etagOf, sendFile, sendText } from './static.js';

export type { WebConfig } from './html.js';

export interface WebServerOptions {
  /** what the page loads, and where from (see resolveWebModel) */
  config: WebConfig;
  /** the model's files, served under /model/: name in the URL -> path on disk */
  modelFiles: Map<string, string>;
  /** COOP / COEP / CORP headers (default true) */
  isolation?: boolean;
  /** dist/src of this build (default: the folder above this module) */
  distRoot?: string;
  /** one line per request (default: none) */
  log?: (line: string) => void;
}

export const ISOLATION_HEADERS: Readonly<Record<string, string>> = {
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Embedder-Policy': 'require-corp',
  'Cross-Origin-Resource-Policy': 'same-origin',
};

// Only what a browser runs or reads from the build: no .d.ts, no sources.
const DIST_EXT = /\.(js|wasm|map|json)$/;

/**
 * Bare module names the browser build imports (the library's dependencies), served from
 * node_modules under /vendor/. A browser resolves only URLs and there is no bundler; an import map
 * would do for the page but not for its Web Workers (Chromium applies none there), so the
 * server rewrites these names in the modules it serves (rewriteImports).
 */
export function vendorModules(): Map<string, { url: string; dir: string }> {
  const out = new Map<string, { url: string; dir: string }>();
  for (const name of ['@huggingface/jinja']) {
    let file: string;
    try {
      file = fileURLToPath(import.meta.resolve(name));
    } catch {
      continue; // not installed: the page says what failed to load
    }
    out.set(name, { url: `/vendor/${name}/${path.basename(file)}`, dir: path.dirname(file) });
  }
  return out;
}

/** `from 'name'` and `import('name')` of the vendor modules as their URLs on this server. */
export function rewriteImports(js: string, vendor: Map<string, { url: string }>): string {
  for (const [name, v] of vendor) {
    const q = name.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
    js = js.replace(new RegExp(`(\\bfrom\\s*|\\bimport\\s*\\(\\s*|^import\\s*)(['"])${q}\\2`, 'gm'), (_m, pre: string, quote: string) => `${pre}${quote}${v.url}${quote}`);
  }
  return js;
}

/** A path inside `root` named by URL segments, or undefined for anything that could step outside it. */
export function safeJoin(root: string, rel: string): string | undefined {
  let parts: string[];
  try {
    parts = rel.split('/').map(decodeURIComponent);
  } catch {
    return undefined;
  }
  if (parts.some((p) => p === '' || p.startsWith('.') || p.includes('\\') || p.includes('\0'))) return undefined;
  const full = path.resolve(root, ...parts);
  return full.startsWith(root + path.sep) ? full : undefined;
}

export function createWebServer(opts: WebServerOptions): http.Server {
  const distRoot = path.resolve(opts.distRoot ?? fileURLToPath(new URL('..', import.meta.url)));
  const headers: Record<string, string> = { 'X-Content-Type-Options': 'nosniff', ...(opts.isolation === false ? {} : ISOLATION_HEADERS) };
  const vendor = vendorModules();
  const html = webPage(opts.config);
  // a module with a vendor import, rewritten, is kept by its ETag (a rebuild changes it)
  const rewritten = new Map<string, { etag: string; body: string }>();
  const sendModule = (req: http.IncomingMessage, res: http.ServerResponse, file: string) => {
    let st: fs.Stats;
    try {
      st = fs.statSync(file);
    } catch {
      return sendText(res, 404, 'not found\n', headers);
    }
    const etag = etagOf(st);
    let m = rewritten.get(file);
    if (m?.etag !== etag) {
      const src = fs.readFileSync(file, 'utf8');
      const body = rewriteImports(src, vendor);
      if (body === src) return sendFile(req, res, file, headers);
      m = { etag, body };
      rewritten.set(file, m);
    }
    if (req.headers['if-none-match'] === etag) {
      res.writeHead(304, { ...headers, ETag: etag });
      return void res.end();
    }
    res.setHeader('ETag', etag);
    sendText(res, 200, m.body, headers, 'text/javascript; charset=utf-8');
  };
  return http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const p = url.pathname;
    if (opts.log) res.on('finish', () => opts.log?.(`${req.method} ${p} ${res.statusCode}`));
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('Allow', 'GET, HEAD');
      return sendText(res, 405, 'only GET and HEAD\n', headers);
    }
    if (p === '/' || p === '/index.html') return sendText(res, 200, html, headers, 'text/html; charset=utf-8');
    if (p.startsWith('/model/')) {
      const file = opts.modelFiles.get(p.slice('/model/'.length));
      return file ? sendFile(req, res, file, headers) : sendText(res, 404, `no model file ${p}\n`, headers);
    }
    if (p.startsWith('/dist/src/')) {
      const file = DIST_EXT.test(p) ? safeJoin(distRoot, p.slice('/dist/src/'.length)) : undefined;
      if (file?.endsWith('.js')) return sendModule(req, res, file);
      return file ? sendFile(req, res, file, headers) : sendText(res, 404, 'not found\n', headers);
    }
    if (p.startsWith('/vendor/')) {
      for (const [name, v] of vendor) {
        const prefix = `/vendor/${name}/`;
        if (!p.startsWith(prefix)) continue;
        const file = DIST_EXT.test(p) ? safeJoin(v.dir, p.slice(prefix.length)) : undefined;
        return file ? sendFile(req, res, file, headers) : sendText(res, 404, 'not found\n', headers);
      }
    }
    if (p === '/favicon.ico') {
      res.writeHead(204, headers);
      return void res.end();
    }
    sendText(res, 404, 'not found\n', headers);
  });
}

/** The files of a local model, by the name the page asks for: a GGUF (with the other shards of a split set) or a folder's files. */
export function modelFilesOf(model: string): { files: Map<string, string>; entry: string } {
  const files = new Map<string, string>();
  const st = fs.statSync(model);
  if (st.isFile()) {
    const dir = path.dirname(model);
    const base = path.basename(model);
    // the other shards of a split set (gguf_split.ts names them), those that are there
    for (const f of splitSiblings(base)) if (f === base || fs.existsSync(path.join(dir, f))) files.set(encodeURIComponent(f), path.join(dir, f));
    return { files, entry: encodeURIComponent(base) };
  }
  const walk = (dir: string, rel: string) => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      if (e.name.startsWith('.')) continue;
      const name = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) walk(path.join(dir, e.name), name);
      else if (e.isFile()) files.set(name.split('/').map(encodeURIComponent).join('/'), path.join(dir, e.name));
    }
  };
  walk(model, '');
  // a folder holding one GGUF model (one file or one split set, by its first shard; projectors aside, as
  // ggufInFolder) is that GGUF; otherwise the folder itself (HF files)
  const sets = ggufSets([...files.keys()].filter((f) => /\.gguf$/i.test(f) && !f.includes('/') && !/mmproj/i.test(f)));
  const first = sets.length === 1 ? sets[0]!.files[0]! : '';
  return { files, entry: files.has(first) ? first : '' };
}
