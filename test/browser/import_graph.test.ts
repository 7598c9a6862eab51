// The browser build's import graph, walked from the compiled entry points (dist/src/browser/index.js
// and the engine worker it starts, worker.js): no module may import a Node builtin (`node:x`, or a
// bare name such as `fs`), statically or dynamically. The only bare imports allowed are npm
// packages that run in browsers. Node modules reached at run time through process.getBuiltinModule
// (for reading models by path: never called in a browser) are confined to two named files.
// (ES modules: a require() is no import; wasm_worker.js's Node worker source is a string.)
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { builtinModules } from 'node:module';
import * as path from 'node:path';
import { test } from 'node:test';
import { ROOT } from '../helpers.js';

const BROWSER_PACKAGES = new Set(['@huggingface/jinja']);
const GET_BUILTIN_ALLOWED = new Set(['src/node_builtin.js', 'src/backend/platform_node.js']);
const BUILTINS = new Set(builtinModules.flatMap((m) => [m, m.split('/')[0]!]));
const IMPORT = /(?:^|[\s;}])(?:import|export)\s*(?:[\w*${}\s,]+from\s*)?['"]([^'"]+)['"]|\bimport\s*\(\s*['"]([^'"]+)['"]\s*\)/g;

/** A module's text without its line comments. */
const code = (f: string) => fs.readFileSync(f, 'utf8').replace(/^\s*\/\/.*$/gm, '');

function walk(entries: string[]): { files: Map<string, string>; bare: Map<string, string[]> } {
  const files = new Map<string, string>(); // file -> the file that imported it
  const bare = new Map<string, string[]>(); // specifier -> importing files
  const stack: [string, string][] = entries.map((e) => [e, '(entry)']);
  while (stack.length) {
    const [f, from] = stack.pop()!;
    if (files.has(f)) continue;
    assert.ok(fs.existsSync(f), `${path.relative(ROOT, f)} (imported by ${from}) does not exist`);
    files.set(f, from);
    const src = code(f);
    for (const m of src.matchAll(IMPORT)) {
      const spec = (m[1] ?? m[2])!;
      if (spec.startsWith('.')) stack.push([path.resolve(path.dirname(f), spec), path.relative(ROOT, f)]);
      else bare.set(spec, [...(bare.get(spec) ?? []), path.relative(path.join(ROOT, 'dist'), f)]);
    }
  }
  return { files, bare };
}

test('the browser entry and its worker import no Node module, anywhere in their import graph', () => {
  const dist = path.join(ROOT, 'dist', 'src', 'browser');
  const { files, bare } = walk([path.join(dist, 'index.js'), path.join(dist, 'worker.js')]);
  assert.ok(files.size > 40, `the walk found ${files.size} modules: the worker's graph (models, backend, tokenizer) is missing`);
  for (const must of ['src/backend/wasm.js', 'src/models/registry.js', 'src/tokenizer/gguf_vocab.js', 'src/browser/streamed.js'])
    assert.ok(files.has(path.join(ROOT, 'dist', must)), `${must} is not in the browser graph`);
  for (const [spec, by] of bare) {
    assert.ok(!spec.startsWith('node:') && !BUILTINS.has(spec), `${spec} (a Node builtin) is imported by ${by.join(', ')}`);
    assert.ok(BROWSER_PACKAGES.has(spec), `${spec} (imported by ${by.join(', ')}) is not a package known to run in browsers`);
  }
  for (const f of files.keys()) {
    const rel = path.relative(path.join(ROOT, 'dist'), f);
    if (code(f).includes('getBuiltinModule')) assert.ok(GET_BUILTIN_ALLOWED.has(rel), `${rel} reaches Node modules through getBuiltinModule`);
  }
});

test('the walk catches a node: import (a module written for the check)', () => {
  const dir = fs.mkdtempSync(path.join(ROOT, 'dist', 'graph-check-'));
  try {
    fs.writeFileSync(path.join(dir, 'a.js'), "import { b } from './b.js';\nexport const a = b;\n");
    fs.writeFileSync(path.join(dir, 'b.js'), "import * as fs from 'node:fs';\nconst os = await import('os');\nexport const b = fs && os;\n");
    const { bare } = walk([path.join(dir, 'a.js')]);
    assert.deepEqual([...bare.keys()].sort(), ['node:fs', 'os']);
  } finally {
    fs.rmSync(dir, { recursive: true });
  }
});
