// logits.mjs --all JSON -> the logits of every position concatenated, little-endian float32 [positions, vocab]
import fs from 'node:fs';
const j = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const V = j.positions[0].logits.length;
const out = new Float32Array(j.positions.length * V);
j.positions.forEach((p, i) => {
  if (p.logits.length !== V) throw new Error('ragged');
  out.set(p.logits, i * V);
});
fs.writeFileSync(process.argv[3], Buffer.from(out.buffer));
