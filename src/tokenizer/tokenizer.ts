// Qwen tokenizer: byte-level BPE with Qwen's split regex and NFC, added tokens matched in the raw
// text, no BOS. Exact against Hugging Face tokenizers and llama.cpp on the reference vectors.
//
// Public API
//   loadTokenizer(path)  (load.ts)  HF folder (tokenizer.json, or vocab.json + merges.txt) or a .gguf file
//   tok.encode(text, { parseSpecial = true })
//        parseSpecial: added tokens written in the text (<|im_start|>, <think>) become their ids,
//        as Hugging Face does by default. false: special tokens (<|im_end|> ...) are read as plain
//        text; non-special added tokens (<think>, <tool_call>) are still matched (HF
//        split_special_tokens=True and llama.cpp parse_special=false behave the same way).
//   tok.decode(ids, { skipSpecialTokens = false })   invalid UTF-8 -> U+FFFD, like HF errors="replace"
//   new StreamDecoder(tok, opts).push(id) / .flush()  streaming pieces, never half a character;
//        the pieces concatenate to tok.decode(ids, opts)
//   tok.idToToken(id), tok.tokenToId(token), tok.tokenBytes(id), tok.vocabSize,
//   tok.eosTokenIds (every id that ends generation), tok.bosTokenId, tok.padTokenId,
//   tok.specialIds, tok.addedTokens, tok.chatTemplate, tok.bosToken / tok.eosToken (texts for templates)
// Chat templates: see chat_template.ts (renderChat, applyChatTemplate).
import { fail, quote } from '../errors.js';
import { AddedTokenMatcher, type AddedToken, type Segment } from './added_tokens.js';
import { BpeModel, type Merge } from './bpe.js';
import { byteCharsToBytes } from './bytes.js';
import { RegexSplitter } from './pretokenize.js';

/** Everything a tokenizer is built from, whichever file it came from. */
export interface TokenizerSpec {
  /** byte-level token string -> id, the BPE vocabulary (added tokens excluded) */
  vocab: Map<string, number>;
  /** merge rules, best first */
  merges: readonly Merge[];
  addedTokens: AddedToken[];
  /** split regex (Oniguruma syntax, as in tokenizer.json) */
  pattern: string;
  /** NFC-normalize text before splitting */
  nfc: boolean;
  ignoreMerges?: boolean;
  /** ids that exist in the model's vocabulary but never appear in text (GGUF [PAD] rows) */
  unusedIds?: Map<number, string>;
  eosTokenIds: number[];
  bosTokenId?: number;
  padTokenId?: number;
  chatTemplate?: string;
  /** bos_token / eos_token texts handed to chat templates (tokenizer_config.json's; Qwen: null, <|im_end|>) */
  bosToken?: string;
  eosToken?: string;
  /** the file or folder it was read from, for messages */
  source: string;
}

export interface EncodeOptions {
  parseSpecial?: boolean;
}
export interface DecodeOptions {
  skipSpecialTokens?: boolean;
}

// per-id kind, for decoding
const NONE = 0,
  NORMAL = 1,
  ADDED = 2,
  SPECIAL = 3,
  UNUSED = 4;

export class Tokenizer {
  readonly spec: TokenizerSpec;
  readonly bpe: BpeModel;
  readonly vocabSize: number;
  readonly eosTokenIds: number[];
  readonly bosTokenId?: number;
  readonly padTokenId?: number;
  readonly chatTemplate?: string;
  readonly bosToken?: string;
  readonly eosToken?: string;
  readonly specialIds: ReadonlySet<number>;
  readonly addedTokens: readonly AddedToken[];
  private readonly splitter: RegexSplitter;
  private readonly kind: Uint8Array;
  private readonly addedById = new Map<number, AddedToken>();
  private readonly addedByContent = new Map<string, number>();
  private readonly bytesCache: (Uint8Array | undefined)[];
  // matchers for raw / normalized text, with and without the special tokens
  private readonly rawAll: AddedTokenMatcher;
  private readonly rawPlain: AddedTokenMatcher;
  private readonly normAll: AddedTokenMatcher | null;
  private readonly normPlain: AddedTokenMatcher | null;
  private readonly decoder = new TextDecoder('utf-8', { ignoreBOM: true });

  constructor(spec: TokenizerSpec) {
    this.spec = spec;
    this.bpe = new BpeModel(spec.vocab, spec.merges, { ignoreMerges: spec.ignoreMerges, source: spec.source });
    this.splitter = new RegexSplitter(spec.pattern);
    let size = this.bpe.tokens.length;
    for (const t of spec.addedTokens) size = Math.max(size, t.id + 1);
    for (const id of spec.unusedIds?.keys() ?? []) size = Math.max(size, id + 1);
    this.vocabSize = size;
    this.kind = new Uint8Array(size);
    this.bytesCache = new Array(size);
    for (const id of spec.vocab.values()) this.kind[id] = NORMAL;
    for (const [id] of spec.unusedIds ?? []) this.kind[id] = UNUSED;
    const special = new Set<number>();
    for (const t of spec.addedTokens) {
      if (!Number.isInteger(t.id) || t.id < 0) fail(`${spec.source}: added token ${quote(t.content)} has invalid id ${t.id}`);
      this.kind[t.id] = t.special ? SPECIAL : ADDED;
      if (t.special) special.add(t.id);
      this.addedById.set(t.id, t);
      this.addedByContent.set(t.content, t.id);
    }
    this.specialIds = special;
    this.addedTokens = spec.addedTokens;
    for (const id of spec.eosTokenIds) this.checkId(id, 'eos token id');
    this.eosTokenIds = [...new Set(spec.eosTokenIds)];
    this.bosTokenId = spec.bosTokenId;
    this.padTokenId = spec.padTokenId;
    this.chatTemplate = spec.chatTemplate;
    this.bosToken = spec.bosToken;
    this.eosToken = spec.eosToken;
    const raw = spec.addedTokens.filter((t) => !t.normalized),
      norm = spec.addedTokens.filter((t) => t.normalized);
    this.rawAll = new AddedTokenMatcher(raw);
    this.rawPlain = new AddedTokenMatcher(raw.filter((t) => !t.special));
    this.normAll = norm.length ? new AddedTokenMatcher(norm) : null;
    this.normPlain = norm.length ? new AddedTokenMatcher(norm.filter((t) => !t.special)) : null;
  }

  encode(text: string, opts: EncodeOptions = {}): number[] {
    if (typeof text !== 'string') fail(`encode: text must be a string, got ${typeof text}`);
    const parseSpecial = opts.parseSpecial ?? true;
    const segs: Segment[] = [];
    (parseSpecial ? this.rawAll : this.rawPlain).split(text, segs);
    const out: number[] = [];
    const normMatcher = parseSpecial ? this.normAll : this.normPlain;
    const norm: Segment[] = [];
    for (const seg of segs) {
      if (typeof seg === 'number') {
        out.push(seg);
        continue;
      }
      const s = this.spec.nfc ? seg.normalize('NFC') : seg;
      if (normMatcher) {
        norm.length = 0;
        normMatcher.split(s, norm);
        for (const n of norm)
          if (typeof n === 'number') out.push(n);
          else this.encodePlain(n, out);
      } else {
        this.encodePlain(s, out);
      }
    }
    return out;
  }

  private encodePlain(text: string, out: number[]): void {
    const bpe = this.bpe;
    this.splitter.forEach(text, (piece) => bpe.encodeWord(piece, out));
  }

  /** The bytes token `id` stands for (empty for unused padding ids). */
  tokenBytes(id: number): Uint8Array {
    this.checkId(id, 'token id');
    let b = this.bytesCache[id];
    if (b === undefined) {
      const k = this.kind[id];
      const added = this.addedById.get(id);
      // Hugging Face runs added tokens through the ByteLevel decoder too (byteCharsToBytes falls
      // back to the raw UTF-8 for strings that are not byte-characters).
      b = added ? byteCharsToBytes(added.content) : k === NORMAL ? byteCharsToBytes(this.bpe.tokens[id]!) : new Uint8Array(0);
      this.bytesCache[id] = b;
    }
    return b;
  }

  /** Whether decoding with these options drops `id`. */
  skips(id: number, opts: DecodeOptions = {}): boolean {
    return !!opts.skipSpecialTokens && this.kind[id] === SPECIAL;
  }

  decode(ids: ArrayLike<number>, opts: DecodeOptions = {}): string {
    let buf = new Uint8Array(Math.max(16, ids.length * 4));
    let n = 0;
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i]!;
      const b = this.tokenBytes(id);
      if (this.skips(id, opts)) continue;
      if (n + b.length > buf.length) {
        const nb = new Uint8Array((n + b.length) * 2);
        nb.set(buf.subarray(0, n));
        buf = nb;
      }
      buf.set(b, n);
      n += b.length;
    }
    return this.decoder.decode(buf.subarray(0, n));
  }

  idToToken(id: number): string | undefined {
    if (!Number.isInteger(id) || id < 0 || id >= this.vocabSize) return undefined;
    return this.addedById.get(id)?.content ?? this.bpe.tokens[id] ?? this.spec.unusedIds?.get(id);
  }

  tokenToId(token: string): number | undefined {
    return this.addedByContent.get(token) ?? this.bpe.vocab.get(token);
  }

  isSpecial(id: number): boolean {
    return this.kind[id] === SPECIAL;
  }

  private checkId(id: number, what: string): void {
    if (!Number.isInteger(id) || id < 0 || id >= this.vocabSize || this.kind[id] === NONE) {
      fail(
        `${what} ${String(id)} is out of range: ${this.spec.source} has ${this.vocabSize} ids (0..${this.vocabSize - 1})` +
          (Number.isInteger(id) && id >= 0 && id < this.vocabSize ? ', and this one is unassigned' : ''),
      );
    }
  }
}

/**
 * Streaming detokenizer: push ids one at a time, get text as soon as it is whole. Bytes of an
 * unfinished UTF-8 character are held back until a later token completes them (or flush() turns
 * them into U+FFFD), so the pieces concatenate to exactly tok.decode(ids, opts).
 */
export class StreamDecoder {
  private td = new TextDecoder('utf-8', { ignoreBOM: true });
  constructor(
    private readonly tok: Tokenizer,
    private readonly opts: DecodeOptions = {},
  ) {}

  push(id: number): string {
    const b = this.tok.tokenBytes(id);
    if (this.tok.skips(id, this.opts)) return '';
    return this.td.decode(b, { stream: true });
  }

  /** End of stream: whatever was held back (incomplete characters become U+FFFD). Resets. */
  flush(): string {
    return this.td.decode();
  }
}
