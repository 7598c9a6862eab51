// Which vision tower a GGUF model takes when none is named (src/vision/attach.ts): the mmproj*.gguf
// beside it whose projection_dim is the model's hidden size; of several, the one whose type tag is
// the model's; when that does not decide, none, with a note naming them (then --mmproj chooses).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ReferenceBackend } from '../../src/backend/reference.js';
import { loadModel } from '../../src/models/load.js';
import type { Tower } from '../../src/vision/blocks.js';
import { tmpDir } from '../helpers.js';
import { visionGguf } from './fixtures.js';

/** A folder holding the tiny Qwen2.5-VL model as `model` and both its mmproj files (F32 and Q8_0), plus Qwen3.5's (another width). */
function folder(model: string): string {
  const dir = tmpDir('qwen-ts-vision-attach-');
  const q25 = visionGguf('tiny-qwen25vl', 'f32');
  fs.copyFileSync(q25.model, path.join(dir, model));
  fs.copyFileSync(q25.mmproj, path.join(dir, 'mmproj-f32.gguf'));
  fs.copyFileSync(visionGguf('tiny-qwen25vl', 'q8_0').mmproj, path.join(dir, 'mmproj-q8_0.gguf'));
  fs.copyFileSync(visionGguf('tiny-qwen35vl', 'f32').mmproj, path.join(dir, 'mmproj-other-f32.gguf'));
  return path.join(dir, model);
}

test("an mmproj beside a GGUF model: of several that fit, the one with the model's type tag; else none, with a note naming them", () => {
  const notes: string[] = [];
  const onNote = (n: string) => notes.push(n);
  const tagged = loadModel(folder('model-q8_0.gguf'), { backend: new ReferenceBackend(), onNote });
  assert.equal((tagged.vision as Tower | undefined)?.weights.mm0.dtype, 'Q8_0', 'model-q8_0.gguf takes mmproj-q8_0.gguf');
  assert.deepEqual(notes, []);
  const untagged = loadModel(folder('model.gguf'), { backend: new ReferenceBackend(), onNote });
  assert.equal(untagged.vision, undefined);
  assert.equal(notes.length, 1);
  assert.match(notes[0]!, /: 2 mmproj files fit this model \(mmproj-f32\.gguf, mmproj-q8_0\.gguf\); choose one with --mmproj: the model runs without images$/);
  // --mmproj decides
  const chosen = loadModel(folder('model.gguf'), { backend: new ReferenceBackend(), mmproj: visionGguf('tiny-qwen25vl', 'f32').mmproj });
  assert.equal((chosen.vision as Tower | undefined)?.weights.mm0.dtype, 'F32');
});
