// Cheap bounds on a prompt's size, checked before the template is rendered and the text
// tokenised. Both run on the HTTP thread and take time in proportion to the request (rendering
// 200,000 one-character messages takes seconds, during which no other request is answered);
// these bounds refuse what cannot fit the context in time proportional to the message count.
import type { Tokenizer } from '../tokenizer/tokenizer.js';
import { ApiError } from './errors.js';

// Every Qwen chat template (and the ChatML fallback) writes each message with at least
// <|im_start|> role \n ... <|im_end|> \n (5 tokens), or a grouped tool result with
// <tool_response> \n ... \n </tool_response> (4): 2 a message is a safe floor.
const MIN_TOKENS_PER_MESSAGE = 2;

/** The longest token in bytes: a text of n bytes (>= n UTF-16 units) needs at least n / this many tokens. */
export function maxTokenBytes(tok: Tokenizer): number {
  let m = 1;
  for (let i = 0; i < tok.vocabSize; i++) m = Math.max(m, tok.tokenBytes(i).length);
  return m;
}

const tooLong = (param: string, why: string, ctx: number) => new ApiError(400, `${why}: more than this model's context of ${ctx} tokens can hold`, param, 'context_length_exceeded');

/**
 * Messages that cannot fit `ctx` tokens however they tokenise: more messages than ctx / 2, or more
 * characters of system, user and tool content than ctx tokens of the longest kind. (Assistant
 * content is not counted: Qwen3's template drops earlier turns' thinking from the prompt.)
 */
export function checkMessagesBound(messages: unknown, ctx: number, tokenBytes: number, param = 'messages'): void {
  if (!Array.isArray(messages)) return; // the validator names the mistake
  if (messages.length * MIN_TOKENS_PER_MESSAGE > ctx) throw tooLong(param, `${messages.length} messages need at least ${messages.length * MIN_TOKENS_PER_MESSAGE} tokens`, ctx);
  let chars = 0;
  for (const m of messages as { role?: unknown; content?: unknown }[]) {
    if (typeof m !== 'object' || m === null || m.role === 'assistant') continue;
    if (typeof m.content === 'string') chars += m.content.length;
    else if (Array.isArray(m.content)) for (const p of m.content as { text?: unknown }[]) if (typeof p?.text === 'string') chars += p.text.length;
  }
  if (chars > ctx * tokenBytes) throw tooLong(param, `${chars} characters of message content need at least ${Math.ceil(chars / tokenBytes)} tokens`, ctx);
}

/** A completion prompt longer than ctx tokens of the longest kind cannot fit. */
export function checkPromptBound(prompt: string, ctx: number, tokenBytes: number): void {
  if (prompt.length > ctx * tokenBytes) throw tooLong('prompt', `a prompt of ${prompt.length} characters needs at least ${Math.ceil(prompt.length / tokenBytes)} tokens`, ctx);
}
