// A one-line progress bar on stderr, redrawn in place on a terminal and silent otherwise
// (logs and pipes get no carriage-return noise).

export class ProgressBar {
  private last = 0;
  private readonly tty: boolean;
  constructor(
    private readonly label: string,
    private readonly stream: NodeJS.WriteStream = process.stderr,
  ) {
    this.tty = Boolean(stream.isTTY);
  }

  update(done: number, total: number): void {
    if (!this.tty) return;
    const now = Date.now();
    if (done < total && now - this.last < 100) return; // at most 10 redraws a second
    this.last = now;
    const frac = total > 0 ? Math.min(1, done / total) : 1;
    this.stream.write(`\r${this.label} ${bar(frac)} ${(frac * 100).toFixed(0).padStart(3)}% ${fmtBytes(done)}/${fmtBytes(total)}`);
  }

  done(): void {
    if (this.tty) this.stream.write('\r\x1b[2K');
  }
}

/** A bar of `width` cells, `frac` (0..1) of them filled. */
export function bar(frac: number, width = 30): string {
  return '█'.repeat(Math.round(Math.min(1, Math.max(0, frac)) * width)).padEnd(width, '░');
}

export function fmtBytes(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)} GB`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)} MB`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(0)} kB`;
  return `${n} B`;
}
