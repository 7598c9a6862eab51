// POST /v1/chat/completions and POST /v1/completions: streamed (SSE) or not, n choices at once.
import { randomUUID } from 'node:crypto';
import { chat, complete, type ChatEvent, type ChatResult } from '../chat/engine.js';
import { ApiError, badParam } from './errors.js';
import { noteUsage } from './access_log.js';
import { planChat } from './chat_plan.js';
import { choiceSeed, runChoices, totalUsage, type Handler } from './context.js';
import { abortOnClose, json, startSse, type Obj } from './http.js';
import { checkMessagesBound, checkPromptBound } from './limits.js';
import { messages, responseFormat, samplingParams, templateOptions, toolChoice } from './openai.js';
import { requestAdapter, servedName } from './models.js';
import { encodeImages, imageRefs } from './images.js';

export function chatUsage(rs: readonly ChatResult[]) {
  const u = totalUsage(rs);
  return { prompt_tokens: u.promptTokens, completion_tokens: u.completionTokens, total_tokens: u.promptTokens + u.completionTokens, prompt_tokens_details: { cached_tokens: u.cachedTokens } };
}

export function logprobEntry(e: Extract<ChatEvent, { kind: 'logprobs' }>): Obj {
  return { token: e.token, logprob: e.logprob, bytes: e.bytes, top_logprobs: e.top.map((t) => ({ token: t.token, logprob: t.logprob, bytes: t.bytes })) };
}

const finishReason = (r: ChatResult, calls: number) => (calls > 0 ? 'tool_calls' : r.finish === 'length' ? 'length' : 'stop');

export const chatCompletions: Handler = async ({ cm, tokenBytes, images: imageOpts }, body, req, res) => {
  const ctx = cm.config.max_position_embeddings;
  checkMessagesBound(body.messages, ctx, tokenBytes);
  const msgs = messages(body);
  const { tools, choice } = toolChoice(body);
  const sp = { ...samplingParams(body, ctx, cm.tokenizer.vocabSize), ...requestAdapter(cm, body) };
  const signal = abortOnClose(req, res);
  const images = await encodeImages(cm, imageRefs(msgs), imageOpts, signal); // fetched, checked, encoded: before any stream starts
  const plan = planChat(cm, {
    images,
    messages: msgs,
    tools,
    choice,
    format: responseFormat(body),
    sampling: sp,
    ...templateOptions(body),
    params: { messages: 'messages', schema: 'response_format.json_schema.schema' },
  });
  const start = (i: number, signal: AbortSignal) => chat(cm, { ...plan.request, seed: choiceSeed(sp.seed, i), signal, constraint: plan.constraint }, plan.prepared);
  const base = { id: `chatcmpl-${randomUUID().replace(/-/g, '')}`, created: Math.floor(Date.now() / 1000), model: servedName(cm, sp.adapter), system_fingerprint: 'qwen-ts' };

  if (!sp.stream) {
    const choices = await runChoices(sp.n, signal, async (index, signal) => {
      const events = start(index, signal);
      let content = '',
        reasoning = '';
      const toolCalls: Obj[] = [];
      const lps: Obj[] = [];
      let r: IteratorResult<ChatEvent, ChatResult>;
      while (!(r = await events.next()).done) {
        const e = r.value;
        if (e.kind === 'content') content += e.text;
        else if (e.kind === 'reasoning') reasoning += e.text;
        else if (e.kind === 'tool_call') toolCalls.push({ id: e.call.id, type: 'function', function: { name: e.call.name, arguments: e.call.arguments } });
        else lps.push(logprobEntry(e));
      }
      const message: Obj = { role: 'assistant', content: content || (toolCalls.length ? null : '') };
      if (reasoning) message.reasoning_content = reasoning;
      if (toolCalls.length) message.tool_calls = toolCalls;
      return { result: r.value, choice: { index, message, logprobs: sp.logprobs ? { content: lps } : null, finish_reason: finishReason(r.value, toolCalls.length) } };
    });
    if (choices.some((c) => c.result.finish === 'abort')) return;
    const results = choices.map((c) => c.result);
    noteUsage(res, totalUsage(results));
    return json(res, 200, { ...base, object: 'chat.completion', choices: choices.map((c) => c.choice), usage: chatUsage(results) });
  }

  const sse = startSse(res);
  const chunk = (index: number, delta: Obj, extra: Obj = {}) => sse({ ...base, object: 'chat.completion.chunk', choices: [{ index, delta, logprobs: null, finish_reason: null, ...extra }] });
  for (let i = 0; i < sp.n; i++) chunk(i, { role: 'assistant', content: '' });
  const results = await runChoices(sp.n, signal, async (index, signal) => {
    const events = start(index, signal);
    let calls = 0;
    let r: IteratorResult<ChatEvent, ChatResult>;
    while (!(r = await events.next()).done) {
      const e = r.value;
      if (e.kind === 'content') chunk(index, { content: e.text });
      else if (e.kind === 'reasoning') chunk(index, { reasoning_content: e.text });
      else if (e.kind === 'tool_call') chunk(index, { tool_calls: [{ index: calls++, id: e.call.id, type: 'function', function: { name: e.call.name, arguments: e.call.arguments } }] });
      else chunk(index, {}, { logprobs: { content: [logprobEntry(e)] } });
    }
    if (r.value.finish !== 'abort') chunk(index, {}, { finish_reason: finishReason(r.value, calls) });
    return r.value;
  });
  if (results.some((r) => r.finish === 'abort')) return void res.end();
  noteUsage(res, totalUsage(results));
  if (sp.includeUsage) sse({ ...base, object: 'chat.completion.chunk', choices: [], usage: chatUsage(results) });
  res.end('data: [DONE]\n\n');
};

export const completions: Handler = async ({ cm, tokenBytes }, body, req, res) => {
  const ctx = cm.config.max_position_embeddings;
  let prompt = body.prompt;
  if (Array.isArray(prompt) && prompt.length === 1) prompt = prompt[0];
  if (typeof prompt !== 'string' || prompt === '') throw badParam('prompt', "'prompt' must be a non-empty string");
  const sp = { ...samplingParams(body, ctx, cm.tokenizer.vocabSize, 'completions'), ...requestAdapter(cm, body) };
  checkPromptBound(prompt, ctx, tokenBytes);
  const n = cm.tokenizer.encode(prompt).length;
  if (n >= ctx) throw new ApiError(400, `the prompt has ${n} tokens; this model's context holds ${ctx}`, 'prompt', 'context_length_exceeded');
  const { n: _n, stream: _s, includeUsage: _u, ...sampling } = sp;
  const base = { id: `cmpl-${randomUUID().replace(/-/g, '')}`, object: 'text_completion', created: Math.floor(Date.now() / 1000), model: servedName(cm, sp.adapter) };
  const send = sp.stream ? startSse(res) : undefined;
  const choices = await runChoices(sp.n, abortOnClose(req, res), async (index, signal) => {
    const events = complete(cm, prompt, { ...sampling, seed: choiceSeed(sp.seed, index), signal });
    const lp = { tokens: [] as string[], token_logprobs: [] as number[], top_logprobs: [] as Obj[] };
    let text = '';
    let r: IteratorResult<{ text: string } | ChatEvent, ChatResult>;
    while (!(r = await events.next()).done) {
      const e = r.value;
      if ('kind' in e && e.kind === 'logprobs') {
        lp.tokens.push(e.token);
        lp.token_logprobs.push(e.logprob);
        lp.top_logprobs.push(Object.fromEntries(e.top.map((t) => [t.token, t.logprob])));
      } else if ('text' in e) {
        text += e.text;
        send?.({ ...base, choices: [{ index, text: e.text, logprobs: null, finish_reason: null }] });
      }
    }
    const finish_reason = r.value.finish === 'length' ? 'length' : 'stop';
    if (r.value.finish !== 'abort') send?.({ ...base, choices: [{ index, text: '', logprobs: null, finish_reason }] });
    return { result: r.value, choice: { index, text, logprobs: sp.logprobs ? lp : null, finish_reason } };
  });
  const results = choices.map((c) => c.result);
  if (results.some((r) => r.finish === 'abort')) return void res.end();
  noteUsage(res, totalUsage(results));
  const usage = chatUsage(results);
  if (send) {
    if (sp.includeUsage) send({ ...base, choices: [], usage });
    return void res.end('data: [DONE]\n\n');
  }
  json(res, 200, { ...base, choices: choices.map((c) => c.choice), usage });
};
