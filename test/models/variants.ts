// Edited copies of a fixture model (a folder or a GGUF file), for the bad-input tests.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { openSafetensors } from '../../src/formats/safetensors.js';
import { writeSafetensors, type StTensorOut } from '../../src/formats/safetensors_writer.js';
import { openGguf, type GgufKV } from '../../src/formats/gguf.js';
import { writeGguf, type GgufTensorOut } from '../../src/formats/gguf_writer.js';

/** A copy of HF folder `src` at `dst`, with its config.json and tensors edited. */
export function folderVariant(src: string, dst: string, edit: { config?: (c: any) => void; tensors?: (t: StTensorOut[]) => StTensorOut[] }): string {
  fs.mkdirSync(dst, { recursive: true });
  const c = JSON.parse(fs.readFileSync(path.join(src, 'config.json'), 'utf8'));
  edit.config?.(c);
  fs.writeFileSync(path.join(dst, 'config.json'), JSON.stringify(c));
  const s = openSafetensors(src);
  const ts = [...s.tensors.values()].map((t) => {
    const data = new Uint8Array(t.byteLength);
    s.readInto(t.name, data);
    return { name: t.name, dtype: t.dtype, shape: t.shape, data };
  });
  s.close();
  writeSafetensors(path.join(dst, 'model.safetensors'), (edit.tensors ?? ((t) => t))(ts));
  return dst;
}

/** A copy of GGUF file `src` at `dst`, with its metadata and tensors edited. */
export function ggufVariant(src: string, dst: string, edit: (m: GgufKV[], t: GgufTensorOut[]) => void): string {
  const g = openGguf(src);
  const meta: GgufKV[] = [...g.metadata].map(([key, value]) => ({ key, value, type: g.metadataTypes.get(key)! }));
  const ts: GgufTensorOut[] = g.tensorList.map((t) => {
    const data = new Uint8Array(t.byteLength);
    g.readInto(t.name, data);
    return { name: t.name, dtype: t.dtype, shape: t.shape, data };
  });
  g.close();
  edit(meta, ts);
  writeGguf(dst, { metadata: meta, tensors: ts });
  return dst;
}
