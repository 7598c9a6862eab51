// A lock file per blob, so two pulls of one model (two processes, or two calls in one process) never
// append to the same `.incomplete` file. Created with O_EXCL; the holder touches it every few seconds,
// and a waiter breaks it when it has gone untouched for `staleMs` or names a dead process on this host.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { tmpSuffix } from './cache.js';

export interface LockOptions {
  /** a lock not refreshed for this long is abandoned (its holder crashed or hung) */
  staleMs?: number;
  pollMs?: number;
  /** called once when we start waiting for another holder */
  onWait?: () => void;
}

function holderDead(file: string): boolean {
  try {
    const info = JSON.parse(fs.readFileSync(file, 'utf8')) as { pid?: number; host?: string };
    if (info.host !== os.hostname() || typeof info.pid !== 'number') return false;
    if (info.pid === process.pid) return false;
    try {
      process.kill(info.pid, 0);
      return false;
    } catch (e) {
      return (e as NodeJS.ErrnoException).code === 'ESRCH';
    }
  } catch {
    return false; // being written right now, or not ours: judge by age only
  }
}

function tryCreate(file: string): boolean {
  try {
    const fd = fs.openSync(file, 'wx');
    try {
      fs.writeSync(fd, JSON.stringify({ pid: process.pid, host: os.hostname(), since: new Date().toISOString() }));
    } finally {
      fs.closeSync(fd);
    }
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw e;
  }
}

/** Run `fn` while holding the lock file `file`. */
export async function withLock<T>(file: string, fn: () => Promise<T>, opts: LockOptions = {}): Promise<T> {
  const staleMs = opts.staleMs ?? 30_000;
  const pollMs = opts.pollMs ?? Math.min(250, staleMs / 4);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  let waited = false;
  while (!tryCreate(file)) {
    let age: number;
    try {
      age = Date.now() - fs.statSync(file).mtimeMs;
    } catch {
      continue; // released between our attempt and the stat: try again at once
    }
    if (age > staleMs || holderDead(file)) {
      // Rename first: of several waiters that judge it stale, exactly one moves it away.
      const moved = `${file}.stale.${tmpSuffix()}`;
      try {
        fs.renameSync(file, moved);
        fs.rmSync(moved, { force: true });
      } catch {
        /* another waiter broke it */
      }
      continue;
    }
    if (!waited) {
      waited = true;
      opts.onWait?.();
    }
    await new Promise((r) => setTimeout(r, pollMs));
  }
  const beat = setInterval(
    () => {
      try {
        const now = new Date();
        fs.utimesSync(file, now, now);
      } catch {
        /* lock broken by someone who judged us stale: the final hash check still protects the blob */
      }
    },
    Math.max(10, staleMs / 4),
  );
  beat.unref();
  try {
    return await fn();
  } finally {
    clearInterval(beat);
    fs.rmSync(file, { force: true });
  }
}
