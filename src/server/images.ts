// Images in requests: the bytes behind an image part's URL (a data: URL's base64, or an http(s) URL
// fetched with a byte limit, a time limit, bounded redirects and a content-type check), the header
// checked on this thread (a non-image or an oversized header is a 400 at once, before the engine
// sees it), then decoded and encoded by the model's vision tower (ChatModel.vision), whose rows the
// prompt carries. Every mistake is a 400 naming the request parameter that holds the image.
import type { ChatModel } from '../chat/engine.js';
import { DEFAULT_MAX_PIXELS, probeImage } from '../vision/image/decode.js';
import { imageHash } from '../vision/jobs.js';
import type { ImageEmbedding } from '../vision/types.js';
import { ApiError, badParam } from './errors.js';

export interface ImageFetchOptions {
  /** http(s) image URLs are fetched (default true; serve --no-remote-images: false) */
  remote?: boolean;
  /** largest image accepted, in bytes (default 20 MiB) */
  maxBytes?: number;
  /** longest a remote image may take to arrive, in ms (default 10 s) */
  timeoutMs?: number;
  /** redirects followed (default 3) */
  maxRedirects?: number;
  /** largest image in pixels, checked on the header (default 50 megapixels) */
  maxPixels?: number;
  /** most images in one request (default 16): each is fetched and encoded before the prompt's length is known */
  maxImages?: number;
}

/** An image part of a request: its URL, and the request parameter that holds it (for errors). */
export interface ImageRef {
  url: string;
  param: string;
}

const DEFAULTS = { remote: true, maxBytes: 20 << 20, timeoutMs: 10_000, maxRedirects: 3, maxPixels: DEFAULT_MAX_PIXELS, maxImages: 16 };

const mib = (b: number) => (b >= 2 ** 20 ? `${(b / 2 ** 20).toFixed(b % 2 ** 20 ? 1 : 0)} MiB` : `${b} bytes`);

/** A data: URL's bytes (base64 only: images are binary). */
function dataUrl(url: string, param: string, max: number): Uint8Array {
  const comma = url.indexOf(',');
  const head = comma < 0 ? '' : url.slice(5, comma).toLowerCase();
  if (comma < 0 || !head.split(';').includes('base64')) throw badParam(param, `${param}: a data: URL must be base64 (data:image/png;base64,...)`, 'invalid_image_url');
  const type = head.split(';')[0]!;
  if (type && !type.startsWith('image/') && type !== 'application/octet-stream') throw badParam(param, `${param}: the data: URL holds '${type}', not an image`, 'invalid_image_format');
  const b64 = url.slice(comma + 1).replace(/\s+/g, '');
  if (!/^[A-Za-z0-9+/_-]*={0,2}$/.test(b64)) throw badParam(param, `${param}: the data: URL's base64 is malformed`, 'invalid_image_url');
  if ((b64.length * 3) / 4 > max + 3) throw badParam(param, `${param}: the image is larger than ${mib(max)}`, 'image_too_large');
  return new Uint8Array(Buffer.from(b64, 'base64'));
}

/** An http(s) URL's body: redirects followed by hand (each one checked), stopped past the byte or time limit. */
async function fetchUrl(url: URL, param: string, o: typeof DEFAULTS, signal?: AbortSignal): Promise<Uint8Array> {
  const timeout = AbortSignal.timeout(o.timeoutMs);
  const both = signal ? AbortSignal.any([signal, timeout]) : timeout;
  const tooSlow = () => badParam(param, `${param}: ${url.href} did not arrive within ${o.timeoutMs / 1000} s`, 'image_fetch_timeout');
  try {
    for (let hops = 0; ; hops++) {
      const res = await fetch(url, { redirect: 'manual', signal: both, headers: { accept: 'image/*' } });
      if (res.status >= 300 && res.status < 400 && res.headers.has('location')) {
        await res.body?.cancel();
        if (hops >= o.maxRedirects) throw badParam(param, `${param}: more than ${o.maxRedirects} redirects from ${url.href}`, 'image_fetch_failed');
        url = new URL(res.headers.get('location')!, url);
        if (url.protocol !== 'http:' && url.protocol !== 'https:') throw badParam(param, `${param}: redirected to a ${url.protocol} URL`, 'image_fetch_failed');
        continue;
      }
      if (!res.ok) {
        await res.body?.cancel();
        throw badParam(param, `${param}: ${url.href} answered HTTP ${res.status}`, 'image_fetch_failed');
      }
      const type = (res.headers.get('content-type') ?? '').split(';')[0]!.trim().toLowerCase();
      if (type && !type.startsWith('image/') && type !== 'application/octet-stream' && type !== 'binary/octet-stream') {
        await res.body?.cancel();
        throw badParam(param, `${param}: ${url.href} is '${type}', not an image`, 'invalid_image_format');
      }
      const big = () => badParam(param, `${param}: ${url.href} is larger than the ${mib(o.maxBytes)} an image may be`, 'image_too_large');
      if (Number(res.headers.get('content-length') ?? 0) > o.maxBytes) {
        await res.body?.cancel();
        throw big();
      }
      const chunks: Uint8Array[] = [];
      let size = 0;
      for await (const c of res.body ?? []) {
        size += c.length;
        if (size > o.maxBytes) {
          await res.body?.cancel().catch(() => {});
          throw big();
        }
        chunks.push(c);
      }
      return new Uint8Array(Buffer.concat(chunks));
    }
  } catch (e) {
    if (e instanceof ApiError) throw e;
    if (timeout.aborted) throw tooSlow();
    if (signal?.aborted) throw e;
    const why = (e as Error & { cause?: Error }).cause?.message ?? (e as Error).message;
    throw badParam(param, `${param}: could not fetch ${url.href}: ${why}`, 'image_fetch_failed');
  }
}

/** The bytes an image URL names, checked to be an image of at most maxPixels by its header. */
async function imageBytes(ref: ImageRef, opts: ImageFetchOptions = {}, signal?: AbortSignal): Promise<Uint8Array> {
  const o = { ...DEFAULTS, ...opts };
  const { url, param } = ref;
  let bytes: Uint8Array;
  if (/^data:/i.test(url)) bytes = dataUrl(url, param, o.maxBytes);
  else {
    let u: URL;
    try {
      u = new URL(url);
    } catch {
      throw badParam(param, `${param}: '${url.slice(0, 100)}' is not a URL (send http(s):// or data:image/...;base64,...)`, 'invalid_image_url');
    }
    if (u.protocol !== 'http:' && u.protocol !== 'https:') throw badParam(param, `${param}: ${u.protocol} URLs are not supported (send http(s):// or data:image/...;base64,...)`, 'invalid_image_url');
    if (!o.remote) throw badParam(param, `${param}: this server does not fetch image URLs (serve --no-remote-images); send the image as a data: URL`, 'remote_images_disabled');
    bytes = await fetchUrl(u, param, o, signal);
  }
  if (bytes.length > o.maxBytes) throw badParam(param, `${param}: the image is larger than ${mib(o.maxBytes)}`, 'image_too_large');
  try {
    const { width, height } = probeImage(bytes);
    if (width * height > o.maxPixels) throw new Error(`the image is ${width} x ${height} pixels, more than the ${o.maxPixels} allowed`);
  } catch (e) {
    throw badParam(param, `${param}: ${(e as Error).message}`, 'invalid_image');
  }
  return bytes;
}

/**
 * The request's images as the model's rows, in prompt order: fetched at once, encoded by the
 * engine (which takes them one at a time). A model without a vision tower is a 400 naming it.
 */
export async function encodeImages(cm: ChatModel, refs: readonly ImageRef[], opts: ImageFetchOptions = {}, signal?: AbortSignal): Promise<ImageEmbedding[]> {
  if (!refs.length) return [];
  const vision = cm.vision;
  if (!vision)
    throw badParam(
      refs[0]!.param.replace(/\.image_url$/, ''),
      `the model '${cm.name}' has no vision tower, so it cannot read images (a GGUF model needs its mmproj file: --mmproj)`,
      'model_not_multimodal',
    );
  const most = opts.maxImages ?? DEFAULTS.maxImages;
  if (refs.length > most) throw badParam(refs[most]!.param, `${refs.length} images in one request; this server takes at most ${most}`, 'too_many_images');
  const bytes = await Promise.all(refs.map((r) => imageBytes(r, opts, signal)));
  const out: ImageEmbedding[] = [];
  for (let i = 0; i < refs.length; i++) {
    try {
      out.push(await vision.encode(bytes[i]!, imageHash(bytes[i]!), signal));
    } catch (e) {
      const err = e as Error;
      if (err.name === 'ImageError') throw badParam(refs[i]!.param, `${refs[i]!.param}: ${err.message}`, 'invalid_image');
      if (err.name === 'ImageQueueFull') throw new ApiError(503, err.message, null, 'server_busy');
      throw e;
    }
  }
  return out;
}

/**
 * A chat message's content part: text, or an image (`{type: 'image_url', image_url: {url}}`, the
 * url also as a bare string as vLLM takes it) as the part the chat template reads ({type: 'image'})
 * with its URL and the parameter naming it. `at`: the part's parameter name.
 */
export function chatPart(p: unknown, at: string): { type: 'text'; text: string } | { type: 'image'; url: string; param: string } {
  const o = typeof p === 'object' && p !== null && !Array.isArray(p) ? (p as Record<string, unknown>) : undefined;
  if (o?.type === 'text' && typeof o.text === 'string') return { type: 'text', text: o.text };
  if (o?.type === 'image_url') {
    const iu = o.image_url;
    const url = typeof iu === 'string' ? iu : typeof iu === 'object' && iu !== null ? (iu as Record<string, unknown>).url : undefined;
    if (typeof url !== 'string' || !url) throw badParam(`${at}.image_url`, `${at}.image_url must be {"url": "https://... or data:image/...;base64,..."}`, 'invalid_type');
    return { type: 'image', url, param: `${at}.image_url` };
  }
  throw badParam(at, `${at}: only text and image_url parts are supported, got ${JSON.stringify(o ? o.type : p)}`, 'unsupported_value');
}

/** The image parts of chat messages (content arrays holding {type: 'image', url, param}), in prompt order. */
export function imageRefs(messages: readonly Record<string, unknown>[]): ImageRef[] {
  const out: ImageRef[] = [];
  for (const m of messages)
    if (Array.isArray(m.content)) for (const p of m.content as Record<string, unknown>[]) if (p.type === 'image' && typeof p.url === 'string') out.push({ url: p.url, param: String(p.param) });
  return out;
}
