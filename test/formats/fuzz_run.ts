// Fuzz driver (run by fuzz.test.ts in a child process, so its peak memory can be measured and a
// hang killed): seeded mutations of the fixture GGUF and safetensors files, each loaded and run as
// `qwen-ts logits` would (model + tokenizer + one forward pass on the WebAssembly kernels).
// Every case must end in finite logits or a QwenError of one clean line; anything else (a
// TypeError, a WebAssembly trap, a multi-line or control-character message) is reported as bad.
// usage: node fuzz_run.js <seed> <cases per file> <workdir>
// Prints one JSON line per case that is not ok-or-clean, progress lines "case N", and a summary.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { WasmBackend } from '../../src/backend/wasm.js';
import { QwenError } from '../../src/errors.js';
import { loadModel } from '../../src/models/load.js';
import { loadTokenizer } from '../../src/tokenizer/load.js';
import { fixtureDir } from '../helpers.js';

const [seedArg = '1', countArg = '40', work = '/tmp/qwen-ts-fuzz'] = process.argv.slice(2);
let rng = Number(seedArg) >>> 0 || 1;
/** xorshift32: the same cases for the same seed */
function rand(): number {
  rng ^= rng << 13;
  rng >>>= 0;
  rng ^= rng >>> 17;
  rng ^= rng << 5;
  rng >>>= 0;
  return rng / 4294967296;
}
const int = (n: number) => Math.floor(rand() * n);
const pick = <T>(a: readonly T[]): T => a[int(a.length)]!;

/** the header's length: where most of the interesting bytes are */
function ggufHeaderEnd(b: Buffer): number {
  // tensor data starts after the header; mutate within the first bytes up to a bound
  return Math.min(b.length, 1 << 16);
}
function stHeaderEnd(b: Buffer): number {
  return 8 + Number(b.readBigUInt64LE(0));
}

const BIG = [0n, 1n, 0xffn, 0xffffn, 0xffffffffn, 0x100000000n, 1n << 40n, (1n << 63n) - 1n, (1n << 64n) - 1n];

/** One byte-level mutation of `src` whose header ends at `hend`. */
function mutateBytes(src: Buffer, hend: number): [string, Buffer] {
  const b = Buffer.from(src);
  switch (int(6)) {
    case 0: {
      const at = int(hend);
      const bit = int(8);
      b[at]! ^= 1 << bit;
      return [`flip bit ${bit} of header byte ${at}`, b];
    }
    case 1: {
      const at = int(b.length);
      b[at] = int(256);
      return [`set byte ${at}`, b];
    }
    case 2: {
      const n = int(b.length);
      return [`truncate to ${n}`, b.subarray(0, n)];
    }
    case 3: {
      const at = int(Math.max(1, hend - 8));
      const v = pick(BIG);
      b.writeBigUInt64LE(v, at);
      return [`u64 ${v} at ${at}`, b];
    }
    case 4: {
      const at = int(Math.max(1, hend - 4));
      const v = pick([0, 1, 0xffffffff, 0x7fffffff, 13, 30, 99]);
      b.writeUInt32LE(v, at);
      return [`u32 ${v} at ${at}`, b];
    }
    default: {
      const at = int(b.length);
      const n = 1 + int(64);
      b.fill(int(256), at, at + n);
      return [`fill ${n} bytes at ${at}`, b];
    }
  }
}

/** A structural mutation of a safetensors header: one tensor's fields edited, the JSON rewritten. */
function mutateStHeader(src: Buffer): [string, Buffer] {
  const n = Number(src.readBigUInt64LE(0));
  const h = JSON.parse(src.subarray(8, 8 + n).toString()) as Record<string, any>;
  const names = Object.keys(h).filter((k) => k !== '__metadata__');
  const name = pick(names);
  const t = h[name];
  const other = h[pick(names)];
  let what: string;
  switch (int(9)) {
    case 0: {
      const d = pick([-4, -2, -1, 1, 2, 4, 64]);
      t.data_offsets = t.data_offsets.map((x: number) => x + d);
      what = `shift ${name} by ${d}`;
      break;
    }
    case 1:
      t.data_offsets = [...other.data_offsets];
      what = `${name} onto another tensor's bytes`;
      break;
    case 2:
      t.shape = t.shape.map((x: number) => x * pick([2, 0, 3]));
      what = `scale ${name} shape`;
      break;
    case 3:
      t.dtype = pick(['F64', 'I8', 'U8', 'F16', 'F32', 'BF16', 7, null, { x: 1 }]);
      what = `${name} dtype ${JSON.stringify(t.dtype)}`;
      break;
    case 4:
      delete h[name];
      what = `delete ${name}`;
      break;
    case 5:
      h['__metadata__'] = pick([[1], { format: 5 }, 'x', null, { a: '\u001b[2J' }]);
      what = 'bad __metadata__';
      break;
    case 6:
      t.data_offsets = [t.data_offsets[0], pick([0, 2 ** 53, -1, 1.5])];
      what = `${name} bad end offset`;
      break;
    case 7:
      t.shape = pick([[], [2 ** 40, 2 ** 40], [-1], 'x', [1, 2, 3, 4, 5, 6, 7, 8, 9]]);
      what = `${name} bad shape`;
      break;
    default:
      h[`${name}\u001b]0;evil\u0007${'x'.repeat(int(3000))}`] = t;
      what = 'duplicate under a hostile name';
      break;
  }
  const body = Buffer.from(JSON.stringify(h));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(body.length));
  return [what, Buffer.concat([len, body, src.subarray(8 + n)])];
}

interface Target {
  name: string;
  dir: string;
  file: string;
  kind: 'gguf' | 'st';
}
const TARGETS: Target[] = [
  { name: 'qwen2 f32 gguf', dir: 'models/qwen2-tiny-tied', file: 'model-f32.gguf', kind: 'gguf' },
  { name: 'qwen3 q4_k_m gguf', dir: 'models/qwen3-tiny-tied', file: 'model-q4_k_m.gguf', kind: 'gguf' },
  { name: 'qwen35 q8_0 gguf', dir: 'models/qwen35-tiny', file: 'model-q8_0.gguf', kind: 'gguf' },
  { name: 'qwen2 safetensors', dir: 'models/qwen2-tiny-tied', file: 'model.safetensors', kind: 'st' },
  { name: 'qwen35 safetensors', dir: 'models/qwen35-tiny', file: 'model.safetensors', kind: 'st' },
];

type Outcome = 'ok' | 'clean' | 'bad';
function classify(e: unknown): [Outcome, string] {
  if (!(e instanceof QwenError)) return ['bad', `${(e as Error)?.name}: ${(e as Error)?.stack ?? String(e)}`];
  const m = e.message;
  // eslint-disable-next-line no-control-regex
  if (m.includes('\n') || /[\u0000-\u001f\u007f-\u009f]/.test(m) || m.length > 2400) return ['bad', `unclean message (${m.length} chars): ${JSON.stringify(m.slice(0, 300))}`];
  return ['clean', m];
}

async function runCase(target: string, tokenizerDir: string | undefined): Promise<[Outcome, string]> {
  const backend = new WasmBackend({ threads: 1, spinMs: 0.05 });
  try {
    const tok = loadTokenizer(tokenizerDir ?? target);
    const ids = tok.encode('Hello world').slice(0, 4);
    const model = loadModel(target, { backend, onNote: () => {} });
    const V = model.config.vocab_size;
    const input = (ids.length ? ids : [1]).map((t) => t % V);
    const cache = model.newCache(input.length);
    const logits = model.forward(
      input.map((token, pos) => ({ token, pos, seq: 0, logits: pos === input.length - 1 })),
      [cache],
    );
    if (logits.length !== V || !logits.every(Number.isFinite)) return ['bad', 'logits not finite or wrong length'];
    return ['ok', ''];
  } catch (e) {
    return classify(e);
  } finally {
    backend.dispose?.();
  }
}

const count = Number(countArg);
fs.mkdirSync(work, { recursive: true });
const tally: Record<Outcome, number> = { ok: 0, clean: 0, bad: 0 };
const messages = new Set<string>();
let n = 0;
for (const t of TARGETS) {
  const srcDir = fixtureDir(t.dir);
  const src = fs.readFileSync(path.join(srcDir, t.file));
  // a safetensors case is a folder: the mutated file plus the fixture's config and tokenizer
  const caseDir = path.join(work, t.name.replace(/\W+/g, '-'));
  fs.mkdirSync(caseDir, { recursive: true });
  for (const f of fs.readdirSync(srcDir)) if (f.endsWith('.json')) fs.copyFileSync(path.join(srcDir, f), path.join(caseDir, f));
  for (let i = 0; i < count; i++) {
    const [what, bytes] = t.kind === 'st' && rand() < 0.5 ? mutateStHeader(src) : mutateBytes(src, t.kind === 'st' ? stHeaderEnd(src) : ggufHeaderEnd(src));
    const file = path.join(caseDir, t.kind === 'st' ? 'model.safetensors' : 'model.gguf');
    fs.writeFileSync(file, bytes);
    process.stdout.write(`case ${n} ${t.name}: ${what}\n`);
    const [outcome, detail] = await runCase(t.kind === 'st' ? caseDir : file, t.kind === 'st' ? caseDir : undefined);
    tally[outcome]++;
    if (outcome === 'bad') process.stdout.write(JSON.stringify({ bad: n, target: t.name, what, detail }) + '\n');
    if (outcome === 'clean')
      messages.add(
        detail
          .replace(/\d+/g, 'N')
          .replace(/'[^']*'/g, "'…'")
          .slice(0, 200),
      );
    n++;
  }
}
const maxRssMiB = Math.round(process.resourceUsage().maxRSS / 1024);
process.stdout.write(JSON.stringify({ summary: tally, cases: n, maxRssMiB, kinds: messages.size }) + '\n');
if (process.env.FUZZ_VERBOSE) for (const m of messages) process.stdout.write(`  ${m}\n`);
