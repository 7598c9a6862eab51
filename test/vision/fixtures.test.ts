// The vision fixtures are what the other vision tests compare against, so check that they say
// what PROVENANCE.md says: every oracle file has the token / position / logits layout of
// llama.cpp's libmtmd (design/VISION.md section 6) for its image, and every model file opens.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { openGguf } from '../../src/formats/gguf.js';
import { openSafetensors } from '../../src/formats/safetensors.js';
import { loadOracle, oracleImages, referencePixels, VISION_PRESETS, visionFile, visionGguf, visionHfDir, visionImage, type VisionType } from './fixtures.js';

const TYPES: VisionType[] = ['f32', 'q8_0'];

test('oracle outputs: one image chunk between <|vision_start|> and <|vision_end|>, M-RoPE positions, logits at every text position', () => {
  let n = 0;
  for (const preset of VISION_PRESETS) {
    for (const type of TYPES) {
      const images = oracleImages(preset, type);
      if (type === 'f32') assert.ok(images.length >= 4, `${preset}: ${images.length} oracle images`);
      for (const name of images) {
        const o = loadOracle(preset, type, name);
        const what = `${preset}-${type}-${name}`;
        const { image: im, prompt_tokens: toks } = o;
        assert.equal(o.positions.length, toks.length, what);
        assert.equal(o.logits.length, toks.length, what);
        assert.equal(im.n_tokens, im.nx * im.ny, what);
        assert.equal(im.embd.length, im.n_tokens * im.dim, what);
        assert.equal(im.n_pos, Math.max(im.nx, im.ny), what);
        assert.ok(fs.existsSync(visionImage(im.file)), `${what}: ${im.file}`);
        assert.equal(o.pieces[im.start - 1], '<|vision_start|>', what);
        assert.equal(o.pieces[im.start + im.n_tokens], '<|vision_end|>', what);
        const p0 = o.positions[im.start - 1]![0] + 1;
        for (let i = 0; i < toks.length; i++) {
          const inImage = i >= im.start && i < im.start + im.n_tokens;
          assert.equal(toks[i] === -1, inImage, `${what}: token ${i}`);
          const lg = o.logits[i];
          if (inImage) {
            const r = Math.floor((i - im.start) / im.nx);
            const c = (i - im.start) % im.nx;
            assert.deepEqual(o.positions[i], [p0, p0 + r, p0 + c, 0], `${what}: image row ${i}`);
            assert.equal(lg, null);
          } else {
            const p = i < im.start ? i : p0 + im.n_pos + (i - im.start - im.n_tokens);
            assert.deepEqual(o.positions[i], [p, p, p, 0], `${what}: text position ${i}`);
            assert.equal(lg?.length, o.n_vocab, `${what}: logits ${i}`);
          }
        }
        assert.equal(o.n_past, o.positions.at(-1)![0] + 1, what);
        // greedy step 0 is chosen from the last prompt logits
        assert.deepEqual(o.greedy.steps[0]!.logits, o.logits.at(-1), what);
        n++;
      }
    }
  }
  assert.ok(n >= 8, `${n} oracle files`);
});

test('fixture model files open: LM + mmproj GGUF pairs and the HF copies', () => {
  for (const preset of VISION_PRESETS) {
    for (const type of TYPES) {
      if (!oracleImages(preset, type).length) continue;
      const { model, mmproj } = visionGguf(preset, type);
      const lm = openGguf(model);
      const mm = openGguf(mmproj);
      assert.equal(lm.metadata.get('general.architecture'), preset === 'tiny-qwen25vl' ? 'qwen2vl' : 'qwen35');
      assert.equal(mm.metadata.get('general.architecture'), 'clip');
      assert.equal(mm.metadata.get('clip.vision.projection_dim'), lm.metadata.get(`${lm.metadata.get('general.architecture')}.embedding_length`));
      lm.close();
      mm.close();
    }
    const hf = visionHfDir(preset);
    const cfg = JSON.parse(fs.readFileSync(`${hf}/config.json`, 'utf8')) as { model_type: string };
    assert.equal(cfg.model_type, preset === 'tiny-qwen25vl' ? 'qwen2_5_vl' : 'qwen3_5');
    const st = openSafetensors(`${hf}/model.safetensors`);
    const prefix = preset === 'tiny-qwen25vl' ? 'visual.' : 'model.visual.';
    assert.ok(st.tensors.has(`${prefix}patch_embed.proj.weight`), preset);
    assert.ok(st.tensors.has('lm_head.weight'), preset);
    st.close();
  }
});

test('reference decodes of the lossy images have the image size', () => {
  assert.equal(referencePixels('img-168x140.jpg').length, 168 * 140 * 3);
  assert.equal(referencePixels('img-160x96.jpg').length, 160 * 96 * 3);
  assert.equal(referencePixels('img-160x96-lossy.webp').length, 160 * 96 * 3);
  assert.ok(fs.existsSync(visionFile('tiny-qwen35vl/model-f32.gguf')));
});
