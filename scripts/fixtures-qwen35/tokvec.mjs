// (added) node tokvec.mjs MODEL.gguf INP_FILE EXTRA.json OUT.json
import fs from 'node:fs';
import { loadLlama, loadModel } from './common.mjs';
const [m, inp, extra, outp] = process.argv.slice(2);
const llama = await loadLlama({ threads: 1, logLevel: 'warn' });
const model = await loadModel(llama, m);
const parts = fs.readFileSync(inp, 'utf8').split('\n__ggml_vocab_test__\n');
if (parts[parts.length - 1] === '') parts.pop();
const items = parts.map((text) => ({ text, special: false, source: 'llama.cpp models/ggml-vocab-qwen2.gguf.inp' }));
for (const e of JSON.parse(fs.readFileSync(extra, 'utf8'))) items.push({ text: e.text, special: !!e.special, source: 'added' });
const out = items.map(({ text, special, source }) => {
  const ids = [...model.tokenize(text, special)];
  const back = model.detokenize(ids, special);
  return { text, ids, special_tokens_parsed: special, nfc_changes_text: text.normalize('NFC') !== text, detokenizes_to_input: back === text, source };
});
fs.writeFileSync(outp, JSON.stringify(out, null, 1) + '\n');
console.log(
  out.length,
  out.filter((o) => !o.detokenizes_to_input).map((o) => JSON.stringify(o.text)),
);
await model.dispose();
await llama.dispose();
