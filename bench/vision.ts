// Vision tower encode time (`npm run bench:vision -- --mmproj FILE`; without the build: node dist/bench/vision.js): one image through the tower
// and merger on the WASM backend, at a size the smart resize keeps (default 448x448: 1024
// patches of 14 px = 256 rows for Qwen2.5-VL, 784 patches of 16 px = 196 rows for Qwen3.5), and
// the time per backend op (--profile). Random pixels; any mmproj of the towers qwen.ts runs
// (real shapes: e.g. make_gguf-style random-weight files of the 3B / 0.8B sizes).
//   node dist/bench/vision.js --mmproj FILE [--size 448] [--threads 2] [--runs 3] [--json] [--profile]
import * as os from 'node:os';
import { parseArgs } from 'node:util';
import type { Weight } from '../src/backend/backend.js';
import { WasmBackend } from '../src/backend/wasm.js';
import { ProfiledBackend } from '../src/backend/profile.js';
import { loadVisionTower } from '../src/vision/tower.js';

function main(): void {
  const { values } = parseArgs({
    options: {
      mmproj: { type: 'string' },
      size: { type: 'string', default: '448' },
      threads: { type: 'string', default: String(Math.min(2, os.availableParallelism())) },
      runs: { type: 'string', default: '3' },
      json: { type: 'boolean' },
      profile: { type: 'boolean' },
    },
  });
  if (!values.mmproj) throw new Error('--mmproj FILE: the mmproj GGUF (or HF folder) to time');
  const be = new WasmBackend({ threads: Number(values.threads) });
  try {
    const t0 = performance.now();
    // --profile: every op timed, matmuls split by weight type
    const prof = values.profile
      ? new ProfiledBackend(be, (op, args) => {
          if (!op.startsWith('matmul')) return op;
          const w = args[2] as Weight | Weight[]; // matmul's weight, matmulMany's weights
          return `${op} ${(Array.isArray(w) ? w[0]! : w).dtype}`;
        })
      : undefined;
    const tower = loadVisionTower(values.mmproj, prof?.backend ?? be);
    const loadMs = performance.now() - t0;
    const S = Number(values.size);
    let seed = 1;
    const data = new Uint8Array(S * S * 3).map(() => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) >>> 24);
    const img = { width: S, height: S, data };
    const px = tower.preprocess(img);
    const times: number[] = [];
    let rows = 0;
    for (let r = 0; r < Number(values.runs); r++) {
      const t1 = performance.now();
      rows = tower.encodePixels(px).length / tower.projectionDim;
      times.push(performance.now() - t1);
    }
    const c = tower.config;
    const result = {
      mmproj: values.mmproj,
      tower: `${c.model_type} n=${c.hidden_size} depth=${c.depth} ff=${c.intermediate_size} patch=${c.patch_size} proj=${c.out_hidden_size}`,
      image: `${S}x${S} -> ${px.width}x${px.height}`,
      patches: (px.width / c.patch_size) * (px.height / c.patch_size),
      rows,
      threads: be.threads,
      backend: be.name,
      load_ms: Math.round(loadMs),
      encode_ms: times.map((t) => Math.round(t)),
      encode_ms_median: Math.round(times.sort((a, b) => a - b)[times.length >> 1]!),
    };
    const ops = prof
      ? [...(prof.times.get('all') ?? new Map())].sort((a, b) => b[1].ms - a[1].ms).map(([op, p]) => `${op} ${Math.round(p.ms / times.length)} ms (${p.calls / times.length} calls)`)
      : [];
    if (values.json) console.log(JSON.stringify({ ...result, ops }));
    else {
      for (const [k, v] of Object.entries(result)) console.log(`${k}: ${Array.isArray(v) ? v.join(', ') : v}`);
      if (ops.length) console.log(`per encode:\n  ${ops.join('\n  ')}`);
    }
  } finally {
    be.dispose();
  }
}

main();
