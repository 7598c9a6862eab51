#!/usr/bin/env node
// Copy a GGUF file adding YaRN rope-scaling metadata, with the keys and types convert_hf_to_gguf.py
// writes for rope_scaling {rope_type: 'yarn', factor, original_max_position_embeddings}:
//   node add_yarn.mjs IN.gguf OUT.gguf FACTOR ORIGINAL_CONTEXT   (run from the repository, built)
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
const dist = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../dist/src/formats');
const { openGguf } = await import(path.join(dist, 'gguf.js'));
const { writeGguf } = await import(path.join(dist, 'gguf_writer.js'));

const [src, dst, factor, orig] = process.argv.slice(2);
const g = openGguf(src);
const arch = g.metadata.get('general.architecture');
const meta = [...g.metadata].map(([key, value]) => ({ key, value, type: g.metadataTypes.get(key) }));
const tensors = g.tensorList.map((t) => {
  const data = new Uint8Array(t.byteLength);
  g.readInto(t.name, data);
  return { name: t.name, dtype: t.dtype, shape: t.shape, data };
});
g.close();
meta.push(
  { key: `${arch}.rope.scaling.type`, type: 'str', value: 'yarn' },
  { key: `${arch}.rope.scaling.factor`, type: 'f32', value: Number(factor) },
  { key: `${arch}.rope.scaling.original_context_length`, type: 'u32', value: Number(orig) },
);
writeGguf(dst, { metadata: meta, tensors });
