// The page `qwen-ts web` serves: the server chat page's look (its STYLE), a textbox named "Message",
// a "Send" button, settings (temperature, max tokens, thinking), load progress, the one-thread
// notice and an error line. Its script is app.ts (compiled into dist/src/web/app.js), which runs
// the model in the browser; what to load comes in a JSON block, read by app.ts.
import { STYLE } from '../server/page/page.js';

/** What the page loads: a model file on this server, or a file of a hub repository. */
export interface WebConfig {
  /** shown in the header */
  name: string;
  /** a URL on this server (/model/...), or a hub file the page downloads into its cache */
  source: { url: string } | { hub: string; file?: string; revision?: string };
  /** the hub's base URL (default https://huggingface.co) */
  hubBaseUrl?: string;
}

const WEB_STYLE = `
#status { padding: 6px 16px; font-size: 13px; color: var(--muted); display: flex; gap: 8px; align-items: center; }
#status[hidden] { display: none; }
#status progress { width: 240px; }
.banner { margin: 8px 16px 0; padding: 8px 12px; border-radius: 8px; font-size: 14px; }
.banner[hidden] { display: none; }
#notice { background: rgba(245, 180, 0, .15); border: 1px solid rgba(245, 180, 0, .6); }
#error { background: rgba(221, 51, 51, .1); border: 1px solid #d33; color: #d33; white-space: pre-wrap; }
#threads { color: var(--muted); font-size: 13px; }
`;

/** JSON that can sit inside a <script> element (no '</script>', no '<!--'). */
function scriptJson(v: unknown): string {
  return JSON.stringify(v).replace(/</g, '\\u003c');
}

export function webPage(config: WebConfig): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>qwen.ts in the browser</title><style>${STYLE}${WEB_STYLE}</style>
<script type="application/json" id="qwen-web-config">${scriptJson(config)}</script>
</head>
<body>
<header>
  <h1>qwen.ts</h1><span id="model" data-testid="model"></span><span id="threads"></span>
  <label>temperature <input id="temperature" type="number" min="0" max="2" step="0.1" value="0.7"></label>
  <label>max tokens <input id="max_tokens" type="number" min="1" step="1" value="1024"></label>
  <label><input id="think" type="checkbox" checked> think</label>
  <button id="clear" type="button">New chat</button>
</header>
<div id="status" role="status"><progress id="progress" max="1" value="0"></progress><span id="status-text">starting the engine…</span></div>
<div id="notice" class="banner" role="note" hidden></div>
<div id="error" class="banner" role="alert" hidden></div>
<main id="log" aria-live="polite"></main>
<form id="form">
  <textarea id="input" aria-label="Message" placeholder="Message (Enter to send, Shift+Enter for a new line)" autofocus></textarea>
  <button id="send" type="submit" disabled>Send</button>
  <button id="stop" type="button" hidden>Stop</button>
</form>
<noscript>This page runs the model in your browser: it needs JavaScript.</noscript>
<script type="module" src="/dist/src/web/app.js"></script>
</body></html>`;
}
