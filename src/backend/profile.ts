// Time spent in each backend op, for `qwen-ts bench --profile`: a wrapper that times every call
// (the ops are synchronous, so wall time per call is the op's own time, worker threads included).
import type { Backend } from './backend.js';

export interface OpProfile {
  ms: number;
  calls: number;
}

export class ProfiledBackend {
  readonly backend: Backend;
  /** phase -> op -> time */
  readonly times = new Map<string, Map<string, OpProfile>>();
  phase = 'all';
  /** `key` names the entry a call counts under (default: the op's name; e.g. split by weight type) */
  constructor(inner: Backend, key: (op: string, args: unknown[]) => string = (op) => op) {
    const self = this;
    this.backend = new Proxy(inner, {
      get(target, prop, receiver) {
        const v = Reflect.get(target, prop, receiver);
        if (typeof v !== 'function' || typeof prop !== 'string' || ['alloc', 'free', 'weight', 'place', 'beginPass', 'endPass', 'dispose'].includes(prop)) {
          return typeof v === 'function' ? v.bind(target) : v;
        }
        return (...args: unknown[]) => {
          const t0 = performance.now();
          try {
            return v.apply(target, args);
          } finally {
            let m = self.times.get(self.phase);
            if (!m) self.times.set(self.phase, (m = new Map()));
            const k = key(prop, args),
              p = m.get(k) ?? { ms: 0, calls: 0 };
            p.ms += performance.now() - t0;
            p.calls++;
            m.set(k, p);
          }
        };
      },
    });
  }

  /** A table per phase: op, total ms, share, calls. */
  report(): string {
    const lines: string[] = [];
    for (const [phase, m] of this.times) {
      const total = [...m.values()].reduce((a, p) => a + p.ms, 0);
      lines.push(`${phase}: ${total.toFixed(1)} ms in backend ops`);
      for (const [op, p] of [...m].sort((a, b) => b[1].ms - a[1].ms)) {
        lines.push(`  ${op.padEnd(12)} ${p.ms.toFixed(1).padStart(9)} ms ${((100 * p.ms) / total).toFixed(1).padStart(5)}%  ${String(p.calls).padStart(6)} calls`);
      }
    }
    return lines.join('\n');
  }
}
