// Attacks on the hub client's loops and retries: a hostile (or broken) hub that pages or redirects
// in circles, redirects off HTTP, sends endless or never-ending bodies, or a certificate that will
// never verify. Each must end in a clear message naming the problem, after a handful of requests and
// in bounded time: never thousands of requests, never retries of an answer that cannot change.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import * as http from 'node:http';
import * as https from 'node:https';
import * as net from 'node:net';
import type { AddressInfo } from 'node:net';
import { pullModel } from '../../src/hub/pull.js';
import { SILENT } from '../../src/hub/progress.js';
import { sendsCredentials } from '../../src/hub/http.js';
import { printable } from '../../src/errors.js';
import { QwenError } from '../../src/errors.js';
import { FAST_NET, freshCache } from './util.js';

const COMMIT = 'a'.repeat(40);
const REV = `/api/models/o/m/revision/`;
const TREE = `/api/models/o/m/tree/${COMMIT}`;
const servers: net.Server[] = [];
after(() =>
  Promise.all(
    servers.map(
      (s) =>
        new Promise((r) => {
          (s as http.Server).closeAllConnections?.();
          s.close(r);
        }),
    ),
  ),
);

/** A server that counts what it is asked; `hits(prefix)` is the number of requests whose path starts with it. */
async function serve(handler: http.RequestListener, server: net.Server = http.createServer()): Promise<{ base: string; urls: string[]; hits: (p: string) => number }> {
  const urls: string[] = [];
  server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
    urls.push(req.url!);
    handler(req, res);
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const scheme = server instanceof https.Server ? 'https' : 'http';
  return { base: `${scheme}://127.0.0.1:${(server.address() as AddressInfo).port}`, urls, hits: (p) => urls.filter((u) => u.startsWith(p)).length };
}

const opts = (endpoint: string, extra: object = {}) => {
  const cache = freshCache();
  return { endpoint, cacheDir: cache, env: { HF_HOME: cache }, token: 'hf_SECRET', net: FAST_NET, progress: SILENT, freeBytes: async () => undefined, ...extra };
};

const json = (res: http.ServerResponse, body: unknown, headers: Record<string, string> = {}) => void res.writeHead(200, { 'content-type': 'application/json', ...headers }).end(JSON.stringify(body));

/** The revision answer without sizes or hashes, which sends the client to the paged tree API. */
const bareRevision = (res: http.ServerResponse) => json(res, { sha: COMMIT, siblings: [{ rfilename: 'config.json' }, { rfilename: 'model.safetensors' }] });

/** Assert the pull fails with a QwenError matching `re` within `ms`; returns the message. */
async function failsFast(p: Promise<unknown>, re: RegExp, ms = 5000): Promise<string> {
  const t0 = Date.now();
  let msg = '';
  await assert.rejects(p, (e: Error) => {
    assert.ok(e instanceof QwenError, `expected a QwenError, got ${e.stack}`);
    assert.match(e.message, re);
    msg = e.message;
    return true;
  });
  assert.ok(Date.now() - t0 < ms, `took ${Date.now() - t0} ms`);
  return msg;
}

test('a tree listing whose next page is itself stops at once, naming the URL as a pagination loop', async () => {
  const s = await serve((req, res) => {
    if (req.url!.startsWith(REV)) return bareRevision(res);
    json(res, [], { link: `<${req.url}>; rel="next"` }); // relative, as the same URL again
  });
  const msg = await failsFast(pullModel('o/m', opts(s.base)), /pagination loop/);
  assert.ok(msg.includes(`${s.base}${TREE}?recursive=true`), msg);
  assert.ok(s.hits(TREE) <= 2, `${s.hits(TREE)} tree requests`);
});

test('a cycle of two pages (A -> B -> A) is caught too', async () => {
  const s = await serve((req, res) => {
    if (req.url!.startsWith(REV)) return bareRevision(res);
    const onB = req.url!.includes('cursor=b');
    json(res, [{ type: 'file', path: onB ? 'b.json' : 'a.json', size: 1, oid: '1'.repeat(40) }], { link: `<${s.base}${TREE}?recursive=true${onB ? '' : '&cursor=b'}>; rel="next"` });
  });
  await failsFast(pullModel('o/m', opts(s.base)), /pagination loop/);
  assert.ok(s.hits(TREE) <= 3, `${s.hits(TREE)} tree requests`);
});

test('pages with ever-new cursors that repeat the same files are a loop as well', async () => {
  let n = 0;
  const s = await serve((req, res) => {
    if (req.url!.startsWith(REV)) return bareRevision(res);
    json(res, [{ type: 'file', path: 'config.json', size: 1, oid: '1'.repeat(40) }], { link: `<${TREE}?recursive=true&cursor=${++n}>; rel="next"` });
  });
  await failsFast(pullModel('o/m', opts(s.base)), /lists config\.json again on page 2/);
  assert.ok(s.hits(TREE) <= 3, `${s.hits(TREE)} tree requests`);
});

test('a redirect to file:///etc/passwd is refused at once, not retried', async () => {
  const s = await serve((_req, res) => void res.writeHead(302, { location: 'file:///etc/passwd' }).end());
  await failsFast(pullModel('o/m', opts(s.base)), /redirects .* to file:\/\/\/etc\/passwd: only http and https are followed/);
  assert.equal(s.urls.length, 1);
});

/** A server answering every request with `head` as written (Node's own server will not send control characters). */
async function rawServer(head: string): Promise<{ base: string; count: () => number }> {
  let n = 0;
  const raw = net.createServer((sock) => {
    n++;
    sock.once('data', () => sock.end(`${head}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n`, 'latin1'));
  });
  servers.push(raw);
  await new Promise<void>((r) => raw.listen(0, '127.0.0.1', r));
  return { base: `http://127.0.0.1:${(raw.address() as AddressInfo).port}`, count: () => n };
}

test('a redirect target of 5,000 characters, or one with terminal escapes, is cut and escaped in the message', async () => {
  const long = await rawServer(`HTTP/1.1 302 Found\r\nlocation: gopher://x/${'A'.repeat(5000)}`);
  let msg = await failsFast(pullModel('o/m', opts(long.base)), /redirects .* to gopher:\/\/x\/AAAA.*… \(5011 characters\): only http and https/);
  assert.ok(msg.length < 1000, `message of ${msg.length} characters`);
  assert.equal(long.count(), 1);
  // not a URL at all, with a C1 escape (CSI, byte 0x9b) that some terminals obey
  const csi = await rawServer('HTTP/1.1 302 Found\r\nlocation: http://[\x9b2J');
  msg = await failsFast(pullModel('o/m', opts(csi.base)), /redirects .* to http:\/\/\[\\x9b2J: not a valid URL/);
  assert.doesNotMatch(msg, /[\x00-\x1f\x7f-\x9f]/, 'no raw control character reaches the terminal');
  // C0 controls never get past the HTTP parser: a malformed answer is final, not retried
  const esc = await rawServer('HTTP/1.1 302 Found\r\nlocation: http://x/\x1b[2J');
  await failsFast(pullModel('o/m', opts(esc.base)), /127\.0\.0\.1:\d+ sent a malformed HTTP answer \(HPE_/);
  assert.equal(esc.count(), 1);
});

test('printable escapes control and bidi characters and cuts long URLs', () => {
  assert.equal(printable('http://h/\x1b[31m\u202e'), 'http://h/\\x1b[31m\\u202e');
  const long = printable(`http://h/${'x'.repeat(1000)}`);
  assert.ok(long.length < 250 && long.endsWith('(1009 characters)'), long);
});

test('an error answer carrying terminal escapes is shown escaped', async () => {
  const s = await serve((_req, res) => void res.writeHead(400, { 'content-type': 'application/json' }).end(JSON.stringify({ error: '\x1b[2J\x1b]0;pwned\x07gone' })));
  const msg = await failsFast(pullModel('o/m', opts(s.base)), /answered .* with HTTP 400: \\x1b\[2J\\x1b\]0;pwned\\x07gone/);
  assert.doesNotMatch(msg, /[\x00-\x1f\x7f-\x9f]/);
});

test('a redirect to itself ends at once as a redirect loop', async () => {
  const s = await serve((req, res) => void res.writeHead(307, { location: req.url! }).end());
  await failsFast(pullModel('o/m', opts(s.base)), /redirect loop: .*\/api\/models\/o\/m\/revision\/main\?blobs=true/);
  assert.equal(s.urls.length, 1);
});

test('endless distinct redirects end after 10, without retries', async () => {
  let n = 0;
  const s = await serve((_req, res) => void res.writeHead(302, { location: `/hop/${++n}` }).end());
  await failsFast(pullModel('o/m', opts(s.base)), /more than 10 redirects/);
  assert.ok(s.urls.length <= 11, `${s.urls.length} requests`);
});

test('credentials go only to the hub origin: not over a https -> http downgrade, another port or host', () => {
  assert.equal(sendsCredentials('https://huggingface.co/a', 'https://huggingface.co/b'), true);
  assert.equal(sendsCredentials('https://huggingface.co/a', 'http://huggingface.co/b'), false);
  assert.equal(sendsCredentials('https://huggingface.co/a', 'https://huggingface.co:8443/b'), false);
  assert.equal(sendsCredentials('https://huggingface.co/a', 'https://cdn-lfs.huggingface.co/b'), false);
});

test('an error answer whose body never ends still gives its status, in bounded time', async () => {
  const s = await serve((_req, res) => {
    res.writeHead(404, { 'content-type': 'application/json', 'x-error-code': 'RepoNotFound' });
    res.write('{"error":"Repository not found"'); // ... and then nothing, forever
  });
  await failsFast(pullModel('o/m', opts(s.base)), /model 'o\/m' was not found on Hugging Face/);
  assert.equal(s.urls.length, 1);
});

test('an endless JSON listing is cut off at the size limit, not read into memory forever', async () => {
  let sent = 0;
  const s = await serve((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    const chunk = Buffer.alloc(1 << 20, 0x20);
    const more = () => {
      while (!res.destroyed && res.write(chunk)) sent += chunk.length;
    };
    res.on('drain', more);
    res.write('[');
    more();
  });
  await failsFast(pullModel('o/m', opts(s.base)), /more than 64 MB/, 15_000);
  assert.ok(sent < 200 << 20, `${sent} bytes sent`);
  assert.equal(s.urls.length, 1);
});

test('a Content-Length over the JSON size limit is refused before reading', async () => {
  const s = await serve((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(1e12) });
    res.write('[');
  });
  await failsFast(pullModel('o/m', opts(s.base)), /announces 1000000000000 bytes of JSON/);
  assert.equal(s.urls.length, 1);
});

test('a JSON listing that trickles a byte at a time ends at its deadline', async () => {
  const s = await serve((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    const t = setInterval(() => (res.destroyed ? clearInterval(t) : res.write(' ')), 50);
    res.on('close', () => clearInterval(t));
  });
  // the deadline is 10 header timeouts: 3 s here
  await failsFast(pullModel('o/m', opts(s.base, { net: { ...FAST_NET, timeoutMs: 300 } })), /did not finish sending .* in 3 s/, 8000);
  assert.equal(s.urls.length, 1);
});

test('a non-HTTP endpoint is refused before any request', async () => {
  await failsFast(pullModel('o/m', opts('ftp://127.0.0.1:1')), /ftp:\/\/127\.0\.0\.1:1\/api\/models\/o\/m\/revision\/main\?blobs=true is not an http or https URL/);
});

// A throwaway self-signed certificate for 127.0.0.1 (made for this test with openssl; the key guards nothing).
const KEY = `-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgw4d56v3jDwYfi2kN
GtUyBZQ8yrcNtJSeiT+VCRVJqgGhRANCAATGvVgH7NNbb1PHVGoHeimX8txH7ZvN
dmrhQreLD9S4T48SEw32Jf3HwU3jpyOFB2mTvVDpqvoJZUBPkrqUAtGk
-----END PRIVATE KEY-----`;
const CERT = `-----BEGIN CERTIFICATE-----
MIIBfzCCASWgAwIBAgIUWvOrgLU5xhJC7e3R5f0r/lGlKvwwCgYIKoZIzj0EAwIw
FDESMBAGA1UEAwwJMTI3LjAuMC4xMCAXDTI2MTIwMjAzMzQxMFoYDzIxMjYxMTA4
MDMzNDEwWjAUMRIwEAYDVQQDDAkxMjcuMC4wLjEwWTATBgcqhkjOPQIBBggqhkjO
PQMBBwNCAATGvVgH7NNbb1PHVGoHeimX8txH7ZvNdmrhQreLD9S4T48SEw32Jf3H
wU3jpyOFB2mTvVDpqvoJZUBPkrqUAtGko1MwUTAdBgNVHQ4EFgQUtovDgTu392F2
azHCMKU7KwzWS+QwHwYDVR0jBBgwFoAUtovDgTu392F2azHCMKU7KwzWS+QwDwYD
VR0TAQH/BAUwAwEB/zAKBggqhkjOPQQDAgNIADBFAiEAsgd0eHgSPqecz3Cq+aWs
QT6AEBfr1UIHoTZ2WLuLq18CIHmBPv07AyDEerE5W+i85XeboKEliLDMI1CnrtUD
p5PB
-----END CERTIFICATE-----`;

test('a certificate that does not verify is a final answer, not retried', async () => {
  let connections = 0;
  const server = https.createServer({ key: KEY, cert: CERT });
  server.on('connection', () => connections++);
  const s = await serve((_req, res) => void res.writeHead(404).end(), server);
  await failsFast(pullModel('o/m', opts(s.base)), /TLS certificate does not verify \((DEPTH_ZERO_SELF_SIGNED_CERT|CERT_\w+)\)/);
  assert.equal(connections, 1);
  assert.equal(s.urls.length, 0);
});

test('HTTP 416 to a download that asked no range is final: there is nothing to start over from', async () => {
  const sha = 'c'.repeat(64);
  const s = await serve((req, res) => {
    if (req.url!.startsWith(REV)) {
      return json(res, { sha: COMMIT, siblings: ['config.json', 'model.safetensors'].map((f) => ({ rfilename: f, size: 11, blobId: 'b'.repeat(40), lfs: { sha256: sha, size: 11 } })) });
    }
    res.writeHead(416).end();
  });
  await failsFast(pullModel('o/m', opts(s.base)), /answered a plain download with HTTP 416/);
  assert.equal(s.hits('/o/m/resolve/'), 1);
});
