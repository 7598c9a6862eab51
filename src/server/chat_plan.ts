// From validated request pieces to what the chat engine runs: the rendered prompt (checked against
// the context), the tools checked for a forced call, and the output constraint (a forced tool call,
// or JSON by schema). /v1/chat/completions and /v1/responses both come through here; they differ
// only in how their request bodies spell these pieces, and so in the parameter names errors give.
import { prepareChat, type ChatModel, type ChatRequest, type PreparedChat } from '../chat/engine.js';
import type { Constraint } from '../generate/sequence.js';
import { jsonConstraint, toolCallConstraint, validateSchema, validateTools } from '../generate/constrain/index.js';
import { ApiError, badParam } from './errors.js';
import type { ResponseFormat, Sampling, ToolChoice } from './openai.js';
import type { ImageEmbedding } from '../vision/types.js';

type Obj = Record<string, unknown>;

export interface ChatPieces {
  messages: Obj[];
  tools?: Obj[];
  choice: ToolChoice;
  format: ResponseFormat;
  sampling: Sampling;
  enable_thinking?: boolean;
  template_kwargs?: Obj;
  /** request parameter names for errors: the conversation, and the output format's schema */
  params: { messages: string; schema: string };
  /** the rows of the messages' image parts, in order (images.ts encodeImages) */
  images?: ImageEmbedding[];
}

export interface ChatPlan {
  request: ChatRequest;
  prepared: PreparedChat;
  /** a fresh constraint for each generation (constraints are single use), or undefined */
  constraint?: () => Constraint;
}

export function planChat(cm: ChatModel, p: ChatPieces): ChatPlan {
  const ctx = cm.config.max_position_embeddings;
  const { n: _n, stream: _s, includeUsage: _u, ...sampling } = p.sampling;
  const request: ChatRequest = { ...sampling, messages: p.messages, tools: p.tools, enable_thinking: p.enable_thinking, template_kwargs: p.template_kwargs };
  const prepared = prepareChat(cm, request, p.images);
  if (prepared.ids.length >= ctx) throw new ApiError(400, `the prompt has ${prepared.ids.length} tokens; this model's context holds ${ctx}`, p.params.messages, 'context_length_exceeded');
  const budget = { maxTokens: Math.min(sampling.max_tokens, ctx - prepared.ids.length) }; // what the constraint may spend
  if (p.tools) {
    // a forced call is written in the template's format (XML for Qwen3.5): its limits apply then
    const bad = validateTools(p.tools, p.choice.name, p.choice.mode === 'required' ? cm.toolFormat : 'json');
    if (bad) throw badParam('tools', bad);
  }
  let make: (() => Constraint) | undefined;
  const fmt = p.format;
  if (p.choice.mode === 'required') {
    make = () => toolCallConstraint(cm.tokenizer, p.tools as never, p.choice.name, { ...budget, format: cm.toolFormat });
  } else if (fmt.type !== 'text') {
    if (fmt.type === 'json_schema') {
      const bad = validateSchema(fmt.schema);
      if (bad) throw badParam(p.params.schema, `invalid or unsupported schema: ${bad}`);
    }
    make = () => jsonConstraint(cm.tokenizer, fmt.type === 'json_schema' ? { type: 'json_schema', schema: fmt.schema } : { type: 'json_object' }, budget);
  }
  if (!make) return { request, prepared };
  // built once now, so a schema the compiler refuses is a 400 before any stream starts
  let first: Constraint | undefined = make();
  const build = make;
  const constraint = () => {
    const c = first ?? build();
    first = undefined;
    return c;
  };
  return { request, prepared, constraint };
}
