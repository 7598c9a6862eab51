// The CLI under Bun and Deno (npm devDependencies `bun` and `deno`), WebAssembly backend on 2 worker
// threads, against Node's output: `logits --all` on three fixtures (Qwen3 Q4_K_M GGUF, Qwen3.5 Q8_0
// GGUF, Qwen3-MoE safetensors), `run` greedy, and `serve` answering the official openai client.
// Deno (V8) is bit-identical to Node. Bun (JavaScriptCore) is bit-identical on the plain-SIMD
// kernels (--backend wasm-simd); on relaxed SIMD it computes relaxed_madd as a rounded multiply and
// add where V8 fuses it, so its `--backend wasm` equals Node's wasm-simd output (or Node's wasm
// output should JavaScriptCore start fusing), never something third.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import OpenAI from 'openai';
import { chatModelDir, fixtureDir, ROOT } from '../helpers.js';

const CLI = path.join(ROOT, 'dist', 'src', 'cli', 'main.js');
const RUNTIMES: Record<string, string[]> = { bun: [], deno: ['run', '-A'] };
const MODELS = [
  ['qwen3-tiny-tied', 'model-q4_k_m.gguf'],
  ['qwen35-tiny', 'model-q8_0.gguf'],
  ['qwen3moe-tiny', ''],
] as const;
const TOKENS = '1,2,3,4,5,6,7,8,9,10,11,12';
const PROMPT = ['Hello', '--max-tokens', '8', '--temperature', '0'];

/** [binary, its arguments before the script], or null when the npm package is not installed. */
function runtime(name: string): [string, string[]] | null {
  const bin = path.join(ROOT, 'node_modules', '.bin', name);
  return fs.existsSync(bin) ? [bin, RUNTIMES[name]!] : null;
}

const NODE: [string, string[]] = [process.execPath, []];
const nodeOut = new Map<string, string>(); // Node's answers, computed once for both runtimes

function cli(cmd: [string, string[]], args: string[]): string {
  const key = args.join(' ');
  if (cmd === NODE && nodeOut.has(key)) return nodeOut.get(key)!;
  const r = spawnSync(cmd[0], [...cmd[1], CLI, ...args], { encoding: 'utf8', timeout: 60_000 });
  assert.equal(r.status, 0, `${path.basename(cmd[0])} ${key}:\n${r.stderr}`);
  if (cmd === NODE) nodeOut.set(key, r.stdout);
  return r.stdout;
}

const logits = (cmd: [string, string[]], [dir, file]: readonly [string, string], backend: string) =>
  cli(cmd, ['logits', '--model', path.join(fixtureDir(`models/${dir}`), file), '--all', '--tokens', TOKENS, '--threads', '2', '--backend', backend]);

/** serve on a free port under `cmd`; resolves with its base URL and a stop function. */
function serve(cmd: [string, string[]], model: string): Promise<{ url: string; stop: () => void }> {
  const proc = spawn(cmd[0], [...cmd[1], CLI, 'serve', model, '--port', '0', '--threads', '2'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => (proc.kill(), reject(new Error(`serve did not start:\n${err}`))), 60_000);
    proc.stderr!.on('data', (d: Buffer) => {
      err += d.toString();
      const m = /serving \S+ at (http:\/\/\S+\/v1)/.exec(err);
      if (m) clearTimeout(timer), resolve({ url: m[1]!, stop: () => proc.kill() });
    });
    proc.on('exit', (code) => (clearTimeout(timer), reject(new Error(`serve exited (${code}):\n${err}`))));
  });
}

for (const name of Object.keys(RUNTIMES)) {
  const cmd = runtime(name);
  const skip = cmd ? false : `${name} is not installed (npm devDependency '${name}'): skipped`;

  test(`${name}: logits --all on 3 fixtures, 2 threads, equal Node's`, { skip }, () => {
    for (const model of MODELS) {
      const simd = logits(NODE, model, 'wasm-simd');
      const what = model.join('/');
      assert.ok(simd.startsWith('{"logits":[['), what);
      assert.equal(logits(cmd!, model, 'wasm-simd'), simd, `${what}: ${name} wasm-simd`);
      const relaxed = logits(cmd!, model, 'wasm'),
        nodeRelaxed = logits(NODE, model, 'wasm');
      if (name === 'deno') assert.equal(relaxed, nodeRelaxed, `${what}: deno wasm`);
      else assert.ok(relaxed === nodeRelaxed || relaxed === simd, `${what}: bun wasm equals neither of Node's outputs`);
    }
  });

  test(`${name}: run greedy and serve (openai client) give Node's answer`, { skip }, async () => {
    const model = chatModelDir();
    const want = JSON.parse(cli(NODE, ['run', model, ...PROMPT, '--json', '--threads', '2'])).content as string;
    assert.ok(want.length > 0);
    assert.equal(JSON.parse(cli(cmd!, ['run', model, ...PROMPT, '--json', '--threads', '2'])).content, want, `${name} run`);
    const s = await serve(cmd!, model);
    try {
      const client = new OpenAI({ baseURL: s.url, apiKey: 'none' });
      const r = await client.chat.completions.create({ model, messages: [{ role: 'user', content: 'Hello' }], max_tokens: 8, temperature: 0 });
      assert.equal(r.choices[0]?.message.content, want, `${name} serve`);
    } finally {
      s.stop();
    }
  });
}
