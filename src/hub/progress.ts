// Pull progress: on a terminal, a bar for the file being downloaded and one for the whole model,
// redrawn in place; otherwise (a pipe, a log file, CI) one plain line per file, so logs stay readable.
import { fmtBytes } from './download.js';

export interface PullPlanInfo {
  label: string;
  commit: string;
  files: { path: string; size: number; cached: boolean }[];
}

export interface PullProgress {
  start(info: PullPlanInfo): void;
  /** bytes of `path` now on disk (including what an earlier run left) */
  file(path: string, have: number): void;
  fileDone(path: string, how: 'downloaded' | 'cached'): void;
  note(msg: string): void;
  end(): void;
}

export const SILENT: PullProgress = { start() {}, file() {}, fileDone() {}, note() {}, end() {} };

interface Out {
  isTTY?: boolean;
  columns?: number;
  write(s: string): unknown;
}

function bar(frac: number, width: number): string {
  const n = Math.max(0, Math.min(width, Math.round(frac * width)));
  return '█'.repeat(n) + '░'.repeat(width - n);
}

export function streamProgress(out: Out = process.stderr): PullProgress {
  const tty = !!out.isTTY;
  const sizes = new Map<string, number>();
  const have = new Map<string, number>();
  let total = 0;
  let current = '';
  let drawn = 0;
  let last = 0;

  const clear = () => {
    if (!drawn) return;
    out.write('\x1b[2K' + '\x1b[1A\x1b[2K'.repeat(drawn - 1) + '\r');
    drawn = 0;
  };
  const draw = (force = false) => {
    const now = Date.now();
    if (!tty || (!force && now - last < 100)) return;
    last = now;
    clear();
    const width = Math.max(10, Math.min(40, (out.columns ?? 80) - 50));
    const done = [...have.values()].reduce((a, b) => a + b, 0);
    const lines: string[] = [];
    if (current) {
      const s = sizes.get(current) ?? 0,
        h = have.get(current) ?? 0;
      lines.push(`${bar(s ? h / s : 1, width)} ${fmtBytes(h).padStart(9)} / ${fmtBytes(s).padEnd(9)} ${current}`);
    }
    lines.push(`${bar(total ? done / total : 1, width)} ${fmtBytes(done).padStart(9)} / ${fmtBytes(total).padEnd(9)} total`);
    out.write(lines.join('\n'));
    drawn = lines.length;
  };
  const line = (s: string) => {
    clear();
    out.write(s + '\n');
    draw(true);
  };

  return {
    start(info) {
      for (const f of info.files) {
        sizes.set(f.path, f.size);
        have.set(f.path, 0);
        total += f.size;
      }
      const todo = info.files.filter((f) => !f.cached);
      const bytes = todo.reduce((a, f) => a + f.size, 0);
      line(`pulling ${info.label} (commit ${info.commit.slice(0, 12)}): ${info.files.length} files, ` + (todo.length ? `${todo.length} to download (${fmtBytes(bytes)})` : 'all in the cache'));
    },
    file(p, h) {
      current = p;
      have.set(p, h);
      draw();
    },
    fileDone(p, how) {
      have.set(p, sizes.get(p) ?? 0);
      if (current === p) current = '';
      line(`  ${how === 'cached' ? 'cached    ' : 'downloaded'} ${fmtBytes(sizes.get(p) ?? 0).padStart(9)}  ${p}`);
    },
    note(msg) {
      line(msg);
    },
    end() {
      clear();
    },
  };
}
