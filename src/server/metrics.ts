// GET /metrics: counters and gauges in Prometheus' text exposition format (version 0.0.4), as vLLM
// and llama.cpp's server export them: requests by endpoint and status, prompt / cached / generated
// tokens, generation throughput, the scheduler's queue, and the prefix cache's hit rate.
import type { Scheduler } from '../generate/scheduler.js';

export const METRICS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

/** A request's tokens as its usage object reports them. */
export interface Usage {
  prompt: number;
  cached: number;
  completion: number;
}

// tokens per second: generated tokens of the requests that ended in this window, each spread evenly
// over its own wall time, so a long request counts only the part of it inside the window
const WINDOW_MS = 60_000;

export class Metrics {
  private readonly requests = new Map<string, number>(); // `${endpoint}\n${status}` -> count
  private prompt = 0;
  private cached = 0;
  private completion = 0;
  private recent: { start: number; end: number; tokens: number }[] = [];

  /** A request ended (`start`, `end`: performance.now() times). */
  record(endpoint: string, status: number, usage: Usage | undefined, start: number, end: number): void {
    const key = `${endpoint}\n${status}`;
    this.requests.set(key, (this.requests.get(key) ?? 0) + 1);
    if (!usage) return;
    this.prompt += usage.prompt;
    this.cached += usage.cached;
    this.completion += usage.completion;
    if (usage.completion > 0) this.recent.push({ start, end, tokens: usage.completion });
  }

  private tokensPerSecond(now: number): number {
    const from = now - WINDOW_MS;
    this.recent = this.recent.filter((r) => r.end > from);
    let tokens = 0;
    for (const r of this.recent) {
      const span = Math.max(r.end - r.start, 1);
      tokens += (r.tokens * (r.end - Math.max(r.start, from))) / span;
    }
    return tokens / (WINDOW_MS / 1000);
  }

  render(scheduler: Pick<Scheduler, 'load' | 'activeCount'> & Partial<Pick<Scheduler, 'stats'>>, now = performance.now()): string {
    const out: string[] = [];
    const family = (name: string, type: 'counter' | 'gauge', help: string, samples: [labels: string, value: number][]) => {
      out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
      for (const [labels, v] of samples) out.push(`${name}${labels} ${formatValue(v)}`);
    };
    const byRoute = [...this.requests]
      .sort(([a], [b]) => (a < b ? -1 : 1))
      .map(([k, v]): [string, number] => {
        const [endpoint, status] = k.split('\n') as [string, string];
        return [`{endpoint="${escapeLabel(endpoint)}",status="${status}"}`, v];
      });
    family('qwen_ts_requests_total', 'counter', 'HTTP requests answered, by endpoint and status (499: the client closed the connection first).', byRoute);
    family('qwen_ts_prompt_tokens_total', 'counter', 'Prompt tokens of completed generations.', [['', this.prompt]]);
    family('qwen_ts_prompt_tokens_cached_total', 'counter', 'Prompt tokens whose keys and values came from the prefix cache.', [['', this.cached]]);
    family('qwen_ts_generation_tokens_total', 'counter', 'Generated (completion) tokens.', [['', this.completion]]);
    family('qwen_ts_generation_tokens_per_second', 'gauge', 'Generated tokens per second over the last 60 s (requests that ended in it, spread over their wall time).', [
      ['', this.tokensPerSecond(now)],
    ]);
    family('qwen_ts_requests_running', 'gauge', 'Sequences generating now (one per choice).', [['', scheduler.activeCount]]);
    family('qwen_ts_requests_waiting', 'gauge', 'Sequences queued for a free slot (beyond --parallel).', [['', scheduler.load - scheduler.activeCount]]);
    family('qwen_ts_prefix_cache_hit_rate', 'gauge', 'Cached prompt tokens / prompt tokens since the server started (0 before any prompt).', [['', this.prompt ? this.cached / this.prompt : 0]]);
    // the engine's own counters (an engine thread's as of its last finished request)
    const { prefixCache: pc, speculation: spec } = scheduler.stats ?? {};
    if (pc) {
      family('qwen_ts_prefix_cache_bytes', 'gauge', 'Memory the prefix cache holds (keys, values and recurrent-state checkpoints).', [['', pc.bytes]]);
      family('qwen_ts_prefix_cache_budget_bytes', 'gauge', 'The prefix cache budget (--cache-mem).', [['', pc.budget]]);
      family('qwen_ts_prefix_cache_blocks', 'gauge', 'Cached 16-token blocks.', [['', pc.blocks]]);
      family('qwen_ts_prefix_cache_evictions_total', 'counter', 'Blocks evicted to stay within the budget.', [['', pc.evictions]]);
    }
    if (spec) {
      family('qwen_ts_spec_draft_tokens_total', 'counter', 'Tokens proposed by speculative decoding (draft model, n-gram lookup) in finished requests.', [['', spec.proposed]]);
      family('qwen_ts_spec_accepted_tokens_total', 'counter', 'Proposed tokens the target model kept.', [['', spec.accepted]]);
      family('qwen_ts_spec_acceptance_rate', 'gauge', 'Accepted / proposed tokens since the server started (0 before any proposal).', [['', spec.proposed ? spec.accepted / spec.proposed : 0]]);
    }
    return out.join('\n') + '\n';
  }
}

function formatValue(v: number): string {
  return Number.isFinite(v) ? String(v) : v > 0 ? '+Inf' : v < 0 ? '-Inf' : 'NaN';
}

function escapeLabel(s: string): string {
  return s.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}
