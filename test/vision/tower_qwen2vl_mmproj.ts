// A Qwen2-VL mmproj (projector qwen2vl_merger) for the tower tests, made from the tiny Qwen2.5-VL
// fixture's: llama.cpp's Qwen2-VL tower is the same graph with LayerNorm (weights and biases) where
// 2.5 has RMSNorm, an fc1 -> quick GELU -> fc2 MLP (ffn_up, ffn_down: no gate) and no windows. The
// norms' biases and weights get seeded random values so that they matter. llama.cpp's embeddings
// for it (test/fixtures/vision_tower/qwen2vl-*.json.gz) were made by running mtmd_oracle on the
// file this writes (a module without side effects, since the test runner may load any file here):
//   node -e "import('./dist/test/vision/tower_qwen2vl_mmproj.js').then((m) => m.writeQwen2vlMmproj('mmproj.gguf'))"
import * as path from 'node:path';
import { openGguf, type GgufKV } from '../../src/formats/gguf.js';
import { writeGguf, type GgufTensorOut } from '../../src/formats/gguf_writer.js';
import { FIXTURES } from '../helpers.js';

export function writeQwen2vlMmproj(out: string): void {
  const g = openGguf(path.join(FIXTURES, 'vision', 'tiny-qwen25vl', 'mmproj-f32.gguf'));
  try {
    const drop = new Set(['clip.use_silu', 'clip.vision.n_wa_pattern']);
    const kv: GgufKV[] = [...g.metadata].filter(([k]) => !drop.has(k)).map(([key, value]) => ({ key, type: g.metadataTypes.get(key)!, value }));
    kv.find((k) => k.key === 'clip.projector_type')!.value = 'qwen2vl_merger';
    let seed = 2024;
    const rnd = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32) * 2 - 1;
    const f32 = (a: Float32Array) => new Uint8Array(a.buffer);
    const tensors: GgufTensorOut[] = [];
    for (const t of g.tensorList) {
      if (/ffn_gate/.test(t.name)) continue;
      const data = new Uint8Array(t.byteLength);
      g.readInto(t.name, data);
      const norm = /\.(ln1|ln2|post_ln)\.weight$/.test(t.name);
      if (norm) {
        const n = t.shape[0]!;
        tensors.push({ name: t.name, dtype: 'F32', shape: [n], data: f32(Float32Array.from({ length: n }, () => 1 + 0.3 * rnd())) });
        tensors.push({ name: t.name.replace(/weight$/, 'bias'), dtype: 'F32', shape: [n], data: f32(Float32Array.from({ length: n }, () => 0.3 * rnd())) });
      } else tensors.push({ name: t.name, dtype: t.dtype, shape: [...t.shape], data });
    }
    writeGguf(out, { metadata: kv, tensors });
  } finally {
    g.close();
  }
}
