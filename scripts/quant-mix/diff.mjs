#!/usr/bin/env node
// Do `qwen-ts quantize --type X` and llama.cpp's quantiser (llama_model_quantize, no importance matrix)
// choose the same type for every tensor of a GGUF file, and (with --bytes) write the same bytes?
//   node scripts/quant-mix/diff.mjs --peer DIR [--bytes] [--pure] [--types q4_k_m,q6_k] IN.gguf ...
// --peer: a folder with node-llama-cpp installed (a copy of shared/peer after npm install, or .peer).
// Without --bytes both sides only decide (llama.cpp's dry_run, our --dry-run): fast on big files.
// With --bytes both write their files, which are compared tensor by tensor (types, bytes, file_type).
// Needs `npx tsc -p .` first (runs dist/).
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath, pathToFileURL } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const { openGguf } = await import(pathToFileURL(path.join(ROOT, 'dist/src/formats/gguf.js')).href);
const ALL = 'q4_k_m,q4_k_s,q5_k_m,q5_k_s,q6_k,q3_k_m,q2_k,iq4_xs,iq4_nl,q8_0,q4_0,q4_1,q5_0,q5_1,f16,bf16,f32';
const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    peer: { type: 'string', default: path.join(ROOT, '.peer') },
    bytes: { type: 'boolean' },
    pure: { type: 'boolean' },
    types: { type: 'string', default: ALL },
    threads: { type: 'string', default: '2' },
  },
});
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'quant-mix-'));
const run = (cmd, args) => execFileSync(cmd, args, { encoding: 'utf8', maxBuffer: 1 << 26, stdio: ['ignore', 'pipe', 'pipe'] });
const lines = (text) =>
  new Map(
    text
      .trim()
      .split('\n')
      .map((l) => l.split(' '))
      .map(([n, t]) => [n, t]),
  );

function readFile(file) {
  const g = openGguf(file);
  return { g, types: new Map(g.tensorList.map((t) => [t.name, t.dtype])), fileType: Number(g.metadata.get('general.file_type')) };
}

let bad = 0;
for (const input of positionals) {
  for (const type of values.types.split(',')) {
    const lo = path.join(tmp, 'llama.gguf'),
      qo = path.join(tmp, 'ours.gguf');
    const llamaArgs = [path.join(ROOT, 'scripts/quant-mix/llama_quantize.py'), input, lo, type, '--peer', values.peer, '--threads', values.threads, ...(values.pure ? ['--pure'] : [])];
    const oursArgs = [path.join(ROOT, 'dist/src/cli/main.js'), 'quantize', input, qo, '--type', type, ...(values.pure ? ['--pure'] : [])];
    let theirs, ours, L, Q;
    if (values.bytes) {
      run('python3', llamaArgs);
      run(process.execPath, oursArgs);
      L = readFile(lo);
      Q = readFile(qo);
      theirs = L.types;
      ours = Q.types;
    } else {
      theirs = lines(run('python3', [...llamaArgs, '--dry-run']));
      ours = lines(run(process.execPath, [...oursArgs, '--dry-run']));
    }
    const diffs = [];
    for (const n of new Set([...theirs.keys(), ...ours.keys()])) if (theirs.get(n) !== ours.get(n)) diffs.push(`${n}: llama ${theirs.get(n)} ours ${ours.get(n)}`);
    const count = {};
    for (const t of theirs.values()) count[t] = (count[t] ?? 0) + 1;
    let note = '';
    if (values.bytes) {
      if (L.fileType !== Q.fileType) diffs.push(`general.file_type: llama ${L.fileType} ours ${Q.fileType}`);
      const differ = {};
      let same = 0;
      for (const t of L.g.tensorList) {
        const u = Q.g.tensors.get(t.name);
        if (!u || u.dtype !== t.dtype || u.byteLength !== t.byteLength) continue;
        const a = new Uint8Array(t.byteLength),
          b = new Uint8Array(u.byteLength);
        L.g.readInto(t.name, a);
        Q.g.readInto(t.name, b);
        if (Buffer.from(a.buffer).equals(Buffer.from(b.buffer))) same++;
        else (differ[t.dtype] ??= []).push(t.name);
      }
      const nd = Object.values(differ).reduce((s, v) => s + v.length, 0);
      note =
        ` | bytes: ${same}/${L.g.tensorList.length} tensors equal` +
        (nd
          ? `, differ: ${Object.entries(differ)
              .map(([k, v]) => `${v.length} ${k} (${v.slice(0, 2).join(', ')}${v.length > 2 ? ', ...' : ''})`)
              .join('; ')}`
          : '');
      if (nd) bad++;
      L.g.close();
      Q.g.close();
      fs.rmSync(lo);
      fs.rmSync(qo);
    }
    if (diffs.length) bad++;
    const mix = Object.entries(count)
      .sort()
      .map(([k, v]) => `${v} ${k}`)
      .join(', ');
    console.log(`${diffs.length ? 'DIFF' : 'same'} ${path.basename(input)} ${type.padEnd(6)} ${theirs.size} tensors [${mix}]${note}`);
    for (const d of diffs.slice(0, 10)) console.log(`     ${d}`);
  }
}
fs.rmSync(tmp, { recursive: true, force: true });
process.exitCode = bad ? 1 : 0;
