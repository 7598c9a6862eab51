// Fine-tuning data: a JSONL file of chat lines `{"messages": [...]}` (OpenAI's fine-tuning format)
// or `{"prompt": ..., "completion": ...}` lines, tokenized into sequences with a loss mask.
//
// Chat lines are rendered with the model's own chat template; the loss covers assistant turns
// only (content and the turn's closing <|im_end|>), except those marked `weight: 0`.
// Prompt/completion lines get no template: prompt tokens, completion tokens, then the model's EOS;
// the loss covers the completion and the EOS.
import * as fs from 'node:fs';
import { fail, quote } from '../errors.js';
import { applyChatTemplate } from '../tokenizer/chat_template.js';
import type { Tokenizer } from '../tokenizer/tokenizer.js';
import type { TrainSeq } from './grad.js';

export type { TrainSeq } from './grad.js';

/** A sequence with the data line it came from (1-based), for messages. */
export interface DataSeq extends TrainSeq {
  line: number;
}

export interface DataOptions {
  /** longest sequence kept (tokens); longer ones are cut to it with a warning, or refused with `truncate: false` */
  maxTokens: number;
  /** cut over-long sequences (default) or fail naming the line */
  truncate?: boolean;
  /** where warnings go (default: stderr) */
  warn?: (message: string) => void;
}

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The ids that close an assistant turn: ChatML's <|im_end|> and the tokenizer's EOS ids. */
function turnEndIds(tok: Tokenizer): Set<number> {
  const ids = new Set(tok.eosTokenIds);
  const imEnd = tok.tokenToId('<|im_end|>');
  if (imEnd !== undefined) ids.add(imEnd);
  return ids;
}

/** The id appended after a completion: the tokenizer's eos_token (as TRL appends tokenizer.eos_token), else its first EOS id. */
export function eosId(tok: Tokenizer): number {
  const byText = tok.eosToken !== undefined ? tok.tokenToId(tok.eosToken) : undefined;
  const id = byText ?? tok.eosTokenIds[0];
  if (id === undefined) fail(`${tok.spec.source}: the tokenizer names no EOS token, so a completion cannot be ended`);
  return id;
}

function startsWith(a: readonly number[], prefix: readonly number[]): boolean {
  if (prefix.length > a.length) return false;
  for (let i = 0; i < prefix.length; i++) if (a[i] !== prefix[i]) return false;
  return true;
}

/**
 * A chat line's tokens and mask. Each trained assistant turn's span is found by rendering prefixes
 * (as TRL's prefix-based assistant masking does): the turn starts where the tokens of the
 * conversation up to it, rendered with the generation prompt (`...<|im_start|>assistant\n`), end in
 * the whole conversation's tokens, and ends at the first turn-closing token after that (included, so
 * the model learns to stop). A template whose prefix renders are not prefixes of the whole is refused.
 */
export function encodeChat(tok: Tokenizer, row: Record<string, unknown>, line: number): TrainSeq {
  const messages = row.messages;
  if (!Array.isArray(messages) || messages.length === 0) fail(`line ${line}: "messages" must be a non-empty array of {role, content} objects`);
  const tools = row.tools;
  // weight (OpenAI): 0 skips an assistant message's loss, 1 (default) trains it; the template never sees it
  const clean = messages.map((m, i) => {
    if (!isObj(m)) fail(`line ${line}: messages[${i}] must be an object with "role" and "content"`);
    const { weight, ...rest } = m;
    if (weight !== undefined && weight !== 0 && weight !== 1) fail(`line ${line}: messages[${i}].weight must be 0 or 1, got ${quote(weight)}`);
    return rest;
  });
  const trained = messages.flatMap((m, i) => ((m as Record<string, unknown>).role === 'assistant' && (m as Record<string, unknown>).weight !== 0 ? [i] : []));
  if (!messages.some((m) => (m as Record<string, unknown>).role === 'assistant')) fail(`line ${line}: no assistant turn to learn from (a chat line needs at least one {"role": "assistant"} message)`);
  const render = (msgs: unknown[], gen: boolean) => {
    try {
      return tok.encode(applyChatTemplate(tok, { messages: msgs, tools, addGenerationPrompt: gen }));
    } catch (e) {
      fail(`line ${line}: ${(e as Error).message}`);
    }
  };
  const full = render(clean, false);
  const mask = new Uint8Array(full.length);
  const ends = turnEndIds(tok);
  for (const i of trained) {
    const prefix = render(clean.slice(0, i), true);
    if (!startsWith(full, prefix))
      fail(`line ${line}: the chat template renders the conversation before message ${i} differently from the whole conversation, so the assistant turn cannot be located`);
    let end = prefix.length;
    while (end < full.length && !ends.has(full[end]!)) end++;
    for (let t = prefix.length; t <= end && t < full.length; t++) mask[t] = 1;
  }
  return { tokens: Int32Array.from(full), mask };
}

/** A prompt/completion line: no template, loss on the completion and the appended EOS. */
export function encodePromptCompletion(tok: Tokenizer, row: Record<string, unknown>, line: number): TrainSeq {
  const { prompt, completion } = row;
  if (typeof prompt !== 'string') fail(`line ${line}: "prompt" must be a string, got ${quote(prompt)}`);
  if (typeof completion !== 'string' || completion === '') fail(`line ${line}: "completion" must be a non-empty string, got ${quote(completion)}`);
  const p = tok.encode(prompt);
  const c = [...tok.encode(completion), eosId(tok)];
  const tokens = Int32Array.from([...p, ...c]);
  const mask = new Uint8Array(tokens.length);
  mask.fill(1, p.length);
  // the first token has no position before it to predict it from
  mask[0] = 0;
  return { tokens, mask };
}

/** Tokenize one JSONL line (1-based `line` for messages). */
export function encodeLine(tok: Tokenizer, text: string, line: number): TrainSeq {
  let row: unknown;
  try {
    row = JSON.parse(text);
  } catch (e) {
    fail(`line ${line}: not valid JSON (${(e as Error).message})`);
  }
  if (!isObj(row)) fail(`line ${line}: expected a JSON object with "messages", or "prompt" and "completion"`);
  if ('messages' in row) return encodeChat(tok, row, line);
  if ('prompt' in row || 'completion' in row) return encodePromptCompletion(tok, row, line);
  fail(`line ${line}: expected {"messages": [...]} or {"prompt": ..., "completion": ...}, got keys ${quote(Object.keys(row).join(', '))}`);
}

/** Parse JSONL text into training sequences (blank lines skipped). `what` names the file in messages. */
export function parseTrainData(text: string, tok: Tokenizer, opts: DataOptions, what = 'data'): DataSeq[] {
  const warn = opts.warn ?? ((m: string) => process.stderr.write(`warning: ${m}\n`));
  const out: DataSeq[] = [];
  const lines = text.split('\n');
  try {
    lines.forEach((raw, i) => {
      const line = i + 1;
      if (raw.trim() === '') return;
      let seq = encodeLine(tok, raw, line);
      if (seq.tokens.length > opts.maxTokens) {
        if (opts.truncate === false) fail(`line ${line}: ${seq.tokens.length} tokens, more than the limit of ${opts.maxTokens}`);
        warn(`${what}: line ${line}: ${seq.tokens.length} tokens cut to the limit of ${opts.maxTokens}`);
        seq = { tokens: seq.tokens.slice(0, opts.maxTokens), mask: seq.mask.slice(0, opts.maxTokens) };
      }
      if (!seq.mask.some((m) => m === 1)) {
        warn(`${what}: line ${line}: no tokens to learn from (every assistant turn has weight 0, or was cut off); skipped`);
        return;
      }
      out.push({ ...seq, line });
    });
  } catch (e) {
    if ((e as Error).name === 'QwenError') fail(`${what}: ${(e as Error).message}`);
    throw e;
  }
  if (out.length === 0) fail(`${what}: no training examples (the file is empty, or no line has tokens to learn from)`);
  return out;
}

/** Read and tokenize a JSONL data file. */
export function readTrainData(file: string, tok: Tokenizer, opts: DataOptions): DataSeq[] {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    fail(`${file}: cannot read the data file (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  return parseTrainData(text, tok, opts, file);
}
