// Model bytes that are not files on disk: a URL read with HTTP Range requests, or a Blob / File
// read by slice(). The GGUF header is fetched first (in growing pieces until it parses), then each
// tensor's bytes are streamed from the response body straight into the backend's WebAssembly
// memory (see streamed.ts): the file is never held whole in a JS ArrayBuffer.
import type { ByteReader, TensorInfo } from '../formats/file.js';
import { parseSafetensors } from '../formats/safetensors.js';
import { parseGguf, type GgufFile } from '../formats/gguf.js';
import { fail } from '../errors.js';

/** Random access to a model file's bytes, asynchronously. */
export interface RangeSource {
  /** the URL or file name (errors name it) */
  readonly name: string;
  readonly size: number;
  /** bytes [offset, offset + length) */
  read(offset: number, length: number, signal?: AbortSignal): Promise<Uint8Array>;
  /** the same bytes as a stream of chunks */
  stream(offset: number, length: number, signal?: AbortSignal): Promise<ReadableStream<Uint8Array>>;
}

export type FetchFn = (input: string, init?: RequestInit) => Promise<Response>;

function rangeOf(res: Response, url: string, start: number, length: number): void {
  if (res.status === 200) fail(`${url}: the server ignored a Range request (status 200, not 206); qwen.ts reads a model in pieces and needs a server with Range support (Accept-Ranges: bytes)`);
  if (res.status !== 206) fail(`${url}: HTTP ${res.status} ${res.statusText} for bytes ${start}..${start + length}`);
  const cr = res.headers.get('content-range');
  const m = cr && /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(cr);
  if (m && (Number(m[1]) !== start || Number(m[2]) !== start + length - 1)) fail(`${url}: asked for bytes ${start}-${start + length - 1}, the server sent ${cr}`);
}

/** A URL read with Range requests; its size comes from the first response's Content-Range. */
export async function openUrl(url: string, fetchFn: FetchFn = fetch, signal?: AbortSignal): Promise<RangeSource> {
  let res: Response;
  try {
    res = await fetchFn(url, { headers: { Range: 'bytes=0-0' }, signal });
  } catch (e) {
    fail(`${url}: cannot fetch it (${(e as Error).message})`);
  }
  await res.body?.cancel();
  if (res.status === 404) fail(`${url}: not found (HTTP 404)`);
  rangeOf(res, url, 0, 1);
  const total = /\/(\d+)$/.exec(res.headers.get('content-range') ?? '');
  if (!total) fail(`${url}: the server's Content-Range (${res.headers.get('content-range')}) gives no file size`);
  const size = Number(total[1]);
  const get = async (offset: number, length: number, s?: AbortSignal) => {
    if (offset < 0 || length < 0 || offset + length > size) fail(`${url}: bytes ${offset}..${offset + length} lie past the end of the file (${size} bytes)`);
    const r = await fetchFn(url, { headers: { Range: `bytes=${offset}-${offset + length - 1}` }, signal: s });
    rangeOf(r, url, offset, length);
    if (!r.body) fail(`${url}: the response to a Range request has no body`);
    return r.body;
  };
  return {
    name: url,
    size,
    async read(offset, length, s) {
      if (length === 0) return new Uint8Array(0);
      return collect(await get(offset, length, s), length, url);
    },
    stream: (offset, length, s) => get(offset, length, s),
  };
}

/** A Blob or File (a file the user picked, or one in the Cache API / OPFS). */
export function openBlob(blob: Blob, name: string): RangeSource {
  const check = (offset: number, length: number) => {
    if (offset < 0 || length < 0 || offset + length > blob.size) fail(`${name}: bytes ${offset}..${offset + length} lie past the end of the file (${blob.size} bytes)`);
  };
  return {
    name,
    size: blob.size,
    async read(offset, length) {
      check(offset, length);
      return new Uint8Array(await blob.slice(offset, offset + length).arrayBuffer());
    },
    async stream(offset, length) {
      check(offset, length);
      return blob.slice(offset, offset + length).stream() as ReadableStream<Uint8Array>;
    },
  };
}

/** All of a stream's bytes (exactly `length` of them) in one array. */
async function collect(body: ReadableStream<Uint8Array>, length: number, name: string): Promise<Uint8Array> {
  const out = new Uint8Array(length);
  let at = 0;
  const reader = body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    if (at + value.length > length) fail(`${name}: the server sent more bytes than asked for (${length})`);
    out.set(value, at);
    at += value.length;
  }
  if (at !== length) fail(`${name}: the response ended after ${at} of ${length} bytes; the connection dropped or the file changed`);
  return out;
}

/** Thrown by PrefixReader when the parser reads past the bytes fetched so far. */
class NeedMore extends Error {
  constructor(readonly end: number) {
    super(`header needs bytes up to ${end}`);
  }
}

/** The first bytes of a file, with the whole file's size: a parser that reads further gets NeedMore. */
class PrefixReader implements ByteReader {
  constructor(
    readonly path: string,
    readonly size: number,
    private readonly bytes: Uint8Array,
  ) {}
  readAt<T extends Uint8Array>(offset: number, dst: T, what: string): T {
    if (offset < 0 || offset + dst.length > this.size)
      fail(`${this.path}: ${what} lies past the end of the file (needs bytes ${offset}..${offset + dst.length}, file has ${this.size}); the file is truncated or corrupt`);
    if (offset + dst.length > this.bytes.length) throw new NeedMore(offset + dst.length);
    dst.set(this.bytes.subarray(offset, offset + dst.length));
    return dst;
  }
  close(): void {}
}

/** The first bytes fetched for a header; doubled until the header parses. */
const FIRST_PIECE = 256 << 10;

/** A GGUF file's header (metadata and tensor table), fetched in growing pieces from its start. */
export function readGgufHeader(src: RangeSource, signal?: AbortSignal): Promise<GgufFile> {
  return readHeader(src, parseGguf, signal);
}

/** A safetensors file's header (tensor table), fetched the same way. */
export function readSafetensorsHeader(src: RangeSource, signal?: AbortSignal): Promise<{ infos: TensorInfo[]; metadata: Record<string, string> }> {
  return readHeader(src, parseSafetensors, signal);
}

/** What `parse` makes of a file's first bytes, fetched in growing pieces until it has what it reads. */
async function readHeader<T>(src: RangeSource, parse: (r: ByteReader) => T, signal?: AbortSignal): Promise<T> {
  let bytes = await src.read(0, Math.min(src.size, FIRST_PIECE), signal);
  for (;;) {
    try {
      return parse(new PrefixReader(src.name, src.size, bytes));
    } catch (e) {
      if (!(e instanceof NeedMore)) throw e;
      const want = Math.min(src.size, Math.max(e.end, bytes.length * 2));
      const more = await src.read(bytes.length, want - bytes.length, signal);
      const grown = new Uint8Array(want);
      grown.set(bytes);
      grown.set(more, bytes.length);
      bytes = grown;
    }
  }
}
