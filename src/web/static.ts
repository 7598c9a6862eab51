// Static files for `qwen-ts web`: one file answered with Range support, as a browser engine
// reading a model needs it (a GGUF header first, then each tensor's bytes): `Accept-Ranges`,
// 206 + `Content-Range` for one `bytes=` range, 416 for a range past the end, a strong `ETag`
// (size and mtime) with `If-None-Match` (304) and `If-Range`. Several ranges in one request
// get the whole file (RFC 9110 lets a server ignore Range; no client of ours asks for that).
import * as fs from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.wasm': 'application/wasm',
  '.txt': 'text/plain; charset=utf-8',
  '.md': 'text/markdown; charset=utf-8',
  '.jinja': 'text/plain; charset=utf-8',
};

export function contentType(file: string): string {
  const dot = file.lastIndexOf('.');
  return TYPES[dot >= 0 ? file.slice(dot).toLowerCase() : ''] ?? 'application/octet-stream';
}

export function etagOf(st: fs.Stats): string {
  return `"${st.size.toString(16)}-${Math.floor(st.mtimeMs).toString(16)}"`;
}

/** The byte range a `Range` header asks for: [start, end] inclusive, 'unsatisfiable', or undefined (send all). */
export function parseRange(header: string | undefined, size: number): { start: number; end: number } | 'unsatisfiable' | undefined {
  if (!header) return undefined;
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m) return undefined; // other units, several ranges, or malformed: the whole file
  const [, a = '', b = ''] = m;
  if (a === '' && b === '') return undefined;
  if (a === '') {
    // a suffix: the last N bytes
    const n = Number(b);
    if (n === 0) return 'unsatisfiable';
    return { start: Math.max(0, size - n), end: size - 1 };
  }
  const start = Number(a);
  if (start >= size) return 'unsatisfiable';
  const end = b === '' ? size - 1 : Math.min(Number(b), size - 1);
  if (end < start) return undefined; // an invalid range is ignored (RFC 9110 14.1.1)
  return { start, end };
}

/**
 * Answer a GET or HEAD for `file` (already checked to be one the server may serve). `headers`
 * go on every answer (the isolation headers). Errors reading the file end the response.
 */
export function sendFile(req: IncomingMessage, res: ServerResponse, file: string, headers: Record<string, string>, cacheControl = 'no-cache'): void {
  let st: fs.Stats;
  try {
    st = fs.statSync(file);
  } catch {
    return sendText(res, 404, 'not found', headers);
  }
  if (!st.isFile()) return sendText(res, 404, 'not found', headers);
  const etag = etagOf(st);
  const common = { ...headers, 'Accept-Ranges': 'bytes', ETag: etag, 'Last-Modified': st.mtime.toUTCString(), 'Cache-Control': cacheControl };
  if (req.headers['if-none-match'] === etag) {
    res.writeHead(304, common);
    return void res.end();
  }
  const ifRange = req.headers['if-range'];
  let range = ifRange && ifRange !== etag ? undefined : parseRange(req.headers.range, st.size);
  if (range === 'unsatisfiable') {
    res.writeHead(416, { ...common, 'Content-Range': `bytes */${st.size}`, 'Content-Type': 'text/plain; charset=utf-8' });
    return void res.end('range not satisfiable\n');
  }
  if (st.size === 0) range = undefined;
  const start = range?.start ?? 0;
  const end = range?.end ?? st.size - 1;
  res.writeHead(range ? 206 : 200, {
    ...common,
    'Content-Type': contentType(file),
    'Content-Length': String(Math.max(0, end - start + 1)),
    ...(range ? { 'Content-Range': `bytes ${start}-${end}/${st.size}` } : {}),
  });
  if (req.method === 'HEAD' || st.size === 0) return void res.end();
  const stream = fs.createReadStream(file, { start, end });
  stream.on('error', () => res.destroy());
  res.on('close', () => stream.destroy());
  stream.pipe(res);
}

/** A short answer made here (the page, an error); a HEAD gets its headers alone. */
export function sendText(res: ServerResponse, status: number, text: string, headers: Record<string, string>, type = 'text/plain; charset=utf-8'): void {
  res.writeHead(status, { ...headers, 'Content-Type': type, 'Content-Length': String(Buffer.byteLength(text)), 'Cache-Control': 'no-cache' });
  res.end(res.req.method === 'HEAD' ? undefined : text);
}
