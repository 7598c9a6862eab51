// Tokenizer benchmark: load time and encode throughput on 1 MB of mixed text (English, Chinese,
// code, chat prompts with JSON tools, random words in several scripts), ours next to
// @huggingface/tokenizers on the same input; also checks both give the same ids.
//   node dist/bench/tokenizer.js [--model <dir>] [--runs 5] [--json]
// Without --model it uses the Qwen3 tokenizer of the test fixtures.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { Tokenizer as HfTokenizer } from '@huggingface/tokenizers';
import { loadTokenizer } from '../src/tokenizer/index.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = (() => {
  let d = here;
  while (!fs.existsSync(path.join(d, 'package.json'))) d = path.dirname(d);
  return d;
})();
const FIX = path.join(root, 'test', 'fixtures', 'tokenizer');

function fixtureModel(): string {
  const dst = fs.mkdtempSync(path.join(os.tmpdir(), 'qwen-ts-bench-'));
  for (const f of ['tokenizer.json.gz', 'tokenizer_config.json']) {
    const raw = fs.readFileSync(path.join(FIX, 'qwen3', f));
    fs.writeFileSync(path.join(dst, f.replace(/\.gz$/, '')), f.endsWith('.gz') ? zlib.gunzipSync(raw) : raw);
  }
  return dst;
}

/** Deterministic mixed text of at least `bytes` UTF-8 bytes. */
export function mixedText(bytes: number): string {
  const read = (rel: string) => fs.readFileSync(path.join(FIX, rel), 'utf8');
  const tf = JSON.parse(read('vocab-tests/transformers-qwen2-tokenizer-integration.json')) as { cases: { text: string }[] };
  const golden = JSON.parse(read('chat-template-tests/golden-renders-jinja2.json')) as { cases: { expected: Record<string, unknown> }[] };
  const fragments: string[] = [
    ...tf.cases.map((c) => c.text),
    ...read('vocab-tests/ggml-vocab-qwen2.gguf.inp').split('\n__ggml_vocab_test__\n'),
    read('chat-templates/qwen3-post2025-07.jinja'),
    ...golden.cases.flatMap((c) => Object.values(c.expected).filter((x): x is string => typeof x === 'string')),
  ];
  const scripts = [
    'abcdefghijklmnopqrstuvwxyz',
    'абвгдежзийклмнопрстуфхцчшщыэюя',
    '的一是不了人我在有他这为之大来以个中上们到说国和地也子时道出而要于就下得可你年生',
    'αβγδεζηθικλμνξοπρστυφχψω',
    'あいうえおかきくけこさしすせそたちつてとなにぬねのはひふへほまみむめもやゆよらりるれろわをん',
    'אבגדהוזחטיכלמנסעפצקרשת',
  ];
  let seed = 42;
  const rnd = () => {
    seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
    return seed / 4294967296;
  };
  const parts: string[] = [];
  let n = 0;
  while (n < bytes) {
    let s: string;
    if (rnd() < 0.4) {
      s = fragments[Math.floor(rnd() * fragments.length)]!;
    } else {
      const a = scripts[Math.floor(rnd() * scripts.length)]!;
      s = '';
      for (let w = 0; w < 20; w++) {
        s += ' ';
        const len = 1 + Math.floor(rnd() * 9);
        for (let i = 0; i < len; i++) s += a[Math.floor(rnd() * a.length)];
        if (rnd() < 0.1) s += [', ', '. ', '!\n', ' (' + Math.floor(rnd() * 1e5) + ')', ' 🦙', '\n\n'][Math.floor(rnd() * 6)];
      }
    }
    parts.push(s);
    n += Buffer.byteLength(s);
  }
  return parts.join('');
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
function time<T>(f: () => T): [T, number] {
  const t0 = performance.now();
  const r = f();
  return [r, performance.now() - t0];
}

function main(): void {
  const { values } = parseArgs({ options: { model: { type: 'string' }, runs: { type: 'string', default: '5' }, json: { type: 'boolean' } } });
  const dir = values.model ?? fixtureModel();
  if (!values.model) process.on('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
  const runs = Math.max(1, Number(values.runs));
  const text = mixedText(1_000_000);
  const mb = Buffer.byteLength(text) / 1e6;

  // load: from the files on disk to a tokenizer ready to encode (file reading and JSON parsing included)
  const oursLoad: number[] = [],
    hfLoad: number[] = [];
  for (let i = 0; i < runs; i++) {
    oursLoad.push(time(() => loadTokenizer(dir))[1]);
    hfLoad.push(
      time(
        () =>
          new HfTokenizer(
            JSON.parse(fs.readFileSync(path.join(dir, 'tokenizer.json'), 'utf8')) as Record<string, unknown>,
            JSON.parse(fs.readFileSync(path.join(dir, 'tokenizer_config.json'), 'utf8')) as Record<string, unknown>,
          ),
      )[1],
    );
  }
  const ours = loadTokenizer(dir);
  const hf = new HfTokenizer(
    JSON.parse(fs.readFileSync(path.join(dir, 'tokenizer.json'), 'utf8')) as Record<string, unknown>,
    JSON.parse(fs.readFileSync(path.join(dir, 'tokenizer_config.json'), 'utf8')) as Record<string, unknown>,
  );

  // encode: the first run on a fresh tokenizer (cold word cache), then the median of `runs`
  const [idsOurs, oursCold] = time(() => ours.encode(text));
  const [idsHf, hfCold] = time(() => hf.encode(text).ids);
  const oursWarm: number[] = [],
    hfWarm: number[] = [];
  for (let i = 0; i < runs; i++) {
    oursWarm.push(time(() => ours.encode(text))[1]);
    hfWarm.push(time(() => hf.encode(text))[1]);
  }
  const [, oursDecode] = time(() => ours.decode(idsOurs));
  const [, hfDecode] = time(() => hf.decode(idsHf));
  const same = idsOurs.length === idsHf.length && idsOurs.every((x, i) => x === idsHf[i]);

  const r = {
    input: { bytes: Buffer.byteLength(text), chars: text.length, tokens: idsOurs.length },
    identical_ids: same,
    ours: { load_ms: median(oursLoad), encode_cold_mb_s: mb / (oursCold / 1000), encode_mb_s: mb / (median(oursWarm) / 1000), decode_ms: oursDecode },
    huggingface_tokenizers: { load_ms: median(hfLoad), encode_cold_mb_s: mb / (hfCold / 1000), encode_mb_s: mb / (median(hfWarm) / 1000), decode_ms: hfDecode },
    node: process.version,
  };
  if (values.json) {
    process.stdout.write(JSON.stringify(r, null, 1) + '\n');
    return;
  }
  const f = (x: number) => x.toFixed(1);
  process.stdout.write(
    [
      `Tokenizer benchmark: ${r.input.bytes} bytes of mixed text -> ${r.input.tokens} tokens (${dir}); ids identical: ${same}`,
      '',
      '| | load (ms) | encode, cold cache (MB/s) | encode (MB/s) | decode (ms) |',
      '|---|---:|---:|---:|---:|',
      `| qwen.ts | ${f(r.ours.load_ms)} | ${f(r.ours.encode_cold_mb_s)} | ${f(r.ours.encode_mb_s)} | ${f(r.ours.decode_ms)} |`,
      `| @huggingface/tokenizers | ${f(r.huggingface_tokenizers.load_ms)} | ${f(r.huggingface_tokenizers.encode_cold_mb_s)} | ${f(r.huggingface_tokenizers.encode_mb_s)} | ${f(r.huggingface_tokenizers.decode_ms)} |`,
      '',
    ].join('\n'),
  );
  if (!same) process.exitCode = 1;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === fs.realpathSync(process.argv[1])) main();
