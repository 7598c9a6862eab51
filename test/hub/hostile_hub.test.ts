// A hostile hub: blob ids that try to leave the cache, and a paged file list that tries to carry
// the token to another host. Neither may write outside the cache nor send the token away.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as http from 'node:http';
import { createHash } from 'node:crypto';
import * as path from 'node:path';
import type { AddressInfo } from 'node:net';
import { pullModel } from '../../src/hub/pull.js';
import { SILENT } from '../../src/hub/progress.js';
import { FAST_NET, freshCache } from './util.js';

const COMMIT = 'a'.repeat(40);
const servers: http.Server[] = [];
after(() => Promise.all(servers.map((s) => new Promise((r) => s.close(r)))));

async function serve(handler: http.RequestListener): Promise<string> {
  const s = http.createServer(handler);
  servers.push(s);
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  return `http://127.0.0.1:${(s.address() as AddressInfo).port}`;
}

const opts = (endpoint: string, cache: string) => ({ endpoint, cacheDir: cache, env: { HF_HOME: cache }, token: 'hf_SECRET', net: FAST_NET, progress: SILENT, freeBytes: async () => undefined });

test('a blob id with ".." is not used as a path: the pull fails, nothing is linked outside the cache', async () => {
  const outside = fs.mkdtempSync(path.join(path.dirname(freshCache()), 'outside-'));
  fs.writeFileSync(path.join(outside, 'secret.txt'), 'SECRET-DATA'); // 11 bytes, as the listing claims
  const evil = `../../../../../../../../../../${outside.slice(1)}/secret.txt`;
  const body = Buffer.from('hello world');
  const sha = createHash('sha256').update(body).digest('hex');
  const base = await serve((req, res) => {
    if (req.url!.startsWith('/api/models/o/m/revision/')) {
      // two honest files, and a README whose blob id walks out of the cache onto a file of the right size
      const siblings = [
        { rfilename: 'README.md', size: 11, blobId: evil },
        ...['config.json', 'model.safetensors'].map((f) => ({ rfilename: f, size: 11, blobId: 'b'.repeat(40), lfs: { sha256: sha, size: 11 } })),
      ];
      return void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ sha: COMMIT, siblings }));
    }
    if (req.url!.startsWith('/api/')) return void res.writeHead(404).end();
    res.writeHead(200, { etag: `"${sha}"`, 'x-linked-etag': `"${sha}"`, 'x-repo-commit': COMMIT, 'content-length': 11 }).end(body);
  });
  const cache = freshCache();
  await pullModel('o/m', opts(base, cache)).catch(() => undefined); // may fail or succeed; what matters is below
  const links: string[] = [];
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isSymbolicLink()) links.push(path.resolve(d, fs.readlinkSync(p)));
      else if (e.isDirectory()) walk(p);
    }
  };
  walk(cache);
  assert.deepEqual(
    links.filter((l) => !l.startsWith(cache)),
    [],
    'no link leaves the cache',
  );
});

test('a file list whose next page is on another host is refused; the token never goes there', async () => {
  const seen: (string | undefined)[] = [];
  const other = await serve((req, res) => {
    seen.push(req.headers.authorization);
    res.writeHead(200, { 'content-type': 'application/json' }).end('[]');
  });
  const base = await serve((req, res) => {
    if (req.url!.startsWith('/api/models/o/m/revision/')) {
      return void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ sha: COMMIT, siblings: [{ rfilename: 'config.json' }, { rfilename: 'model.safetensors' }] }));
    }
    res.writeHead(200, { 'content-type': 'application/json', link: `<${other}/page2>; rel="next"` }).end('[]');
  });
  await assert.rejects(pullModel('o/m', opts(base, freshCache())), /continues on another host/);
  assert.deepEqual(seen, []);
});
