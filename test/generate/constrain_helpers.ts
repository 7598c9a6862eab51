// Shared by the constrained-decoding tests: ajv with format checks written independently of the
// automaton's regexes, a seeded PRNG, and a random walk over the byte automaton.
import { Ajv } from 'ajv';
import type { ByteMatcher } from '../../src/generate/constrain/index.js';
export { rng } from '../helpers.js';

export function makeAjv(): Ajv {
  const ajv = new Ajv({ strict: false, allErrors: true });
  const date = (s: string) => {
    const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(s);
    if (!m) return false;
    const d = new Date(0);
    d.setUTCFullYear(+m[1]!, +m[2]! - 1, +m[3]!); // (Date.UTC maps years 0-99 to 19xx)
    return d.getUTCFullYear() === +m[1]! && d.getUTCMonth() === +m[2]! - 1 && d.getUTCDate() === +m[3]!;
  };
  const time = (s: string) => {
    const m = /^(\d{2}):(\d{2}):(\d{2})(\.\d+)?(Z|[+-](\d{2}):(\d{2}))$/i.exec(s);
    return !!m && +m[1]! < 24 && +m[2]! < 60 && +m[3]! < 60 && (m[6] === undefined || (+m[6] < 24 && +m[7]! < 60));
  };
  ajv.addFormat('date', date);
  ajv.addFormat('time', time);
  ajv.addFormat('date-time', (s: string) => {
    const i = s.search(/[Tt ]/);
    return i > 0 && date(s.slice(0, i)) && time(s.slice(i + 1));
  });
  ajv.addFormat('uuid', /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i);
  ajv.addFormat('email', (s: string) => {
    const at = s.lastIndexOf('@');
    if (at < 1) return false;
    const local = s.slice(0, at),
      domain = s.slice(at + 1);
    return /^[^\s@."]+(\.[^\s@."]+)*$/.test(local) && /^([a-z0-9]([a-z0-9-]*[a-z0-9])?\.)+[a-z]{2,}$/i.test(domain);
  });
  ajv.addFormat('ipv4', (s: string) => /^\d{1,3}(\.\d{1,3}){3}$/.test(s) && s.split('.').every((p) => +p <= 255 && String(+p) === p));
  return ajv;
}

/**
 * A random document from the automaton: random accepted bytes (ASCII-heavy, some UTF-8), and
 * after `soft` bytes only bytes that bring the end closer. Returns the bytes.
 */
export function randomWalk(m0: ByteMatcher, r: () => number, soft = 60): Uint8Array {
  const m = m0.clone();
  const out: number[] = [];
  for (let guard = 0; guard < 5000; guard++) {
    if (m.complete() && (r() < 0.3 || out.length > soft || !m.canContinue())) break;
    let cands: number[] = [];
    const closer: number[] = [];
    const mr = m.minRemaining();
    for (let b = 0; b < 256; b++) {
      const n = m.clone();
      if (!n.feed(Uint8Array.of(b))) continue;
      cands.push(b);
      if (n.minRemaining() < mr) closer.push(b);
    }
    // past `soft`, head for the end (minRemaining is a heuristic inside escapes, so fall back)
    if (out.length > soft && closer.length) cands = closer;
    if (!cands.length) throw new Error(`stuck after ${JSON.stringify(new TextDecoder().decode(Uint8Array.from(out)))}`);
    // prefer ASCII so structure gets exercised, but keep multi-byte characters in play
    const ascii = cands.filter((b) => b < 0x80);
    const pool = ascii.length && r() < 0.85 ? ascii : cands;
    const b = pool[Math.floor(r() * pool.length)]!;
    m.feed(Uint8Array.of(b));
    out.push(b);
  }
  if (!m.complete()) throw new Error('walk did not complete');
  m0.states = m.states;
  return Uint8Array.from(out);
}

/** Schemas exercised by the automaton and generation tests. */
export const SCHEMAS: Record<string, object> = {
  person: {
    type: 'object',
    properties: {
      name: { type: 'string', minLength: 1, maxLength: 20 },
      age: { type: 'integer', minimum: 0, maximum: 130 },
      email: { type: 'string', format: 'email' },
      tags: { type: 'array', items: { type: 'string', maxLength: 8 }, maxItems: 3 },
    },
    required: ['name', 'age'],
  },
  nested: {
    type: 'object',
    properties: {
      id: { type: 'string', format: 'uuid' },
      owner: { type: 'object', properties: { first: { type: 'string' }, last: { type: 'string' }, score: { type: 'number' } }, required: ['first', 'score'] },
      items: {
        type: 'array',
        minItems: 1,
        maxItems: 3,
        items: { type: 'object', properties: { sku: { enum: ['A-1', 'B-2', 'C-3'] }, qty: { type: 'integer', exclusiveMinimum: 0 } }, required: ['sku', 'qty'] },
      },
      active: { type: 'boolean' },
    },
    required: ['id', 'owner', 'items', 'active'],
    additionalProperties: false,
  },
  refs: {
    $defs: { node: { type: 'object', properties: { v: { type: 'integer' }, kids: { type: 'array', items: { $ref: '#/$defs/node' }, maxItems: 2 } }, required: ['v'] } },
    type: 'object',
    properties: { root: { $ref: '#/$defs/node' }, when: { type: 'string', format: 'date-time' } },
    required: ['root', 'when'],
  },
  unions: {
    type: 'object',
    properties: {
      a: { anyOf: [{ type: 'integer' }, { type: 'string', maxLength: 5 }, { type: 'null' }] },
      b: { oneOf: [{ type: 'boolean' }, { type: 'array', items: { type: 'number' }, maxItems: 2 }] },
      c: { type: ['string', 'null'], format: 'date' },
      d: { const: 'fixed' },
      e: { definitions: {}, $ref: '#/definitions/t' },
    },
    required: ['a', 'b', 'c', 'd', 'e'],
    definitions: { t: { type: 'string', pattern: '^[A-Z][a-z]{1,4}-\\d{2}$' } },
  },
  unicode: {
    type: 'object',
    properties: { text: { type: 'string', minLength: 3, maxLength: 12 }, word: { enum: ['café', 'naïve', '日本語', '🙂'] }, t: { type: 'string', format: 'time' } },
    required: ['text', 'word', 't'],
  },
  scalars: { type: 'array', items: { type: ['number', 'boolean', 'null'] }, minItems: 2, maxItems: 4 },
  anyObject: { type: 'object' },
};
