// Shared pieces of the hub tests: options pointing a pull at the fixture hub with short timeouts
// and an isolated cache, and logits of a loaded model for end-to-end checks.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { loadModel } from '../../src/models/load.js';
import type { PullOptions } from '../../src/hub/pull.js';
import type { FixtureHub } from './fixture_hub.js';
import { tmpDir } from '../helpers.js';
export { capture } from '../helpers.js';

// A test that forgot its endpoint must fail here, not reach the internet.
process.env.HF_ENDPOINT = 'http://127.0.0.1:1';
process.env.MODELSCOPE_DOMAIN = 'http://127.0.0.1:1';
delete process.env.HF_TOKEN;
delete process.env.MODELSCOPE_API_TOKEN;

export const FAST_NET = { retries: 3, retryBaseMs: 5, retryMaxMs: 20, timeoutMs: 5000, idleMs: 1500 };

/** Pull options for the fixture hub: its URL, a fresh cache, no env (no real token, no real cache). */
export function hubOpts(hub: FixtureHub, cache: string, extra: PullOptions = {}): PullOptions {
  return { cacheDir: cache, endpoint: hub.url, env: { HF_HOME: cache }, net: FAST_NET, freeBytes: async () => undefined, ...extra };
}

export function freshCache(): string {
  return tmpDir('qwen-ts-hub-');
}

/** Last-position logits of tokens 1,2,3 (what `qwen-ts logits --tokens 1,2,3` prints). */
export function logitsOf(p: string): Float32Array {
  const model = loadModel(p);
  const ids = [1, 2, 3];
  const cache = model.newCache(ids.length);
  return model.forward(
    ids.map((token, pos) => ({ token, pos, seq: 0, logits: pos === ids.length - 1 })),
    [cache],
  );
}

/** Every file under `dir`, relative, with `->target` for symlinks. */
export function tree(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string, rel: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) walk(path.join(d, e.name), r);
      else out.push(e.isSymbolicLink() ? `${r}->${fs.readlinkSync(path.join(d, e.name))}` : r);
    }
  };
  walk(dir, '');
  return out.sort();
}
