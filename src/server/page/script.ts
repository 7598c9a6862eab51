// The chat page's browser script, kept as plain JavaScript text (it runs in the page, not in Node).
// How a message is drawn (markdown, thinking, tool calls) is render.ts's, inlined as its source text.
import { RENDER_SCRIPT } from './render.js';

export const PAGE_SCRIPT = String.raw`
const $ = (id) => document.getElementById(id);
const log = $('log'), input = $('input'), send = $('send'), stop = $('stop');
let history = [], controller = null, model = '', pending = []; // pending: data: URLs of images for the next message
$('key').value = localStorage.getItem('qwen-ts-key') || '';
$('key').onchange = () => localStorage.setItem('qwen-ts-key', $('key').value);
const headers = () => ({ 'Content-Type': 'application/json', ...($('key').value ? { Authorization: 'Bearer ' + $('key').value } : {}) });

fetch('/v1/models', { headers: headers() }).then((r) => r.json()).then((j) => { model = j.data[0].id; $('model').textContent = model; })
  .catch(() => { $('model').textContent = '(model list unavailable: API key?)'; });

${RENDER_SCRIPT}

function bubble(role) {
  const d = document.createElement('div');
  d.className = 'msg ' + role;
  d.dataset.role = role;
  log.appendChild(d);
  log.scrollTop = log.scrollHeight;
  return d;
}

function render(el, m) {
  el.innerHTML = messageHtml(m);
  log.scrollTop = log.scrollHeight;
}

function thumb(url, alt) {
  const i = document.createElement('img');
  i.src = url;
  i.alt = alt;
  return i;
}

function thumbs(urls) {
  const d = document.createElement('div');
  d.className = 'thumbs';
  for (const u of urls) d.appendChild(thumb(u, 'image'));
  return d;
}

function showPending() {
  const p = $('pending');
  p.innerHTML = '';
  pending.forEach((u, k) => { const i = p.appendChild(thumb(u, 'attached image')); i.onclick = () => { pending.splice(k, 1); showPending(); }; });
}

function attach(files) {
  for (const f of files) {
    if (!f.type.startsWith('image/')) continue;
    const r = new FileReader();
    r.onload = () => { pending.push(r.result); showPending(); };
    r.readAsDataURL(f);
  }
}

async function ask(text) {
  const images = pending; pending = []; showPending();
  // with images: text and image_url parts, as the OpenAI API takes them
  history.push({ role: 'user', content: images.length ? [{ type: 'text', text }, ...images.map((url) => ({ type: 'image_url', image_url: { url } }))] : text });
  const ub = bubble('user');
  ub.textContent = text;
  if (images.length) ub.appendChild(thumbs(images));
  const el = bubble('assistant');
  const m = { content: '', reasoning: '', tools: [] };
  controller = new AbortController();
  send.disabled = true; stop.hidden = false;
  try {
    const r = await fetch('/v1/chat/completions', {
      method: 'POST', headers: headers(), signal: controller.signal,
      body: JSON.stringify({ model, messages: history, stream: true, temperature: Number($('temperature').value),
        max_tokens: Number($('max_tokens').value), chat_template_kwargs: { enable_thinking: $('think').checked } }),
    });
    if (!r.ok) throw new Error((await r.json()).error.message);
    const reader = r.body.getReader(), dec = new TextDecoder();
    let buf = '';
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      buf += dec.decode(value, { stream: true });
      let i;
      while ((i = buf.indexOf('\n\n')) >= 0) {
        const ev = buf.slice(0, i); buf = buf.slice(i + 2);
        if (!ev.startsWith('data: ')) continue;
        const data = ev.slice(6);
        if (data === '[DONE]') continue;
        const j = JSON.parse(data);
        if (j.error) throw new Error(j.error.message);
        const d = j.choices[0] && j.choices[0].delta;
        if (!d) continue;
        if (d.content) m.content += d.content;
        if (d.reasoning_content) m.reasoning += d.reasoning_content;
        if (d.tool_calls) m.tools.push(...d.tool_calls);
        render(el, m);
      }
    }
    el.dataset.done = 'true';
  } catch (e) {
    if (e.name === 'AbortError') { el.dataset.done = 'stopped'; }
    else { el.classList.add('error'); el.textContent = String(e.message || e); el.dataset.done = 'error'; }
  } finally {
    history.push({ role: 'assistant', content: m.content });
    render(el, m);
    controller = null; send.disabled = false; stop.hidden = true;
  }
}

$('form').onsubmit = (e) => { e.preventDefault(); const t = input.value.trim(); if ((t || pending.length) && !controller) { input.value = ''; ask(t); } };
$('attach').onclick = () => $('file').click();
$('file').onchange = () => { attach($('file').files); $('file').value = ''; };
input.onpaste = (e) => { const fs = [...(e.clipboardData ? e.clipboardData.files : [])].filter((f) => f.type.startsWith('image/')); if (fs.length) { e.preventDefault(); attach(fs); } };
input.onkeydown = (e) => { if (e.key === 'Enter' && !e.shiftKey) { e.preventDefault(); $('form').requestSubmit(); } };
stop.onclick = () => controller && controller.abort();
$('clear').onclick = () => { history = []; log.innerHTML = ''; pending = []; showPending(); };
`;
