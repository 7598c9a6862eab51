// What the side-by-side benchmarks (peer.ts, embed.ts) share: node-llama-cpp installed on demand
// into .peer/ (gitignored), outside the test path, with its prebuilt CPU binary only (no CUDA/Vulkan
// packages, no download or build of llama.cpp); fresh-process runs that print one JSON line; medians.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const PEER = path.join(ROOT, '.peer');
const NLC = '3.22.1';

export function ensurePeer(): void {
  if (fs.existsSync(path.join(PEER, 'node_modules', 'node-llama-cpp', 'package.json'))) return;
  fs.mkdirSync(PEER, { recursive: true });
  fs.writeFileSync(
    path.join(PEER, 'package.json'),
    JSON.stringify(
      {
        name: 'qwen-ts-peer',
        private: true,
        type: 'module',
        dependencies: { 'node-llama-cpp': NLC, '@node-llama-cpp/linux-x64': NLC },
      },
      null,
      2,
    ),
  );
  fs.writeFileSync(path.join(PEER, '.npmrc'), 'omit=optional\n'); // skip 600+ MB of GPU builds
  process.stderr.write(`installing node-llama-cpp ${NLC} into ${PEER} ...\n`);
  const r = spawnSync('npm', ['install', '--no-audit', '--no-fund'], {
    cwd: PEER,
    stdio: 'inherit',
    env: { ...process.env, NODE_LLAMA_CPP_SKIP_DOWNLOAD: 'true' },
  });
  if (r.status !== 0) throw new Error('npm install of node-llama-cpp failed');
}

/** Run a command in a fresh process and parse the last line of its stdout as JSON. */
export function runJson<T>(cmd: string, args: string[], cwd: string): T {
  const r = spawnSync(cmd, args, { cwd, encoding: 'utf8', maxBuffer: 1 << 24 });
  const line = r.stdout.trim().split('\n').pop() ?? '';
  try {
    return JSON.parse(line) as T;
  } catch {
    throw new Error(`${path.basename(args[0] ?? cmd)} failed (exit ${r.status}):\n${r.stderr}`);
  }
}

export const median = (a: number[]) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)]!;

export const machine = () => `${os.cpus()[0]?.model ?? '?'}, ${os.availableParallelism()} cpus, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB`;
