// The chat pages' message rendering (src/server/page/render.ts): the Markdown subset, HTML escaped,
// thinking folded; and its source text, which the server's page inlines, runs on its own (the
// functions use nothing outside RENDER_SCRIPT).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { markdown, messageHtml, RENDER_SCRIPT } from '../../src/server/page/render.js';

const CASES: [string, string][] = [
  ['plain <b>text</b> & "quotes"', '<p>plain &lt;b&gt;text&lt;/b&gt; &amp; &quot;quotes&quot;</p>'],
  ['# Title\nsome **bold** and *it* and `x<y`', '<h1>Title</h1><p>some <strong>bold</strong> and <em>it</em> and <code>x&lt;y</code></p>'],
  ['- a\n- b\n\n1. one\n2. two', '<ul><li>a</li><li>b</li></ul><ol><li>one</li><li>two</li></ol>'],
  ['```js\nif (a < b) {}\n```\nafter', '<pre><code>if (a &lt; b) {}</code></pre><p>after</p>'],
  ['[site](https://example.com) [bad](javascript:alert(1))', '<p><a href="https://example.com" target="_blank" rel="noopener">site</a> [bad](javascript:alert(1))</p>'],
  ['line one\nline two', '<p>line one<br>line two</p>'],
];

test('markdown: the subset, with HTML escaped', () => {
  for (const [src, html] of CASES) assert.equal(markdown(src), html, src);
});

test('messageHtml: thinking folded (open until the answer starts), tool calls, content', () => {
  assert.equal(messageHtml({ content: '', reasoning: 'hmm <x>', tools: [] }), '<details class="think" open><summary>Thinking</summary>hmm &lt;x&gt;</details><div class="content"></div>');
  const done = messageHtml({ content: 'Hi', reasoning: 'hmm', tools: [{ function: { name: 'get', arguments: '{"a":1}' } }] });
  assert.equal(done, '<details class="think"><summary>Thinking</summary>hmm</details><div class="tool">🔧 get({&quot;a&quot;:1})</div><div class="content"><p>Hi</p></div>');
});

test('RENDER_SCRIPT runs on its own, as the server page inlines it', () => {
  const fns = new Function(`${RENDER_SCRIPT}\nreturn { markdown, messageHtml };`)() as { markdown: typeof markdown; messageHtml: typeof messageHtml };
  for (const [src, html] of CASES) assert.equal(fns.markdown(src), html, src);
  assert.equal(fns.messageHtml({ content: 'a', reasoning: '', tools: [] }), '<div class="content"><p>a</p></div>');
});
