// A LoRA adapter by hub id: pulled like a model (adapter_config.json + adapter_model.safetensors,
// no config.json) from the local stand-in hub, found in the cache afterwards, and read.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, test } from 'node:test';
import { SILENT } from '../../src/hub/progress.js';
import { selectFiles } from '../../src/hub/select.js';
import { readAdapter, resolveAdapter } from '../../src/lora/load.js';
import { FIXTURES } from '../helpers.js';
import { fixtureFile, makeRepo, startFixtureHub } from '../hub/fixture_hub.js';
import { freshCache, hubOpts } from '../hub/util.js';

const DIR = path.join(FIXTURES, 'lora', 'qwen3-all7');
const files = ['adapter_config.json', 'adapter_model.safetensors'].map((f) => fixtureFile(f, fs.readFileSync(path.join(DIR, f))));
const hub = await startFixtureHub([makeRepo('someone/qwen3-style', [...files, fixtureFile('README.md', Buffer.from('# an adapter\n')), fixtureFile('training_args.bin', Buffer.alloc(64))])]);
after(() => hub.close());

test("selectFiles takes an adapter repo's config, weights and card", () => {
  const f = (...p: string[]) => p.map((path) => ({ path }));
  assert.deepEqual(
    selectFiles(f('adapter_config.json', 'adapter_model.safetensors', 'README.md', 'training_args.bin', 'tokenizer.json'), 'o/n').files.map((x) => x.path),
    ['adapter_config.json', 'adapter_model.safetensors', 'README.md'],
  );
});

test('an adapter hub id is pulled on first use, then read from the cache', async () => {
  const opts = hubOpts(hub, freshCache(), { progress: SILENT });
  const p = await resolveAdapter('someone/qwen3-style', opts);
  assert.ok(fs.existsSync(path.join(p, 'adapter_model.safetensors')));
  assert.ok(!fs.existsSync(path.join(p, 'training_args.bin')));
  assert.equal(await resolveAdapter('someone/qwen3-style', { ...opts, offline: true }), p);
  assert.equal(readAdapter(p).modules.length, readAdapter(DIR).modules.length);
  assert.equal(readAdapter(p).name, 'someone/qwen3-style', 'named by its repo, not its snapshot hash');
});
