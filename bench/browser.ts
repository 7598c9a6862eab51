// node dist/bench/browser.js --model <file.gguf> [--prompt-tokens 128] [--gen-tokens 64] [--reps 3] [--threads N] [--chromium /usr/bin/chromium] [--node PATH]
// In-browser prefill / decode tokens per second (qwen-ts web's page in headless Chromium, driven by
// playwright-core) next to Node's (`qwen-ts bench` in a fresh process), alternating, on the same
// GGUF file; prints both sides' medians and the ratios browser / Node as a table and JSON.
//
// Both sides prefill the same pseudo-random prompt (src/cli/bench.ts's benchPrompt) in one batch
// and decode greedily. Node: `qwen-ts bench --json` (one forward pass per token, EOS ignored, default
// threads: every core). Browser: the page's BrowserEngine (cross-origin isolated, so one kernel
// thread per core) runs generate({ ids }, { temperature: 0, max_tokens: G + 1 }) on the prompt
// ids: prefill = P / (seconds to the first token), decode = (tokens - 1) / (seconds after it),
// each token one forward pass, as Node's; the engine's own timings (GenerateStats), so the page's
// message passing is not counted. Each side warms up first (Node: bench --warmup 1; the browser: a
// generation of 32 prompt tokens and 4 decoded). --node: the Node binary for Node's side (e.g.
// .peer/node24/package/bin/node, scripts/node-next.sh's Node 24, whose V8 is nearer Chromium's).
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { chromium } from 'playwright-core';
import { benchPrompt } from '../src/cli/bench.js';
import { openGguf } from '../src/formats/gguf.js';
import { createWebServer, modelFilesOf } from '../src/web/server.js';
import { machine, median, ROOT } from './peer_common.js';

interface Side {
  prefill_tps: number;
  decode_tps: number;
}

function vocabOf(file: string): number {
  const g = openGguf(file);
  const tokens = g.metadata.get('tokenizer.ggml.tokens');
  g.close();
  if (Array.isArray(tokens)) return tokens.length;
  throw new Error(`${file}: no tokenizer.ggml.tokens (the bench needs the vocabulary's size)`);
}

export async function run(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      model: { type: 'string' },
      'prompt-tokens': { type: 'string', default: '128' },
      'gen-tokens': { type: 'string', default: '64' },
      reps: { type: 'string', default: '3' },
      chromium: { type: 'string', default: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium' },
      node: { type: 'string', default: process.execPath },
      threads: { type: 'string' },
    },
  });
  if (!values.model || !fs.existsSync(values.model)) throw new Error('--model FILE.gguf is required');
  const model = path.resolve(values.model);
  const count = (name: string, v: string | undefined) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1) throw new Error(`--${name} must be a positive integer, got '${v}'`);
    return n;
  };
  const P = count('prompt-tokens', values['prompt-tokens']);
  const G = count('gen-tokens', values['gen-tokens']);
  const reps = count('reps', values.reps);
  if (values.threads !== undefined) count('threads', values.threads);
  const prompt = benchPrompt(P, vocabOf(model));

  const { files, entry } = modelFilesOf(model);
  const server = createWebServer({ config: { name: path.basename(model), source: { url: `/model/${entry}` } }, modelFiles: files });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  const browser = await chromium.launch({ executablePath: values.chromium, args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-dev-shm-usage'] });
  const page = await browser.newPage();
  page.on('pageerror', (e) => process.stderr.write(`page error: ${e.message}\n`));
  const tl = performance.now();
  await page.goto(base);
  await page.waitForFunction(() => document.body.dataset.state === 'ready' || document.body.dataset.state === 'error', null, { timeout: 600_000 });
  if ((await page.evaluate(() => document.body.dataset.state)) !== 'ready') throw new Error(`the page did not load the model: ${await page.textContent('#error')}`);
  const browserLoad = (performance.now() - tl) / 1000;
  let threads = Number(await page.getAttribute('#threads', 'data-threads'));
  if (values.threads !== undefined && Number(values.threads) !== threads) {
    // the page loads with one thread per core; load again with the count asked for (both sides use it)
    threads = await page.evaluate(
      async ([url, n]) => {
        const web = (globalThis as unknown as { qwenWeb: { engine: { load(s: string, o: unknown): Promise<{ threads: { threads: number } }> }; info?: unknown } }).qwenWeb;
        const info = await web.engine.load(url, { threads: n });
        web.info = info;
        return info.threads.threads;
      },
      [`/model/${entry}`, Number(values.threads)] as const,
    );
  }
  const backendName = await page.evaluate(() => (globalThis as unknown as { qwenWeb: { info?: { backend: string } } }).qwenWeb.info?.backend ?? '?');
  const nodeVersion = spawnSync(values.node, ['--version'], { encoding: 'utf8' }).stdout.trim();

  const inBrowser = async (ids: number[], g: number): Promise<Side> => {
    const s = await page.evaluate(
      async ([ids, g]) => {
        const web = (
          globalThis as unknown as { qwenWeb: { engine: { generate(i: unknown, o: unknown): AsyncGenerator<unknown, { prefillSeconds: number; decodeSeconds: number; completionTokens: number }> } } }
        ).qwenWeb;
        const it = web.engine.generate({ ids }, { temperature: 0, max_tokens: g + 1 });
        for (;;) {
          const r = await it.next();
          if (r.done) return r.value;
        }
      },
      [ids, g] as const,
    );
    if (s.completionTokens !== g + 1) process.stderr.write(`note: the browser stopped after ${s.completionTokens} tokens (an end token); decode figure over those\n`);
    return { prefill_tps: ids.length / s.prefillSeconds, decode_tps: (s.completionTokens - 1) / s.decodeSeconds };
  };
  const inNode = (): Side & { load_s: number; backend: string } => {
    const r = spawnSync(
      values.node,
      [path.join(ROOT, 'dist', 'src', 'cli', 'main.js'), 'bench', '--model', model, '--prompt-tokens', String(P), '--gen-tokens', String(G), '--threads', String(threads), '--json'],
      { encoding: 'utf8' },
    );
    const line = r.stdout.trim().split('\n').pop() ?? '';
    try {
      return JSON.parse(line);
    } catch {
      throw new Error(`qwen-ts bench failed (exit ${r.status}):\n${r.stderr}`);
    }
  };

  await inBrowser(prompt.slice(0, 32), 4); // warm-up: first compilation of the kernels, first pages of memory
  const b: Side[] = [];
  const n: (Side & { load_s: number; backend: string })[] = [];
  for (let i = 0; i < reps; i++) {
    b.push(await inBrowser(prompt, G));
    n.push(inNode());
    process.stderr.write(
      `rep ${i + 1}: browser ${b[i]!.prefill_tps.toFixed(1)} / ${b[i]!.decode_tps.toFixed(1)}, node ${n[i]!.prefill_tps.toFixed(1)} / ${n[i]!.decode_tps.toFixed(1)} tok/s (prefill / decode)\n`,
    );
  }
  await browser.close();
  server.closeAllConnections();
  server.close();

  const med = (a: Side[]) => ({ prefill_tps: median(a.map((x) => x.prefill_tps)), decode_tps: median(a.map((x) => x.decode_tps)) });
  const res = {
    machine: machine(),
    model: path.basename(model),
    prompt_tokens: P,
    gen_tokens: G,
    reps,
    threads,
    browser: { ...med(b), load_s: browserLoad, chromium: browser.version(), backend: backendName, reps: b },
    node: { ...med(n), load_s: median(n.map((x) => x.load_s)), backend: n[0]?.backend, version: nodeVersion, reps: n.map(({ prefill_tps, decode_tps }) => ({ prefill_tps, decode_tps })) },
  };
  const ratio = { prefill: res.browser.prefill_tps / res.node.prefill_tps, decode: res.browser.decode_tps / res.node.decode_tps };
  process.stdout.write(`${res.model}, ${P} prompt / ${G} generated tokens, ${threads} threads, median of ${reps} (${res.machine})\n`);
  process.stdout.write(`| | prefill tok/s | decode tok/s | load s |\n|---|---|---|---|\n`);
  process.stdout.write(`| Chromium ${res.browser.chromium} (${backendName}) | ${res.browser.prefill_tps.toFixed(1)} | ${res.browser.decode_tps.toFixed(1)} | ${browserLoad.toFixed(1)} |\n`);
  process.stdout.write(`| Node ${nodeVersion} (${res.node.backend}) | ${res.node.prefill_tps.toFixed(1)} | ${res.node.decode_tps.toFixed(1)} | ${res.node.load_s.toFixed(1)} |\n`);
  process.stdout.write(`| browser / Node | ${ratio.prefill.toFixed(2)}x | ${ratio.decode.toFixed(2)}x | |\n`);
  process.stdout.write(`${JSON.stringify({ ...res, ratio })}\n`);
}

const isEntry = process.argv[1] && path.resolve(process.argv[1]) === path.resolve(new URL(import.meta.url).pathname);
if (isEntry) await run(process.argv.slice(2));
