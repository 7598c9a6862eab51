// Constrained decoding: JSON (response_format json_object / json_schema) and forced tool calls.
//
// Public API
//   jsonConstraint(tok, spec, opts?): Constraint
//       spec: { type: 'json_object' }                 any JSON object
//           | { type: 'json_schema', schema: object } a value valid against the schema
//   toolCallConstraint(tok, tools, name?, opts?): Constraint
//       opts.format 'json' (default; Qwen2.5 / Qwen3):
//         <tool_call>\n{"name": "<fn>", "arguments": <args>}\n</tool_call>, args valid against
//         that function's `parameters`;
//       opts.format 'xml' (Qwen3.5 / Qwen3-Coder templates; xml_tool.ts has the value rules):
//         <tool_call>\n<function=<fn>>\n<parameter=P>\nVALUE\n</parameter>\n...</function>\n</tool_call>
//       `name` given: that function (tool_choice names it); omitted: any of `tools` (tool_choice
//       'required'). One call, then done(). <tool_call> / </tool_call> are the tokenizer's added
//       tokens when it has them, else text.
//   validateSchema(schema): string | undefined     why a schema is refused (HTTP 400), else undefined
//   validateTools(tools, name?, format?): string | undefined the same for tool_choice requests
//   jsonMatcher(spec) / toolCallMatcher(tools, name?, format?) / ByteMatcher
//                                                   the byte automaton alone (tests, tooling)
//   opts.maxTokens: the request's max_tokens. When the tokens left get close to the fewest bytes
//       that can still close the JSON, only tokens that keep a completion within budget are
//       allowed, so even a model that never wants to stop yields complete JSON (finish 'stop').
//   constraint.minRemaining(): fewest bytes (upper bound on tokens) that complete the output.
// Constraint objects are per request and single use; compiled schemas and their token masks are
// cached per tokenizer, keyed by the schema text.
//
// Output shape: no whitespace except at most one space after ':' and ','; object properties in
// the schema's order, only listed ones (additionalProperties is treated as false when properties
// are listed); strings are valid UTF-8; numbers have <= 15 integer digits, <= 12 fraction digits,
// <= 2 exponent digits. Refused with a clear message: multipleOf, min/maxProperties,
// patternProperties, if/then/else, not, tuples, uniqueItems, allOf with several parts, remote $refs,
// regex features beyond classes / groups / alternation / quantifiers / ^ $, and patterns whose
// automaton is over the size budgets of dfa.ts (e.g. unanchored (a{50}){50}), so no pattern makes a
// decoding step slow. A mask that would still take too much work (anyOf over dozens of open
// strings) fails that request with a message (MAX_MASK_WORK in trie.ts) rather than hold a core.
import { fail } from '../../errors.js';
import type { Tokenizer } from '../../tokenizer/index.js';
import type { Constraint } from '../generate.js';
import { advance, finishGraph, type Frame, isComplete, LiteralNode, minRemaining, RootNode, SeqNode, stackSig, UnionNode } from './automaton.js';
import { anyValue, Compiler, compileSchema, SchemaError } from './schema.js';
import { tokenTries, walkMask, type MaskResult, type TokenTries } from './trie.js';
import type { ToolCallFormat } from './tool_params.js';
import { xmlToolProblem, xmlToolRoot } from './xml_tool.js';

export type { ToolCallFormat } from './tool_params.js';

export type JsonSpec = { type: 'json_object' } | { type: 'json_schema'; schema: object };
export interface ToolSpec {
  type: 'function';
  function: { name: string; description?: string; parameters?: object };
}
export interface ConstraintOptions {
  maxTokens?: number;
}
export interface ToolConstraintOptions extends ConstraintOptions {
  format?: ToolCallFormat;
}
export interface JsonConstraint extends Constraint {
  minRemaining(): number;
}
/** A constraint's builder and arguments, as data (it crosses to the engine thread, which rebuilds it on its own tokenizer). */
export type ConstraintSpec = { kind: 'json'; spec: JsonSpec; opts: ConstraintOptions } | { kind: 'tool'; tools: ToolSpec[]; name?: string; opts: ToolConstraintOptions };

export function validateSchema(schema: unknown): string | undefined {
  try {
    compileSchema(schema);
    return undefined;
  } catch (e) {
    if (e instanceof SchemaError) return `unsupported or invalid JSON schema: ${e.message}`;
    if (e instanceof RangeError) return 'unsupported JSON schema: nested too deeply'; // the call stack ran out
    throw e;
  }
}

export function validateTools(tools: unknown, name?: string, format: ToolCallFormat = 'json'): string | undefined {
  if (!Array.isArray(tools) || tools.length === 0) return 'tools must be a non-empty array';
  for (const [i, t] of tools.entries()) {
    const f = (t as ToolSpec)?.function;
    if ((t as ToolSpec)?.type !== 'function' || typeof f?.name !== 'string' || !f.name) return `tools[${i}] must be {type: 'function', function: {name, parameters}}`;
    if (f.parameters !== undefined) {
      const bad = validateSchema(f.parameters);
      if (bad) return `tools[${i}] (${f.name}) parameters: ${bad}`;
    }
    const xmlBad = format === 'xml' && (name === undefined || name === f.name) ? xmlToolProblem(t as ToolSpec) : undefined;
    if (xmlBad) return `tools[${i}] ${xmlBad}`;
  }
  if (name !== undefined && !tools.some((t) => (t as ToolSpec).function.name === name)) return `tool_choice names '${name}', which is not among the tools`;
  return undefined;
}

const enc = new TextEncoder();
const lit = (s: string) => new LiteralNode([enc.encode(s)]);

function jsonRoot(spec: JsonSpec): RootNode {
  if (spec?.type === 'json_object') {
    const any = anyValue() as UnionNode;
    return finishGraph(new RootNode(any.alts[0]!), [any]);
  }
  if (spec?.type !== 'json_schema') fail(`response_format type must be 'json_object' or 'json_schema', got ${JSON.stringify((spec as { type?: unknown })?.type)}`);
  const bad = validateSchema(spec.schema);
  if (bad) fail(bad);
  return compileSchema(spec.schema);
}

function toolRoot(tools: ToolSpec[], name: string | undefined, textTags: boolean, format: ToolCallFormat): RootNode {
  const bad = validateTools(tools, name, format);
  if (bad) fail(bad);
  const chosen = name === undefined ? tools : tools.filter((t) => t.function.name === name);
  if (format === 'xml') return xmlToolRoot(chosen, textTags);
  const seqs = chosen.map((t) => {
    const c = new Compiler(t.function.parameters ?? { type: 'object', properties: {} });
    const args = c.finish(c.compile(t.function.parameters ?? { type: 'object', properties: {}, additionalProperties: false }, '#')).child;
    const head = `${textTags ? '<tool_call>' : ''}\n{"name": ${JSON.stringify(t.function.name)}, "arguments": `;
    return new SeqNode([lit(head), args, lit(`}\n${textTags ? '</tool_call>' : ''}`)]);
  });
  const body = seqs.length === 1 ? seqs[0]! : new UnionNode(seqs);
  return finishGraph(new RootNode(body), []);
}

/** The byte automaton over a compiled document: feed bytes, ask whether it is complete. */
export class ByteMatcher {
  states: Frame[];
  constructor(readonly root: RootNode) {
    this.states = [root.start()];
  }
  /** false (and unchanged) when some byte is rejected */
  feed(input: Uint8Array | string): boolean {
    const bytes = typeof input === 'string' ? enc.encode(input) : input;
    let cur = this.states;
    for (const b of bytes) {
      const next: Frame[] = [];
      for (const s of cur) advance(s, b, next);
      if (!next.length) return false;
      cur = dedupe(next);
    }
    this.states = cur;
    return true;
  }
  clone(): ByteMatcher {
    const m = new ByteMatcher(this.root);
    m.states = this.states;
    return m;
  }
  complete(): boolean {
    return this.states.some(isComplete);
  }
  canContinue(): boolean {
    for (let b = 0; b < 256; b++) {
      const out: Frame[] = [];
      for (const s of this.states) {
        advance(s, b, out);
        if (out.length) return true;
      }
    }
    return false;
  }
  minRemaining(): number {
    return Math.min(...this.states.map(minRemaining));
  }
  sig(): string {
    return this.states.map(stackSig).sort().join('|');
  }
}

function dedupe(states: Frame[]): Frame[] {
  if (states.length < 2) return states;
  const m = new Map<string, Frame>();
  for (const s of states) m.set(stackSig(s), s);
  return [...m.values()];
}

export function jsonMatcher(spec: JsonSpec): ByteMatcher {
  return new ByteMatcher(jsonRoot(spec));
}
/** The byte automaton of a forced tool call with the tags as text (tests, tooling). */
export function toolCallMatcher(tools: ToolSpec[], name?: string, format: ToolCallFormat = 'json'): ByteMatcher {
  return new ByteMatcher(toolRoot(tools, name, true, format));
}

interface Compiled {
  root: RootNode;
  masks: Map<string, MaskResult>;
}
const compiledCache = new WeakMap<Tokenizer, Map<string, Compiled>>();
const MAX_COMPILED = 16,
  MAX_MASKS = 128;

function compiled(tok: Tokenizer, key: string, build: () => RootNode): Compiled {
  let per = compiledCache.get(tok);
  if (!per) {
    per = new Map();
    compiledCache.set(tok, per);
  }
  let c = per.get(key);
  if (c) {
    per.delete(key);
    per.set(key, c);
    return c;
  } // LRU order
  c = { root: build(), masks: new Map() };
  per.set(key, c);
  if (per.size > MAX_COMPILED) per.delete(per.keys().next().value!);
  return c;
}

type Phase = 'pre' | 'body' | 'post' | 'done';

class TokenConstraint implements JsonConstraint {
  private m: ByteMatcher;
  private trie: TokenTries;
  private phase: Phase;
  private mask: Uint8Array | null = null;
  private used = 0;
  private ends: number[];
  private sigCache = '';

  constructor(
    private tok: Tokenizer,
    private c: Compiled,
    private opts: ConstraintOptions,
    private prefix?: number,
    private suffix?: number,
  ) {
    this.trie = tokenTries(tok);
    this.m = new ByteMatcher(c.root);
    this.phase = prefix !== undefined ? 'pre' : 'body';
    this.ends = suffix !== undefined ? [suffix] : tok.eosTokenIds;
    this.sigCache = this.m.sig();
  }

  allowed(id: number): boolean {
    return (this.mask ??= this.computeMask())[id] === 1;
  }

  private only(id: number | undefined): Uint8Array {
    const m = new Uint8Array(this.trie.all.vocabSize);
    if (id !== undefined) m[id] = 1;
    return m;
  }

  private computeMask(): Uint8Array {
    if (this.phase === 'pre') return this.only(this.prefix);
    if (this.phase === 'post') return this.only(this.suffix);
    if (this.phase === 'done') return this.only(undefined);
    const cache = this.c.masks;
    const get = (key: string, limit: number) => {
      let r = cache.get(key);
      if (!r) {
        r = walkMask(this.trie, this.m.states, limit);
        if (this.m.complete())
          for (const e of this.ends)
            if (r.mask[e] !== 1) {
              r.mask[e] = 1;
              r.count++;
            }
        if (cache.size >= MAX_MASKS) cache.delete(cache.keys().next().value!);
        cache.set(key, r);
      }
      return r;
    };
    let r = get(this.sigCache, Infinity);
    if (this.opts.maxTokens !== undefined) {
      // tokens left after this one, minus the closing tag token; each completion byte can be a
      // one-byte token, so "completion bytes <= tokens left" keeps a valid ending reachable
      const limit = this.opts.maxTokens - this.used - 1 - (this.suffix !== undefined ? 1 : 0);
      if (r.maxMr > limit) {
        const thr = Math.max(limit, this.m.minRemaining() - 1);
        const tight = get(`${this.sigCache}#${thr}`, thr);
        if (tight.count > 0) r = tight;
      }
    }
    if (r.count === 0) fail('constrained decoding reached a state where no token is allowed (please report the schema)');
    return r.mask;
  }

  accept(id: number): void {
    const bad = () => fail(`constrained decoding: token ${id} is not allowed here`);
    switch (this.phase) {
      case 'pre':
        if (id !== this.prefix) bad();
        this.phase = 'body';
        break;
      case 'post':
        if (id !== this.suffix) bad();
        this.phase = 'done';
        break;
      case 'done':
        bad();
        break;
      case 'body':
        if (this.ends.includes(id) && this.m.complete()) {
          this.phase = 'done';
          break;
        }
        if (id >= this.trie.all.vocabSize || this.tok.addedTokens.some((a) => a.id === id) || !this.m.feed(this.tok.tokenBytes(id))) bad();
        this.sigCache = this.m.sig();
        if (this.m.complete() && !this.m.canContinue()) this.phase = this.suffix !== undefined ? 'post' : 'done';
        break;
    }
    this.used++;
    this.mask = null;
  }

  done(): boolean {
    return this.phase === 'done';
  }

  minRemaining(): number {
    const tags = (this.phase === 'pre' ? 1 : 0) + (this.phase !== 'done' && this.suffix !== undefined ? 1 : 0);
    return this.phase === 'done' ? 0 : this.phase === 'post' ? 1 : tags + this.m.minRemaining();
  }
}

export function jsonConstraint(tok: Tokenizer, spec: JsonSpec, opts: ConstraintOptions = {}): JsonConstraint {
  const key = `json:${JSON.stringify(spec)}`;
  return Object.assign(
    new TokenConstraint(
      tok,
      compiled(tok, key, () => jsonRoot(spec)),
      opts,
    ),
    { spec: { kind: 'json', spec, opts } as ConstraintSpec },
  );
}

export function toolCallConstraint(tok: Tokenizer, tools: ToolSpec[], name?: string, opts: ToolConstraintOptions = {}): JsonConstraint {
  const open = addedId(tok, '<tool_call>'),
    close = addedId(tok, '</tool_call>');
  const asTokens = open !== undefined && close !== undefined;
  const format = opts.format ?? 'json';
  const key = `tool:${format}:${asTokens}:${name ?? ''}:${JSON.stringify(tools)}`;
  const c = compiled(tok, key, () => toolRoot(tools, name, !asTokens, format));
  const spec: ConstraintSpec = { kind: 'tool', tools, name, opts };
  return Object.assign(asTokens ? new TokenConstraint(tok, c, opts, open, close) : new TokenConstraint(tok, c, opts), { spec });
}

/** A fresh constraint from its spec (what jsonConstraint / toolCallConstraint attach as `spec`). */
export function constraintFromSpec(tok: Tokenizer, s: ConstraintSpec): JsonConstraint {
  return s.kind === 'json' ? jsonConstraint(tok, s.spec, s.opts) : toolCallConstraint(tok, s.tools, s.name, s.opts);
}

function addedId(tok: Tokenizer, content: string): number | undefined {
  return tok.addedTokens.find((a) => a.content === content)?.id;
}
