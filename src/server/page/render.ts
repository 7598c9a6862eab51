// How a chat message is drawn: a small Markdown renderer, the model's thinking folded into a
// collapsible block, tool calls. Shared by the two chat pages: the server's page (script.ts) embeds
// these functions' source text in its inline script, and `qwen-ts web`'s page (src/web/) imports
// this module in the browser. So each function must stand alone: no imports, no module state, and
// only calls to the other functions listed in RENDER_SCRIPT.

/** What a reply shows: its answer, its thinking, its tool calls. */
export interface RenderedMessage {
  content: string;
  reasoning: string;
  tools: { function: { name: string; arguments: string } }[];
}

export function esc(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] ?? c);
}

export function inline(s: string): string {
  return esc(s)
    .replace(/`([^`]+)`/g, '<code>$1</code>')
    .replace(/\*\*([^*]+)\*\*/g, '<strong>$1</strong>')
    .replace(/(^|[^*])\*([^*\s][^*]*)\*/g, '$1<em>$2</em>')
    .replace(/\[([^\]]+)\]\((https?:[^)\s]+)\)/g, '<a href="$2" target="_blank" rel="noopener">$1</a>');
}

/** A small markdown renderer: fenced code, headings, lists, paragraphs, inline code/bold/italic/links. */
export function markdown(src: string): string {
  const out: string[] = [];
  const lines = src.split('\n');
  let list: string | null = null;
  let para: string[] = [];
  const flush = () => {
    if (para.length) {
      out.push(`<p>${para.map(inline).join('<br>')}</p>`);
      para = [];
    }
    if (list) {
      out.push(`</${list}>`);
      list = null;
    }
  };
  for (let i = 0; i < lines.length; i++) {
    const l = lines[i] ?? '';
    const fence = /^```(\S*)/.exec(l);
    if (fence) {
      flush();
      const code: string[] = [];
      while (++i < lines.length && !/^```/.test(lines[i] ?? '')) code.push(lines[i] ?? '');
      out.push(`<pre><code>${esc(code.join('\n'))}</code></pre>`);
      continue;
    }
    const h = /^(#{1,6})\s+(.*)/.exec(l);
    const li = /^\s*(?:[-*+]|(\d+)[.)])\s+(.*)/.exec(l);
    if (h) {
      flush();
      const n = (h[1] ?? '#').length;
      out.push(`<h${n}>${inline(h[2] ?? '')}</h${n}>`);
    } else if (li) {
      if (para.length) {
        const l2: string | null = list;
        list = null;
        flush();
        list = l2;
      }
      const kind = li[1] ? 'ol' : 'ul';
      if (list !== kind) {
        if (list) out.push(`</${list}>`);
        out.push(`<${kind}>`);
        list = kind;
      }
      out.push(`<li>${inline(li[2] ?? '')}</li>`);
    } else if (!l.trim()) flush();
    else {
      if (list) {
        out.push(`</${list}>`);
        list = null;
      }
      para.push(l);
    }
  }
  flush();
  return out.join('');
}

/** A reply's inner HTML: thinking (open while no answer has come yet), tool calls, the answer. */
export function messageHtml(m: RenderedMessage): string {
  let html = '';
  if (m.reasoning) html += `<details class="think"${m.content ? '' : ' open'}><summary>Thinking</summary>${esc(m.reasoning)}</details>`;
  for (const t of m.tools) html += `<div class="tool">🔧 ${esc(t.function.name)}(${esc(t.function.arguments)})</div>`;
  html += `<div class="content">${markdown(m.content)}</div>`;
  return html;
}

/** The functions above as script text, for a page that inlines its script. */
export const RENDER_SCRIPT = [esc, inline, markdown, messageHtml].map(String).join('\n');
