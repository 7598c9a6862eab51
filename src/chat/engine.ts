// A loaded chat model (weights, tokenizer, scheduler) and chat / completion generation as async
// iterators of events: messages -> template -> ids -> scheduler -> text pieces -> Qwen parser.
// The CLI and the server only consume these.
import { fail } from '../errors.js';
import { Scheduler, type Engine } from '../generate/scheduler.js';
import { DEFAULT_CACHE_BYTES } from '../generate/prefix_cache.js';
import { openSpeculation, type SpecOptions } from '../generate/spec_open.js';
import { EngineClient, type EngineClientOptions } from '../engine/client.js';
import type { Constraint, FinishReason, GenerateOptions } from '../generate/sequence.js';
import { StopStrings } from '../generate/stop.js';
import { loadModel, detectFormat, type LoadOptions } from '../models/load.js';
import { checkVocab } from '../models/load_source.js';
import type { CausalLM } from '../models/model.js';
import type { QwenConfig } from '../models/config.js';
import { applyChatTemplate, chatTemplateFor } from '../tokenizer/chat_template.js';
import { loadTokenizer } from '../tokenizer/load.js';
import { StreamDecoder, type Tokenizer } from '../tokenizer/tokenizer.js';
import { QwenOutputParser, type OutputEvent, type ToolCallFormat } from './qwen_output.js';
import { ImageQueue, visionOf, type ChatVision } from '../vision/jobs.js';
import { countImageParts, expandImagePads, renderWithImages } from '../vision/prompt.js';
import type { ImageEmbedding, PromptImage } from '../vision/types.js';

export type { ToolCallFormat } from './qwen_output.js';

/**
 * How a chat template has the model write tool calls, read from the template text (a fine-tune
 * may keep an architecture and change its template, or the reverse): XML (Qwen3.5, Qwen3-Coder)
 * when it writes `<function=` and `<parameter=` tags inside `<tool_call>` (llama.cpp's test for
 * its qwen3_coder handler), else JSON (Qwen2.5, Qwen3).
 */
export function toolCallFormat(template: string): ToolCallFormat {
  return template.includes('<tool_call>') && template.includes('<function=') && template.includes('<parameter=') ? 'xml' : 'json';
}

export interface ChatModel {
  name: string;
  path: string;
  /** the weights, when they are in this thread (openChatModel; not openChatModelThreaded) */
  model?: CausalLM;
  /** the model's config (what the HTTP side needs: context length, vocabulary size) */
  config: QwenConfig;
  tokenizer: Tokenizer;
  /** runs the generations: a Scheduler in this thread, or an engine thread's client */
  scheduler: Engine;
  /** the model has no chat template: plain ChatML is used */
  templateFallback: boolean;
  /** names of the LoRA adapters loaded with the model, in id order (id i + 1); a request picks one by name */
  adapters?: readonly string[];
  /** how the chat template writes tool calls (toolCallFormat); the parser and forced tool calls follow it */
  toolFormat: ToolCallFormat;
  /** the vision tower, where the model has one: images in messages are encoded by it (src/vision/jobs.ts) */
  vision?: ChatVision;
  /** stop the engine thread, if there is one */
  close?(): Promise<void>;
}

/** A chat model whose weights and scheduler live in this thread. */
export interface LocalChatModel extends ChatModel {
  model: CausalLM;
  scheduler: Scheduler;
}

/** A chat model whose weights and scheduler live on an engine thread (the HTTP thread never runs a forward pass). */
export interface ThreadedChatModel extends ChatModel {
  scheduler: EngineClient;
  close(): Promise<void>;
}

/** The tokenizer and template half of a chat model (what the HTTP thread needs); `config` checks the vocabularies agree. */
function chatSide(path: string, tokenizer: Tokenizer, config: QwenConfig) {
  checkVocab(path, tokenizer, config);
  const tmpl = chatTemplateFor(tokenizer);
  return { path, config, tokenizer, templateFallback: tmpl.fallback, toolFormat: toolCallFormat(tmpl.template) };
}

export interface EngineOptions {
  /** requests generating at once (default 8) */
  parallel?: number;
  /** bytes for the prefix cache (default 1 GiB; 0: off): prompts that start as earlier ones did reuse their keys and values */
  cacheMem?: number;
  /** speculative decoding: n-gram lookup or a draft model (same tokens greedy, same distribution sampled) */
  spec?: SpecOptions;
}

/** Load a chat model into this thread (the CLI's run, the library): forward passes run on the caller's thread. */
export function openChatModel(path: string, name: string, opts: LoadOptions & EngineOptions = {}): LocalChatModel {
  detectFormat(path);
  const tokenizer = loadTokenizer(path);
  const model = loadModel(path, opts);
  const spec = opts.spec && openSpeculation(opts.spec, { path, model, tokenizer }, opts);
  const scheduler = new Scheduler(model, undefined, opts.parallel, opts.cacheMem ?? DEFAULT_CACHE_BYTES, spec);
  const tower = visionOf(model);
  return { name, ...chatSide(path, tokenizer, model.config), model, scheduler, adapters: model.lora?.names, ...(tower && { vision: new ImageQueue(tower) }) };
}

/**
 * Load a chat model with its weights and scheduler on an engine thread (a worker that builds its
 * own backend from `backend` / `threads`, as the CLI's flags): this thread keeps the tokenizer and
 * template, and stays free while the engine computes. close() ends the engine thread.
 */
export async function openChatModelThreaded(path: string, name: string, opts: EngineClientOptions = {}): Promise<ThreadedChatModel> {
  detectFormat(path);
  const tokenizer = loadTokenizer(path);
  const engine = await EngineClient.start(path, { ...opts, cacheMem: opts.cacheMem ?? DEFAULT_CACHE_BYTES });
  try {
    return {
      name,
      ...chatSide(path, tokenizer, engine.config),
      scheduler: engine,
      close: () => engine.close(),
      adapters: opts.lora?.map((s) => s.name ?? s.path),
      ...(engine.vision && { vision: engine.vision }),
    };
  } catch (e) {
    await engine.close();
    throw e;
  }
}

export type SamplingRequest = Omit<GenerateOptions, 'stop_tokens' | 'constraint'> & {
  /** stop strings: generation ends before them */
  stop?: string[];
};

export interface ChatRequest extends SamplingRequest {
  messages: unknown;
  tools?: unknown;
  enable_thinking?: boolean;
  /** further chat-template variables (the server's chat_template_kwargs) */
  template_kwargs?: Record<string, unknown>;
  /** builds the constraint once the prompt is known (JSON output, forced tool call) */
  constraint?: (tok: Tokenizer) => Constraint;
}

export type ChatEvent = OutputEvent | { kind: 'logprobs'; token: string; bytes: number[]; logprob: number; top: { token: string; bytes: number[]; logprob: number }[] };

export interface ChatResult {
  finish: FinishReason;
  promptTokens: number;
  completionTokens: number;
  /** prompt tokens whose keys and values came from the prefix cache (not recomputed); 0 without one */
  cachedTokens?: number;
}

/**
 * Template variables the engine sets itself, and the template language's globals: extra template
 * variables may not replace them (`{"messages": [...]}` would swap the conversation the request
 * was checked for, `{"tools": [...]}` offer tools it never declared, `{"true": false}` invert the
 * template's logic). enable_thinking has its own field.
 */
export const RESERVED_TEMPLATE_VARS: ReadonlySet<string> = new Set([
  'messages',
  'tools',
  'add_generation_prompt',
  'bos_token',
  'eos_token',
  'enable_thinking',
  'raise_exception',
  'range',
  'strftime_now',
  'namespace',
  'true',
  'false',
  'none',
  'True',
  'False',
  'None',
]);

/** The first of `kwargs`' keys that may not be set as a template variable. */
export function reservedTemplateVar(kwargs: Record<string, unknown> | undefined): string | undefined {
  return kwargs ? Object.keys(kwargs).find((k) => RESERVED_TEMPLATE_VARS.has(k)) : undefined;
}

/** The request's prompt text; `images`: the messages hold image parts, placed by renderWithImages. */
export function renderPrompt(cm: ChatModel, req: Pick<ChatRequest, 'messages' | 'tools' | 'enable_thinking' | 'template_kwargs'>, images = false): string {
  const reserved = reservedTemplateVar(req.template_kwargs);
  if (reserved !== undefined)
    fail(`template_kwargs may not set '${reserved}': the engine sets that template variable itself${reserved === 'enable_thinking' ? ' (use the enable_thinking option)' : ''}`);
  const opts = { messages: req.messages, tools: req.tools, addGenerationPrompt: true, enableThinking: req.enable_thinking, extra: req.template_kwargs };
  if (!images) return applyChatTemplate(cm.tokenizer, opts);
  const tok = cm.tokenizer;
  return renderWithImages(chatTemplateFor(tok).template, { ...opts, messages: req.messages as Record<string, unknown>[], bosToken: tok.bosToken ?? null, eosToken: tok.eosToken ?? null });
}

/** Text generation from a token prompt: decoded pieces, stop strings applied. */
async function* pieces(cm: ChatModel, ids: number[], req: SamplingRequest, constraint?: Constraint, images?: PromptImage[]): AsyncGenerator<{ text: string } | ChatEvent, ChatResult> {
  const tok = cm.tokenizer;
  let cachedTokens = 0;
  const o: GenerateOptions = { ...req, stop_tokens: tok.eosTokenIds, constraint, vocab_limit: tok.vocabSize, onCached: (n) => (cachedTokens = n), ...(images?.length && { images }) };
  const steps = cm.scheduler.submit(ids, o);
  const result = (finish: FinishReason): ChatResult => ({ finish, promptTokens: ids.length, completionTokens: n, cachedTokens });
  const dec = new StreamDecoder(tok);
  const stops = new StopStrings(req.stop ?? []);
  let n = 0;
  let finish: FinishReason = 'stop';
  try {
    for (;;) {
      const r = await steps.next();
      if (r.done) {
        finish = r.value;
        break;
      }
      n++;
      const s = r.value;
      if (req.logprobs && s.logprob !== undefined) {
        const t = (id: number) => ({ token: tok.decode([id]), bytes: Array.from(tok.tokenBytes(id)) });
        yield { kind: 'logprobs', ...t(s.token), logprob: s.logprob, top: (s.top ?? []).map((x) => ({ ...t(x.id), logprob: x.logprob })) };
      }
      const out = stops.push(dec.push(s.token));
      if (out.text) yield { text: out.text };
      if (out.stopped) return result('stop');
    }
    const tail = stops.push(dec.flush()).text + stops.flush();
    if (tail) yield { text: tail };
    return result(finish);
  } finally {
    await steps.return('abort'); // stops the request if our consumer left early
  }
}

/** A chat request's prompt: its text, its ids, and where its images' rows go (template errors and bad messages throw here). */
export interface PreparedChat {
  prompt: string;
  ids: number[];
  images?: PromptImage[];
}

/**
 * The prompt text and ids of a chat request. `images`: the rows of the messages' image parts
 * ({type: 'image'}), in order: the template places each, its pad expands to the image's rows.
 */
export function prepareChat(cm: ChatModel, req: Pick<ChatRequest, 'messages' | 'tools' | 'enable_thinking' | 'template_kwargs'>, images: readonly ImageEmbedding[] = []): PreparedChat {
  const parts = Array.isArray(req.messages) ? countImageParts(req.messages as Record<string, unknown>[]) : 0;
  if (!images.length && !parts) {
    const prompt = renderPrompt(cm, req);
    return { prompt, ids: cm.tokenizer.encode(prompt) };
  }
  if (parts !== images.length) fail(`the messages hold ${parts} image part${parts === 1 ? '' : 's'} but ${images.length} image${images.length === 1 ? ' was' : 's were'} encoded`);
  const prompt = renderPrompt(cm, req, true);
  return { prompt, ...expandImagePads(cm.tokenizer, cm.tokenizer.encode(prompt), images) };
}

/** A chat turn: reasoning / content / tool-call events, then the result. */
export async function* chat(cm: ChatModel, req: ChatRequest, prepared: PreparedChat = prepareChat(cm, req)): AsyncGenerator<ChatEvent, ChatResult> {
  const { prompt, ids } = prepared;
  const parser = new QwenOutputParser({ thinking: /<think>\s*$/.test(prompt), format: cm.toolFormat, tools: req.tools });
  const it = pieces(cm, ids, req, req.constraint?.(cm.tokenizer), prepared.images);
  for (;;) {
    const r = await it.next();
    if (r.done) {
      yield* parser.finish();
      return r.value;
    }
    if ('text' in r.value && !('kind' in r.value)) yield* parser.push(r.value.text);
    else yield r.value as ChatEvent;
  }
}

/** Plain completion of a text prompt (no template): text pieces, then the result. */
export async function* complete(cm: ChatModel, prompt: string, req: SamplingRequest): AsyncGenerator<{ text: string } | ChatEvent, ChatResult> {
  const ids = cm.tokenizer.encode(prompt);
  return yield* pieces(cm, ids, req);
}
