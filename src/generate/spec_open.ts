// Speculative decoding as the CLI and the library ask for it (--spec ngram | --draft MODEL |
// --spec mtp, --draft-max N): checked, the draft model loaded beside the target on its backend,
// and its vocabulary compared with the target's, token by token.
import { fail } from '../errors.js';
import { loadModel, type LoadOptions } from '../models/load.js';
import { loadMtp } from '../models/mtp.js';
import type { CausalLM } from '../models/model.js';
import { loadTokenizer } from '../tokenizer/load.js';
import type { Tokenizer } from '../tokenizer/tokenizer.js';
import type { Speculation } from './spec_propose.js';

/** The most tokens proposed per step (--draft-max). */
export const MAX_DRAFT_MAX = 32;

export interface SpecOptions {
  /** 'ngram': prompt lookup; 'draft': the model at `draft`; 'mtp': the target's multi-token-prediction heads */
  method: 'ngram' | 'draft' | 'mtp';
  /** the draft model's folder or GGUF file (method 'draft') */
  draft?: string;
  /** tokens proposed per step (default DEFAULT_DRAFT_MAX) */
  max?: number;
  /** a draft stops proposing where its top token's probability is below this (default DEFAULT_P_MIN; 0: never) */
  pMin?: number;
}

/** The rules on the options alone (the CLI checks them before loading anything). */
export function checkSpecOptions(spec: SpecOptions): void {
  const { method, max } = spec;
  if (method !== 'ngram' && method !== 'mtp' && method !== 'draft') fail(`--spec must be ngram or mtp (or draft, with --draft MODEL), got '${String(method)}'`);
  if (max !== undefined && !(Number.isInteger(max) && max >= 1 && max <= MAX_DRAFT_MAX)) fail(`--draft-max must be an integer from 1 to ${MAX_DRAFT_MAX}, got ${max}`);
  if (spec.pMin !== undefined && !(spec.pMin >= 0 && spec.pMin <= 1)) fail(`--draft-p-min must be a probability from 0 to 1, got ${spec.pMin}`);
  if (spec.pMin !== undefined && method !== 'draft') fail(`--draft-p-min applies to a draft model, not to --spec ${method}`);
  if (method !== 'draft' && spec.draft !== undefined) fail(`--draft and --spec ${method} contradict each other: give one`);
  if (method === 'draft' && !spec.draft) fail('--spec draft needs --draft MODEL (a smaller model with the same vocabulary)');
}

/** Check `spec` against the target and load what it needs (a draft model, on the target's backend). */
export function openSpeculation(
  spec: SpecOptions,
  target: { path: string; model: CausalLM; tokenizer?: Tokenizer },
  load: Pick<LoadOptions, 'checkTensors' | 'onNote' | 'quantize'> = {},
): Speculation {
  checkSpecOptions(spec);
  const max = spec.max;
  if (spec.method === 'ngram') return { method: 'ngram', max };
  // the MTP block's tensors, read from the target's files (its embeddings and LM head are shared)
  if (spec.method === 'mtp') return { method: 'mtp', head: loadMtp(target.path, target.model, load), max };
  const draft = spec.draft!;
  checkDraftVocabulary(target.tokenizer ?? loadTokenizer(target.path), loadTokenizer(draft), target.path, draft);
  const model = loadModel(draft, { backend: target.model.backend, checkTensors: load.checkTensors, onNote: load.onNote });
  return { method: 'draft', model, max, pMin: spec.pMin };
}

/** A draft must spell every token as the target does: its proposals are token ids. */
export function checkDraftVocabulary(target: Tokenizer, draft: Tokenizer, targetName: string, draftName: string): void {
  const head = `--draft ${draftName}: its vocabulary is not ${targetName}'s`;
  if (draft.vocabSize !== target.vocabSize) fail(`${head} (${draft.vocabSize} tokens against ${target.vocabSize}); a draft model needs the same tokenizer`);
  for (let id = 0; id < target.vocabSize; id++) {
    const a = target.idToToken(id),
      b = draft.idToToken(id);
    if (a !== b) fail(`${head} (token ${id} is ${JSON.stringify(b)} there, ${JSON.stringify(a)} in the target); a draft model needs the same tokenizer`);
  }
}
