// Download one blob: into `<blob>.incomplete`, resumed with an HTTP Range from whatever an earlier
// attempt left, hashed as it arrives, and renamed to its final name only once size and hash match.
// A partial file keeps its `.incomplete` name whatever happens, so it is never taken for a whole one.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createHash, type Hash } from 'node:crypto';
import { fail, printable, QwenError } from '../errors.js';
import { backoffMs, open, pump, sleep, TransientError, type NetOptions, type Opened } from './http.js';

export type HashKind = 'sha256' | 'git-sha1';

/** File writes, replaceable in tests (a full disk is simulated by a write that fails with ENOSPC). */
export interface BlobIo {
  write(fh: fs.promises.FileHandle, data: Uint8Array, position: number): Promise<void>;
}

export const DEFAULT_IO: BlobIo = {
  async write(fh, data, position) {
    let off = 0;
    while (off < data.length) off += (await fh.write(data, off, data.length - off, position + off)).bytesWritten;
  },
};

export interface BlobJob {
  /** the file's path in the repo, for messages */
  label: string;
  url: string;
  authHeaders: Record<string, string>;
  /** final path; the partial file is `${blob}.incomplete` */
  blob: string;
  size: number;
  /** expected digest; without one, the file is checked by size and named by its sha256 */
  hash?: { kind: HashKind; hex: string };
  /** checks the hub's headers (e.g. X-Linked-Etag) before any byte is written; throws QwenError */
  check?: (o: Opened) => void;
  /** bytes now in the partial file, after each chunk (and after a restart) */
  onProgress?: (have: number) => void;
}

function newHash(kind: HashKind, size: number): Hash {
  if (kind === 'sha256') return createHash('sha256');
  // git's blob id: sha1 over "blob <size>\0" and the content; HF uses it as the ETag of non-LFS files
  return createHash('sha1').update(`blob ${size}\0`);
}

async function hashPrefix(file: string, h: Hash, n: number): Promise<void> {
  if (n === 0) return;
  for await (const c of fs.createReadStream(file, { start: 0, end: n - 1 })) h.update(c as Buffer);
}

function sizeOf(p: string): number | undefined {
  try {
    return fs.statSync(p).size;
  } catch {
    return undefined;
  }
}

export function fmtBytes(n: number): string {
  const u = ['B', 'KB', 'MB', 'GB', 'TB'];
  let i = 0;
  while (n >= 1024 && i < u.length - 1) {
    n /= 1024;
    i++;
  }
  return `${i === 0 ? n : n.toFixed(1)} ${u[i]}`;
}

function writeError(e: unknown, job: BlobJob, part: string, have: number): Error {
  const code = (e as NodeJS.ErrnoException).code;
  if (code === 'ENOSPC' || code === 'EDQUOT') {
    return new QwenError(
      `no space left on the disk holding ${path.dirname(job.blob)} while writing ${job.label} ` +
        `(${fmtBytes(have)} of ${fmtBytes(job.size)} written). Free some space and pull again: the download resumes from ${part}`,
    );
  }
  if (code === 'EACCES' || code === 'EROFS' || code === 'EPERM') {
    return new QwenError(`cannot write ${part} (${code}): the cache folder is not writable; set HF_HOME (or MODELSCOPE_CACHE) to a writable folder`);
  }
  return e as Error;
}

/** One attempt: returns the digest of the complete partial file. */
async function attempt(job: BlobJob, part: string, kind: HashKind, net: NetOptions, io: BlobIo): Promise<{ digest: string; resumed: boolean }> {
  let have = sizeOf(part) ?? 0;
  if (have > job.size) {
    fs.rmSync(part, { force: true });
    have = 0;
  }
  let h = newHash(kind, job.size);
  await hashPrefix(part, h, have);
  const resumed = have > 0;
  if (have < job.size) {
    const o = await open(job.url, { headers: have > 0 ? { range: `bytes=${have}-` } : {}, authHeaders: job.authHeaders }, net);
    try {
      job.check?.(o);
    } catch (e) {
      o.abort();
      throw e;
    }
    const st = o.res.status;
    if (st === 416) {
      o.abort();
      // without a Range header there is nothing to start over from: asking again gets the same answer
      if (have === 0) fail(`${job.label}: the server answered a plain download with HTTP 416 (range not satisfiable); the server is wrong`);
      fs.rmSync(part, { force: true });
      throw new TransientError(`the server refused to resume ${job.label} at byte ${have}; starting it over`);
    }
    if (st === 200 && have > 0) {
      // the server ignored Range: take the whole file again
      have = 0;
      h = newHash(kind, job.size);
    } else if (st === 206) {
      const m = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(o.res.headers.get('content-range') ?? '');
      if (!m || Number(m[1]) !== have) {
        o.abort();
        fs.rmSync(part, { force: true });
        throw new TransientError(`the server answered the resume of ${job.label} with the wrong range (${printable(o.res.headers.get('content-range') ?? 'none', 80)}); starting it over`);
      }
      if (m[3] !== '*' && Number(m[3]) !== job.size) fail(`${job.label}: the server has ${m[3]} bytes, but the hub lists ${job.size}; the repository changed or the server is wrong`);
    }
    const len = o.res.headers.get('content-length');
    if (st === 200 && len !== null && Number(len) !== job.size) {
      o.abort();
      fail(`${job.label}: the server sends ${printable(len, 40)} bytes, but the hub lists ${job.size}; the repository changed or the server is wrong`);
    }
    job.onProgress?.(have);
    let fh: fs.promises.FileHandle;
    try {
      fh = await fs.promises.open(part, have > 0 ? 'r+' : 'w');
    } catch (e) {
      o.abort();
      throw writeError(e, job, part, have);
    }
    try {
      await pump(o, net.idleMs, async (c) => {
        if (have + c.length > job.size) fail(`${job.label}: the server sent more than the ${job.size} bytes the hub lists`);
        try {
          await io.write(fh, c, have);
        } catch (e) {
          throw writeError(e, job, part, have);
        }
        h.update(c);
        have += c.length;
        job.onProgress?.(have);
      });
    } catch (e) {
      o.abort();
      throw e;
    } finally {
      await fh.close();
    }
    if (have < job.size) throw new TransientError(`the connection to ${new URL(o.url).host} closed after ${fmtBytes(have)} of ${fmtBytes(job.size)}`);
  }
  return { digest: h.digest('hex'), resumed };
}

/** Download, verify and place one blob; returns its final path. Retries transient failures with backoff. */
export async function downloadBlob(job: BlobJob, net: NetOptions, io: BlobIo = DEFAULT_IO): Promise<string> {
  const part = `${job.blob}.incomplete`;
  const kind = job.hash?.kind ?? 'sha256';
  fs.mkdirSync(path.dirname(job.blob), { recursive: true });
  let restarted = false;
  for (let n = 0; ; n++) {
    let r: { digest: string; resumed: boolean };
    try {
      r = await attempt(job, part, kind, net, io);
    } catch (e) {
      if (!(e instanceof TransientError)) throw e;
      if (n >= net.retries) {
        const kept = fs.existsSync(part) ? ` Run the same command again to resume from the ${fmtBytes(sizeOf(part) ?? 0)} kept in ${part}.` : '';
        throw new QwenError(`could not download ${job.label}: ${e.message} (gave up after ${n + 1} attempt${n ? 's' : ''}).${kept}`);
      }
      await sleep(backoffMs(n, net, e.retryAfterMs));
      continue;
    }
    if (job.hash && r.digest !== job.hash.hex) {
      fs.rmSync(part, { force: true });
      if (r.resumed && !restarted) {
        // the bytes kept from an earlier run may be the bad ones: one clean try
        restarted = true;
        continue;
      }
      throw new QwenError(
        `${job.label}: the downloaded bytes do not match the hub's ${job.hash.kind} ` +
          `(expected ${job.hash.hex}, got ${r.digest}); the download was discarded. The server or a proxy sent wrong data: try again later`,
      );
    }
    const final = job.hash ? job.blob : path.join(path.dirname(job.blob), r.digest);
    fs.renameSync(part, final);
    return final;
  }
}

/** Bytes free for an unprivileged user on the disk holding `dir`, when the platform can tell. */
export async function freeBytes(dir: string): Promise<number | undefined> {
  let d = dir;
  while (!fs.existsSync(d) && path.dirname(d) !== d) d = path.dirname(d);
  try {
    const s = await fs.promises.statfs(d);
    return s.bavail * s.bsize;
  } catch {
    return undefined;
  }
}
