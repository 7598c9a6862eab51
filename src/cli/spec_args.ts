// --spec ngram|mtp, --draft MODEL, --draft-max N: speculative decoding on `run` and `serve`.
import { fail } from '../errors.js';
import { DEFAULT_DRAFT_MAX, DEFAULT_P_MIN } from '../generate/spec.js';
import { checkSpecOptions, MAX_DRAFT_MAX, type SpecOptions } from '../generate/spec_open.js';
import { DEFAULT_MTP_MAX } from '../generate/spec_mtp.js';
import { resolveModelArg } from './resolve.js';

export const SPEC_OPTIONS = { spec: { type: 'string' }, draft: { type: 'string' }, 'draft-max': { type: 'string' }, 'draft-p-min': { type: 'string' } } as const;

export const SPEC_HELP = `  --draft MODEL         speculative decoding with a smaller model of the same vocabulary (a folder,
                        GGUF file or hub id): it proposes tokens, the model checks them in one pass
  --spec ngram          speculative decoding by prompt lookup: proposes what followed the text's last
                        words earlier in it (no second model); the output is the same either way
  --spec mtp            speculative decoding with the model's own multi-token-prediction block (Qwen3.5,
                        Qwen3.5-MoE and Qwen3-Next checkpoints that carry one); the same output too
  --draft-max N         tokens proposed per step (default ${DEFAULT_DRAFT_MAX}; ${DEFAULT_MTP_MAX} with --spec mtp; at most ${MAX_DRAFT_MAX})
  --draft-p-min P       the draft stops proposing where its top token is less likely than P (default ${DEFAULT_P_MIN})`;

/** The speculation the flags ask for (the draft's hub id resolved to a path), or undefined. */
export async function specFromArgs(values: { spec?: string; draft?: string; 'draft-max'?: string; 'draft-p-min'?: string }): Promise<SpecOptions | undefined> {
  const { spec, draft } = values,
    maxArg = values['draft-max'],
    pArg = values['draft-p-min'];
  if (spec === undefined && draft === undefined) {
    if (maxArg !== undefined || pArg !== undefined) fail(`--${maxArg !== undefined ? 'draft-max' : 'draft-p-min'} needs --draft MODEL or --spec ngram`);
    return undefined;
  }
  if (maxArg !== undefined && !/^\d+$/.test(maxArg)) fail(`--draft-max must be an integer from 1 to ${MAX_DRAFT_MAX}, got '${maxArg}'`);
  const opts = { method: (spec ?? 'draft') as SpecOptions['method'], max: maxArg === undefined ? undefined : Number(maxArg), pMin: pArg === undefined ? undefined : Number(pArg), draft };
  checkSpecOptions(opts);
  return { ...opts, draft: draft === undefined ? undefined : await resolveModelArg(draft) };
}
