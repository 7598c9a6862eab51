// readOptionFile (src/cli/resolve.ts): the file behind --image, --data, ... read whole, or a
// one-line error naming the option and the file.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { readOptionFile } from '../../src/cli/resolve.js';
import { QwenError } from '../../src/errors.js';
import { tmpDir } from '../helpers.js';

test('readOptionFile: the bytes; a missing file or a folder is a QwenError naming the option and the file', () => {
  const dir = tmpDir();
  const file = path.join(dir, 'a.txt');
  fs.writeFileSync(file, 'hi');
  assert.equal(readOptionFile('--data', file).toString('utf8'), 'hi');
  const missing = path.join(dir, 'none.jsonl');
  assert.throws(
    () => readOptionFile('--data', missing),
    (e: Error) => e instanceof QwenError && e.message === `--data ${missing}: no such file`,
  );
  assert.throws(
    () => readOptionFile('--image', dir),
    (e: Error) => e instanceof QwenError && e.message.startsWith(`--image ${dir}: `) && /EISDIR/.test(e.message),
  );
  fs.rmSync(dir, { recursive: true });
});
