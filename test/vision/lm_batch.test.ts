// Image requests batched with others by the Scheduler: prompts cut into chunks by a small token
// budget (an image's rows split across passes), text-only rows in the same pass as image rows (they
// then go through ropeMulti with equal positions), n-gram speculation on (the image request gets no
// proposals; the text ones may, when their text repeats), on Qwen3.5 (DeltaNet state + IMRoPE attention) and Qwen2.5-VL: each request's
// greedy tokens and log-probabilities = the same request run alone with generate().
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { WasmBackend } from '../../src/backend/wasm.js';
import { generate, type GenerateOptions, type Step } from '../../src/generate/generate.js';
import { Scheduler } from '../../src/generate/scheduler.js';
import type { CausalLM } from '../../src/models/model.js';
import { loadModel } from '../../src/models/load.js';
import { loadTokenizer } from '../../src/tokenizer/load.js';
import { IMAGE_PAD } from '../../src/vision/prompt.js';
import type { PromptImage } from '../../src/vision/types.js';
import { loadOracle, oracleEmbd, visionGguf, type VisionPreset } from './fixtures.js';

async function collect(it: AsyncGenerator<Step, unknown>): Promise<Step[]> {
  const out: Step[] = [];
  for await (const s of it) out.push(s);
  return out;
}

for (const [preset, image] of [
  ['tiny-qwen35vl', '160x96'],
  ['tiny-qwen25vl', '168x140'],
] as [VisionPreset, string][]) {
  test(`${preset}: image and text requests in one batch, chunked, with speculation = each alone`, async () => {
    const o = loadOracle(preset, 'f32', image);
    const file = visionGguf(preset, 'f32').model;
    const model: CausalLM = loadModel(file, { backend: new WasmBackend({ threads: 2 }), mmproj: false });
    const pad = loadTokenizer(file).tokenToId(IMAGE_PAD)!;
    const ids = o.prompt_tokens.map((t) => (t < 0 ? pad : t));
    const images: PromptImage[] = [{ start: o.image.start, image: { rows: oracleEmbd(o), nx: o.image.nx, ny: o.image.ny, dim: o.image.dim, hash: image } }];
    const text = o.prompt_tokens.filter((t) => t >= 0); // the same prompt without the image
    const reqs: [number[], GenerateOptions][] = [
      [ids, { max_tokens: 6, temperature: 0, logprobs: true, images }],
      [text, { max_tokens: 6, temperature: 0, logprobs: true }],
      [[...text.slice(0, 9), ...text.slice(0, 9)], { max_tokens: 6, temperature: 0, logprobs: true }], // repeats: n-gram proposals
    ];
    const alone: Step[][] = [];
    for (const [p, opts] of reqs) alone.push(await collect(generate(model, p, opts)));
    const sched = new Scheduler(model, 7, 8, 0, { method: 'ngram', max: 3 });
    const together = await Promise.all(reqs.map(([p, opts]) => collect(sched.submit(p, opts))));
    together.forEach((steps, r) => {
      assert.deepEqual(
        steps.map((s) => s.token),
        alone[r]!.map((s) => s.token),
        `request ${r}: tokens`,
      );
      steps.forEach((s, i) => assert.ok(Math.abs(s.logprob! - alone[r]![i]!.logprob!) < 1e-4, `request ${r} step ${i}: ${s.logprob} vs ${alone[r]![i]!.logprob}`));
    });
  });
}
