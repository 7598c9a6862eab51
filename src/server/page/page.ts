// The chat page served at /: one self-contained HTML document (no CDN, no build step). It talks
// to this server's /v1/chat/completions with streaming, renders markdown, folds the model's
// thinking into a collapsible block, shows tool calls, and has a stop button. Images (a vision
// model) are attached with the file button or pasted into the message box, shown as thumbnails,
// and sent as data: URLs in image_url parts.
// STYLE is exported for qwen-ts web's page (src/web/html.ts), which looks the same.
import { PAGE_SCRIPT } from './script.js';

export const STYLE = `
:root { --bg: #f7f7f8; --fg: #1d1d1f; --muted: #6b6b70; --user: #dbeafe; --bot: #fff; --border: #e2e2e6; --accent: #5b5bd6; }
@media (prefers-color-scheme: dark) { :root { --bg: #18181b; --fg: #ececf1; --muted: #a1a1aa; --user: #1e3a5f; --bot: #232327; --border: #333338; --accent: #8b8bf5; } }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.5 system-ui, sans-serif; background: var(--bg); color: var(--fg); display: flex; flex-direction: column; height: 100vh; }
header { padding: 10px 16px; border-bottom: 1px solid var(--border); display: flex; gap: 12px; align-items: center; flex-wrap: wrap; }
header h1 { font-size: 16px; margin: 0 8px 0 0; }
header label { color: var(--muted); font-size: 13px; display: flex; gap: 4px; align-items: center; }
header input[type=number] { width: 70px; }
#log { flex: 1; overflow-y: auto; padding: 16px; display: flex; flex-direction: column; gap: 12px; }
.msg { max-width: 820px; width: 100%; margin: 0 auto; padding: 10px 14px; border-radius: 10px; border: 1px solid var(--border); background: var(--bot); white-space: normal; overflow-wrap: anywhere; }
.msg.user { background: var(--user); white-space: pre-wrap; }
.msg.error { border-color: #d33; color: #d33; }
.msg pre { background: rgba(127,127,127,.12); padding: 8px; border-radius: 6px; overflow-x: auto; }
.msg code { font-family: ui-monospace, monospace; font-size: 13px; }
details.think { color: var(--muted); margin-bottom: 6px; white-space: pre-wrap; }
.tool { font-family: ui-monospace, monospace; font-size: 13px; border-left: 3px solid var(--accent); padding-left: 8px; margin: 6px 0; }
form { display: flex; gap: 8px; padding: 12px 16px; border-top: 1px solid var(--border); max-width: 852px; width: 100%; margin: 0 auto; }
textarea { flex: 1; resize: vertical; min-height: 44px; max-height: 40vh; font: inherit; padding: 8px; border-radius: 8px; border: 1px solid var(--border); background: var(--bot); color: var(--fg); }
button { font: inherit; padding: 8px 16px; border-radius: 8px; border: 0; background: var(--accent); color: #fff; cursor: pointer; }
button[disabled] { opacity: .5; cursor: default; }
#stop { background: #d33; }
.thumbs { display: flex; flex-wrap: wrap; gap: 6px; }
.thumbs img { max-height: 96px; max-width: 160px; border-radius: 6px; border: 1px solid var(--border); }
#pending:empty { display: none; }
#pending { max-width: 852px; width: 100%; margin: 0 auto; padding: 8px 16px 0; }
#pending img { cursor: pointer; }
#attach { background: transparent; color: var(--fg); border: 1px solid var(--border); padding: 8px 12px; }
`;

export const PAGE_HTML = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>qwen.ts chat</title><style>${STYLE}</style></head>
<body>
<header>
  <h1>qwen.ts</h1><span id="model" data-testid="model"></span>
  <label>temperature <input id="temperature" type="number" min="0" max="2" step="0.1" value="0.7"></label>
  <label>max tokens <input id="max_tokens" type="number" min="1" step="1" value="1024"></label>
  <label><input id="think" type="checkbox" checked> think</label>
  <label>API key <input id="key" type="password" autocomplete="off" style="width:110px"></label>
  <button id="clear" type="button">New chat</button>
</header>
<main id="log" aria-live="polite"></main>
<div id="pending" class="thumbs" title="click an image to remove it"></div>
<form id="form">
  <button id="attach" type="button" title="attach an image (or paste one)">+</button>
  <input id="file" type="file" accept="image/png,image/jpeg,image/webp,image/gif,image/bmp" multiple hidden>
  <textarea id="input" placeholder="Message (Enter to send, Shift+Enter for a new line)" autofocus></textarea>
  <button id="send" type="submit">Send</button>
  <button id="stop" type="button" hidden>Stop</button>
</form>
<script>${PAGE_SCRIPT}</script>
</body></html>`;
