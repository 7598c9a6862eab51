// JSON Schema -> automaton nodes. Every keyword that constrains a value is either enforced or
// refused with a message naming it and its path (the server answers 400 with it); annotation
// keywords are ignored, and so are keywords JSON Schema does not know (the spec ignores them too).
import { ArrayNode, LiteralNode, type Node, NumberNode, ObjectNode, RefNode, RootNode, StringNode, UnionNode, type Prop } from './automaton.js';
import { FORMATS, regex, RegexError } from './regex.js';

export class SchemaError extends Error {}

const ANNOTATIONS = new Set([
  'title',
  'description',
  'default',
  'examples',
  'example',
  '$schema',
  '$id',
  '$comment',
  'deprecated',
  'readOnly',
  'writeOnly',
  '$defs',
  'definitions',
  'strict',
  'discriminator',
  'xml',
  'externalDocs',
  'contentMediaType',
  'contentEncoding',
]);
const HANDLED = new Set([
  'type',
  'properties',
  'required',
  'additionalProperties',
  'items',
  'minItems',
  'maxItems',
  'enum',
  'const',
  'anyOf',
  'oneOf',
  'allOf',
  '$ref',
  'minLength',
  'maxLength',
  'pattern',
  'format',
  'minimum',
  'maximum',
  'exclusiveMinimum',
  'exclusiveMaximum',
  'nullable',
  'uniqueItems',
  'unevaluatedProperties',
]);
const REFUSED: Record<string, string> = {
  multipleOf: 'multipleOf is not supported',
  minProperties: 'minProperties is not supported',
  maxProperties: 'maxProperties is not supported',
  patternProperties: 'patternProperties is not supported',
  propertyNames: 'propertyNames is not supported',
  dependencies: 'dependencies is not supported',
  dependentRequired: 'dependentRequired is not supported',
  dependentSchemas: 'dependentSchemas is not supported',
  if: 'if/then/else is not supported',
  then: 'if/then/else is not supported',
  else: 'if/then/else is not supported',
  not: 'not is not supported',
  contains: 'contains is not supported',
  minContains: 'minContains is not supported',
  maxContains: 'maxContains is not supported',
  prefixItems: 'prefixItems (tuples) is not supported',
  additionalItems: 'additionalItems is not supported',
  unevaluatedItems: 'unevaluatedItems is not supported',
  $dynamicRef: '$dynamicRef is not supported',
  $recursiveRef: '$recursiveRef is not supported',
};
const TYPES = ['object', 'array', 'string', 'number', 'integer', 'boolean', 'null'] as const;
type JsonType = (typeof TYPES)[number];
type Obj = Record<string, unknown>;

const enc = new TextEncoder();
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const literal = (vals: unknown[]) => new LiteralNode(vals.map((v) => enc.encode(JSON.stringify(v))));

function typeOf(v: unknown): JsonType {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  if (typeof v === 'number') return Number.isInteger(v) ? 'integer' : 'number';
  return typeof v as JsonType;
}

/** `any` value of json_object mode: nesting stops at this depth (then only scalars). */
export const ANY_MAX_DEPTH = 12;

/** Any JSON value (json_object mode, `{}`, `true`). */
export function anyValue(): Node {
  const any = new UnionNode([], ANY_MAX_DEPTH);
  const obj = new ObjectNode();
  obj.free = { key: new StringNode(), value: any };
  obj.finish();
  any.alts = [obj, new ArrayNode(any), new StringNode(), new NumberNode(false), literal([true, false, null])];
  return any;
}

export class Compiler {
  readonly nodes: Node[] = [];
  private byTarget = new Map<unknown, Node>();
  private refs: { node: RefNode; path: string }[] = [];
  constructor(readonly root: unknown) {}

  private add<T extends Node>(n: T): T {
    this.nodes.push(n);
    return n;
  }
  private fail(path: string, msg: string): never {
    throw new SchemaError(`${path}: ${msg}`);
  }

  compile(s: unknown, path: string): Node {
    if (s === true || (isObj(s) && Object.keys(s).every((k) => ANNOTATIONS.has(k)))) return this.track(anyValue());
    if (s === false) this.fail(path, 'schema false admits no value');
    if (!isObj(s)) this.fail(path, `a schema must be an object or a boolean, got ${JSON.stringify(s)}`);
    for (const k of Object.keys(s)) if (REFUSED[k]) this.fail(`${path}/${k}`, REFUSED[k]!);
    if (s.uniqueItems === true) this.fail(`${path}/uniqueItems`, 'uniqueItems is not supported');
    if (s.$ref !== undefined) {
      if (typeof s.$ref !== 'string') this.fail(`${path}/$ref`, '$ref must be a string');
      if (Object.keys(s).some((k) => HANDLED.has(k) && k !== '$ref')) this.fail(path, '$ref next to other validation keywords is not supported');
      const r = this.add(new RefNode(s.$ref));
      this.refs.push({ node: r, path: `${path}/$ref` });
      return r;
    }
    if (s.allOf !== undefined) {
      if (!Array.isArray(s.allOf) || s.allOf.length !== 1) this.fail(`${path}/allOf`, 'allOf is only supported with a single subschema');
      const rest = { ...s };
      delete rest.allOf;
      if (Object.keys(rest).some((k) => HANDLED.has(k))) this.fail(path, 'allOf next to other validation keywords is not supported');
      return this.compile(s.allOf[0], `${path}/allOf/0`);
    }
    for (const k of ['anyOf', 'oneOf'] as const) {
      if (s[k] === undefined) continue;
      const alts = s[k];
      if (!Array.isArray(alts) || alts.length === 0) this.fail(`${path}/${k}`, `${k} must be a non-empty array`);
      const rest = { ...s };
      delete rest[k];
      // sibling keywords apply to every alternative (e.g. a shared "type")
      const merged = alts.map((a, _i) => (isObj(a) && Object.keys(rest).some((x) => HANDLED.has(x)) ? { ...rest, ...a } : a) as unknown);
      return this.add(new UnionNode(merged.map((a, i) => this.compile(a, `${path}/${k}/${i}`))));
    }
    let types: JsonType[];
    if (s.type === undefined) {
      if (s.enum !== undefined || s.const !== undefined) types = [...TYPES];
      else if (s.properties !== undefined || s.required !== undefined || s.additionalProperties !== undefined) types = ['object'];
      else if (s.items !== undefined || s.minItems !== undefined || s.maxItems !== undefined) types = ['array'];
      else if (s.minLength !== undefined || s.maxLength !== undefined || s.pattern !== undefined || s.format !== undefined) types = ['string'];
      else if (['minimum', 'maximum', 'exclusiveMinimum', 'exclusiveMaximum'].some((k) => s[k] !== undefined)) types = ['number'];
      else return this.track(anyValue());
    } else {
      const t = Array.isArray(s.type) ? s.type : [s.type];
      if (t.length === 0) this.fail(`${path}/type`, 'type must not be empty');
      for (const x of t) if (!TYPES.includes(x as JsonType)) this.fail(`${path}/type`, `unknown type ${JSON.stringify(x)}`);
      types = [...new Set(t as JsonType[])];
    }
    if (s.nullable === true && !types.includes('null')) types.push('null');
    if (types.includes('number')) types = types.filter((t) => t !== 'integer'); // number covers integer
    if (s.enum !== undefined || s.const !== undefined) {
      const vals = s.const !== undefined ? [s.const] : s.enum;
      if (!Array.isArray(vals) || vals.length === 0) this.fail(`${path}/enum`, 'enum must be a non-empty array');
      const ok = vals.filter((v) => types.includes(typeOf(v)) || (typeOf(v) === 'integer' && types.includes('number')) || (s.nullable === true && v === null));
      if (!ok.length) this.fail(path, 'no enum/const value has the allowed type');
      return this.add(literal(ok));
    }
    const alts = types.map((t) => this.typed(s, t, path));
    return alts.length === 1 ? alts[0]! : this.add(new UnionNode(alts));
  }

  private track(n: Node): Node {
    // anyValue() builds its own small graph; record its nodes for the min-length fixpoint
    const seen = new Set<Node>();
    const walk = (x: Node) => {
      if (seen.has(x)) return;
      seen.add(x);
      this.nodes.push(x);
      if (x instanceof UnionNode) x.alts.forEach(walk);
      if (x instanceof ObjectNode && x.free) {
        walk(x.free.key);
        walk(x.free.value);
      }
      if (x instanceof ArrayNode && x.items) walk(x.items);
    };
    walk(n);
    return n;
  }

  private num(s: Obj, k: string, path: string, min = 0): number | undefined {
    const v = s[k];
    if (v === undefined) return undefined;
    if (typeof v !== 'number' || !Number.isFinite(v)) this.fail(`${path}/${k}`, `${k} must be a number`);
    if (k.endsWith('Length') || k.endsWith('Items')) {
      if (!Number.isInteger(v) || v < min) this.fail(`${path}/${k}`, `${k} must be a non-negative integer`);
    }
    return v;
  }

  private typed(s: Obj, t: JsonType, path: string): Node {
    switch (t) {
      case 'null':
        return this.add(literal([null]));
      case 'boolean':
        return this.add(literal([true, false]));
      case 'integer':
      case 'number': {
        let lo = this.num(s, 'minimum', path) ?? -Infinity,
          hi = this.num(s, 'maximum', path) ?? Infinity;
        let loEx = false,
          hiEx = false;
        const eMin = s.exclusiveMinimum,
          eMax = s.exclusiveMaximum;
        // draft 4 used booleans here, later drafts numbers
        if (eMin === true) loEx = true;
        else if (typeof eMin === 'number') {
          if (eMin >= lo) {
            lo = eMin;
            loEx = true;
          }
        } else if (eMin !== undefined && eMin !== false) this.fail(`${path}/exclusiveMinimum`, 'exclusiveMinimum must be a number');
        if (eMax === true) hiEx = true;
        else if (typeof eMax === 'number') {
          if (eMax <= hi) {
            hi = eMax;
            hiEx = true;
          }
        } else if (eMax !== undefined && eMax !== false) this.fail(`${path}/exclusiveMaximum`, 'exclusiveMaximum must be a number');
        const n = new NumberNode(t === 'integer', lo, hi, loEx, hiEx);
        if (n.bounded && n.L > n.H) {
          this.fail(path, t === 'integer' ? 'no integer lies within minimum/maximum' : 'a numeric range without an integer in it is not supported');
        }
        return this.add(n);
      }
      case 'string': {
        const minL = this.num(s, 'minLength', path) ?? 0,
          maxL = this.num(s, 'maxLength', path) ?? Infinity;
        if (minL > maxL) this.fail(path, 'minLength is greater than maxLength');
        if (s.pattern !== undefined && s.format !== undefined && typeof s.format === 'string' && FORMATS[s.format]) {
          this.fail(path, 'pattern together with an enforced format is not supported');
        }
        let src: string | undefined;
        if (s.pattern !== undefined) {
          if (typeof s.pattern !== 'string') this.fail(`${path}/pattern`, 'pattern must be a string');
          src = s.pattern;
        } else if (s.format !== undefined) {
          if (typeof s.format !== 'string') this.fail(`${path}/format`, 'format must be a string');
          src = FORMATS[s.format]; // other formats (uri, hostname ...) are annotations here
        }
        let nfa = null;
        if (src !== undefined) {
          try {
            nfa = regex(src);
          } catch (e) {
            if (e instanceof RegexError) this.fail(`${path}/pattern`, `unsupported pattern: ${e.message}`);
            throw e;
          }
        }
        return this.add(new StringNode(minL, maxL, nfa));
      }
      case 'array': {
        const minI = this.num(s, 'minItems', path) ?? 0,
          maxI = this.num(s, 'maxItems', path) ?? Infinity;
        if (minI > maxI) this.fail(path, 'minItems is greater than maxItems');
        if (Array.isArray(s.items)) this.fail(`${path}/items`, 'items as an array (tuples) is not supported');
        let items: Node | null;
        if (s.items === false) {
          if (minI > 0) this.fail(path, 'items false with minItems > 0 admits no value');
          items = null;
        } else items = s.items === undefined ? this.track(anyValue()) : this.compile(s.items, `${path}/items`);
        return this.add(new ArrayNode(items, minI, maxI));
      }
      case 'object': {
        const o = this.add(new ObjectNode());
        const props = s.properties ?? {};
        if (!isObj(props)) this.fail(`${path}/properties`, 'properties must be an object');
        const req = s.required ?? [];
        if (!Array.isArray(req) || req.some((r) => typeof r !== 'string')) this.fail(`${path}/required`, 'required must be an array of strings');
        const reqSet = new Set(req as string[]);
        const names = Object.keys(props);
        for (const r of reqSet) if (!(r in props)) names.push(r); // required but undescribed: any value
        const ap = s.additionalProperties;
        if (names.length) {
          // strict: only the listed properties, in order (additionalProperties is treated as false)
          o.props = names.map(
            (name): Prop => ({
              name,
              key: enc.encode(JSON.stringify(name)),
              required: reqSet.has(name),
              node: name in props ? this.compile(props[name], `${path}/properties/${name}`) : this.track(anyValue()),
            }),
          );
        } else if (ap !== false) {
          o.free = { key: this.add(new StringNode()), value: ap === undefined || ap === true ? this.track(anyValue()) : this.compile(ap, `${path}/additionalProperties`) };
        }
        o.finish();
        return o;
      }
    }
  }

  /** Resolve $refs (local JSON pointers only) and compute min lengths. */
  finish(top: Node, path = '#'): RootNode {
    for (const { node, path: p } of this.refs) {
      if (node.target) continue;
      if (!node.ref.startsWith('#')) this.fail(p, `only local $refs (#/...) are supported, got ${node.ref}`);
      let t: unknown = this.root;
      for (const raw of node.ref.slice(1).split('/').slice(1)) {
        const k = decodeURIComponent(raw).replace(/~1/g, '/').replace(/~0/g, '~');
        if (!isObj(t) && !Array.isArray(t)) this.fail(p, `$ref ${node.ref} does not resolve`);
        t = (t as Obj)[k];
        if (t === undefined) this.fail(p, `$ref ${node.ref} does not resolve`);
      }
      let target = this.byTarget.get(t);
      if (!target) {
        target = t === this.root ? top : this.compile(t, node.ref);
        this.byTarget.set(t, target);
      }
      node.target = target;
    }
    if (this.refs.some((r) => !r.node.target)) return this.finish(top, path); // refs found while resolving
    for (const { node, path: p } of this.refs) {
      const seen = new Set<Node>();
      let n: Node = node;
      while (n instanceof RefNode) {
        if (seen.has(n)) this.fail(p, `circular $ref ${node.ref}`);
        seen.add(n);
        n = n.target!;
      }
    }
    const root = new RootNode(top);
    this.nodes.push(root);
    // fixpoint: recursive schemas need several passes; Infinity means no finite value exists
    for (let it = 0, changed = true; changed; it++) {
      if (it > 10_000) break;
      changed = false;
      for (const n of this.nodes) {
        const m = n.computeMin();
        if (m < n.minLen) {
          n.minLen = m;
          changed = true;
        }
      }
    }
    for (const n of this.nodes) n.computeMin(); // settle per-node tables with the final lengths
    if (!(root.minLen < Infinity)) this.fail(path, 'the schema admits no finite value (a required property recursing forever?)');
    return root;
  }
}

/** Compile a schema; throws SchemaError naming the path and keyword. */
export function compileSchema(schema: unknown): RootNode {
  const c = new Compiler(schema);
  return c.finish(c.compile(schema, '#'));
}
