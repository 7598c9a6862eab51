// The script of `qwen-ts web`'s page (runs in the browser): loads the model named in the page's
// config block into a BrowserEngine (a Web Worker: the page never freezes), shows the load's
// progress, how many threads the kernels got (and, with one, why), then chats: each reply
// streams into an element with data-role="assistant", drawn as the server's page draws it
// (render.ts), its thinking split off as `qwen-ts run` splits it (QwenOutputParser).
//
// For automation: <body data-state="loading|ready|error">, #threads[data-threads], and on each
// reply data-tokens (the generated token ids) and data-done (true | stopped | error) when it ends.
// window.qwenWeb holds the engine and the loaded model's info (bench/browser.ts measures it).
import { BrowserEngine, type ChatMessage, type GenerateStats, type LoadProgress, type ModelInfo, type ModelSource, type ThreadInfo } from '../browser/index.js';
import { QwenOutputParser, type OutputEvent } from '../chat/qwen_output.js';
import { messageHtml, type RenderedMessage } from '../server/page/render.js';
import type { WebConfig } from './html.js';

const $ = <T extends HTMLElement = HTMLElement>(id: string): T => {
  const el = document.getElementById(id);
  if (!el) throw new Error(`the page has no #${id}`);
  return el as T;
};
const log = $('log');
const input = $<HTMLTextAreaElement>('input');
const send = $<HTMLButtonElement>('send');
const stop = $<HTMLButtonElement>('stop');
const config = JSON.parse($('qwen-web-config').textContent ?? '{}') as WebConfig;
let history: ChatMessage[] = [];
let busy = false;

function setState(state: 'loading' | 'ready' | 'error'): void {
  document.body.dataset.state = state;
}

function showError(message: string): void {
  const el = $('error');
  el.textContent = message;
  el.hidden = false;
}

function mb(n: number): string {
  return `${(n / 2 ** 20).toFixed(n < 10 * 2 ** 20 ? 1 : 0)} MB`;
}

function showProgress(p: LoadProgress): void {
  const bar = $<HTMLProgressElement>('progress');
  bar.max = Math.max(1, p.total);
  bar.value = p.done;
  const file = decodeURIComponent(p.file.split('/').pop() ?? p.file);
  $('status-text').textContent = `${p.phase === 'download' ? 'downloading' : 'loading'} ${file}: ${mb(p.done)} of ${mb(p.total)}`;
}

function showThreads(t: ThreadInfo): void {
  const el = $('threads');
  el.dataset.threads = String(t.threads);
  el.textContent = `· ${t.threads} thread${t.threads === 1 ? '' : 's'}`;
  const notice = $('notice');
  if (t.threads === 1 && (t.notice || !t.crossOriginIsolated)) {
    notice.textContent =
      t.notice ??
      'This page is not cross-origin isolated, so the model runs on one thread (slower). Serve it with Cross-Origin-Opener-Policy: same-origin and Cross-Origin-Embedder-Policy: require-corp for more.';
    notice.hidden = false;
  } else notice.hidden = true;
}

function bubble(role: 'user' | 'assistant'): HTMLDivElement {
  const d = document.createElement('div');
  d.className = `msg ${role}`;
  d.dataset.role = role;
  log.appendChild(d);
  log.scrollTop = log.scrollHeight;
  return d;
}

function apply(m: RenderedMessage, events: OutputEvent[]): void {
  for (const e of events) {
    if (e.kind === 'content') m.content += e.text;
    else if (e.kind === 'reasoning') m.reasoning += e.text;
    else m.tools.push({ function: { name: e.call.name, arguments: e.call.arguments } });
  }
}

function render(el: HTMLElement, m: RenderedMessage): void {
  el.innerHTML = messageHtml(m);
  log.scrollTop = log.scrollHeight;
}

function numberSetting(id: string, fallback: number): number {
  const v = Number($<HTMLInputElement>(id).value);
  return Number.isFinite(v) ? v : fallback;
}

async function ask(engine: BrowserEngine, text: string): Promise<void> {
  busy = true;
  send.disabled = true;
  stop.hidden = false;
  history.push({ role: 'user', content: text });
  bubble('user').textContent = text;
  const el = bubble('assistant');
  const m: RenderedMessage = { content: '', reasoning: '', tools: [] };
  const tokens: number[] = [];
  const enableThinking = $<HTMLInputElement>('think').checked;
  try {
    // as chat() in src/chat/engine.ts: a prompt that ends inside <think> starts in reasoning
    const prompt = await engine.template(history, enableThinking);
    const parser = new QwenOutputParser({ thinking: /<think>\s*$/.test(prompt) });
    const it = engine.generate({ messages: history, enableThinking }, { temperature: numberSetting('temperature', 0.7), max_tokens: Math.max(1, Math.floor(numberSetting('max_tokens', 1024))) });
    let stats: GenerateStats;
    for (;;) {
      const r = await it.next();
      if (r.done) {
        stats = r.value;
        break;
      }
      tokens.push(r.value.token);
      apply(m, parser.push(r.value.text));
      render(el, m);
    }
    apply(m, parser.push(stats.tail)); // an unfinished UTF-8 character at the end, as the CLI prints it
    apply(m, parser.finish());
    el.dataset.tokens = tokens.join(',');
    el.dataset.done = stats.finish === 'abort' ? 'stopped' : 'true';
    el.title = `${stats.completionTokens} tokens; prefill ${stats.prefillSeconds.toFixed(2)} s, decode ${(stats.completionTokens > 1 ? (stats.completionTokens - 1) / stats.decodeSeconds : 0).toFixed(1)} tok/s`;
  } catch (e) {
    el.classList.add('error');
    m.content += `\n\n${(e as Error).message ?? String(e)}`;
    el.dataset.tokens = tokens.join(',');
    el.dataset.done = 'error';
  } finally {
    history.push({ role: 'assistant', content: m.content });
    render(el, m);
    busy = false;
    send.disabled = false;
    stop.hidden = true;
  }
}

async function main(): Promise<void> {
  setState('loading');
  $('model').textContent = config.name;
  const engine = new BrowserEngine();
  const web: { engine: BrowserEngine; config: WebConfig; info?: ModelInfo } = { engine, config };
  (globalThis as { qwenWeb?: unknown }).qwenWeb = web;
  engine.onThreads = showThreads;
  const source: ModelSource = 'url' in config.source ? config.source.url : config.source;
  try {
    const info = await engine.load(source, { onProgress: showProgress, hubBaseUrl: config.hubBaseUrl });
    web.info = info;
    showThreads(info.threads);
    $('status').hidden = true;
    if (info.templateFallback) $('model').title = 'the model has no chat template: plain ChatML';
  } catch (e) {
    $('status').hidden = true;
    showError(`Could not load ${config.name}: ${(e as Error).message ?? String(e)}`);
    setState('error');
    return;
  }
  send.disabled = false;
  setState('ready');
  $<HTMLFormElement>('form').onsubmit = (e) => {
    e.preventDefault();
    const t = input.value.trim();
    if (t && !busy) {
      input.value = '';
      void ask(engine, t);
    }
  };
  input.onkeydown = (e) => {
    if (e.key === 'Enter' && !e.shiftKey) {
      e.preventDefault();
      $<HTMLFormElement>('form').requestSubmit();
    }
  };
  stop.onclick = () => engine.abort();
  $('clear').onclick = () => {
    if (busy) engine.abort();
    history = [];
    log.innerHTML = '';
  };
}

main().catch((e: unknown) => {
  showError(String((e as Error).message ?? e));
  setState('error');
});
