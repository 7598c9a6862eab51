// What a tool's JSON schema says about each parameter's JSON types. Shared by the XML tool-call
// parser (src/chat/xml_tool_call.ts: how a parameter's text is typed) and the XML tool-call
// constraint (xml_tool.ts: what text it lets the model write), so that every value the
// constraint allows is typed back by the parser into a value the schema accepts.
//
// Qwen3.5 / Qwen3-Coder write `<parameter=NAME>\nVALUE\n</parameter>`: strings raw, everything
// else as JSON. Typing rules (llama.cpp's qwen3_coder handler, vLLM's qwen3coder parser):
//   only 'string' allowed     -> the raw text
//   'string' among others     -> JSON for the non-string types (a parsed value of an allowed
//                                non-string type), else the raw text
//   no 'string'               -> JSON; text that does not parse stays a raw string (vLLM)
//   no type information ('any')-> JSON when it parses, else the raw text

export type ToolCallFormat = 'json' | 'xml';
export const JSON_TYPES = ['object', 'array', 'string', 'number', 'integer', 'boolean', 'null'] as const;
export type JsonType = (typeof JSON_TYPES)[number];
/** the JSON types a schema admits, or 'any' when it does not say */
export type Types = Set<JsonType> | 'any';
type Obj = Record<string, unknown>;

const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const MAX_REF_DEPTH = 32;

export function jsonTypeOf(v: unknown): JsonType {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  if (typeof v === 'number') return Number.isInteger(v) ? 'integer' : 'number';
  return typeof v as JsonType;
}

/** Follow local $refs and single-entry allOf (what schema.ts accepts) to the schema that applies. */
export function resolveSchema(s: unknown, root: unknown, depth = 0): unknown {
  if (depth > MAX_REF_DEPTH || !isObj(s)) return s;
  if (typeof s.$ref === 'string' && s.$ref.startsWith('#')) {
    let t: unknown = root;
    for (const raw of s.$ref.slice(1).split('/').slice(1)) {
      if (!isObj(t) && !Array.isArray(t)) return {};
      t = (t as Obj)[decodeURIComponent(raw).replace(/~1/g, '/').replace(/~0/g, '~')];
    }
    return resolveSchema(t, root, depth + 1);
  }
  if (Array.isArray(s.allOf) && s.allOf.length === 1) return resolveSchema(s.allOf[0], root, depth + 1);
  return s;
}

/** anyOf / oneOf alternatives with the sibling keywords merged in (as schema.ts compiles them). */
export function alternatives(s: Obj): unknown[] | undefined {
  for (const k of ['anyOf', 'oneOf'] as const) {
    const alts = s[k];
    if (!Array.isArray(alts)) continue;
    const rest = { ...s };
    delete rest[k];
    const hasRest = Object.keys(rest).some((x) => x !== 'description' && x !== 'title');
    return alts.map((a) => (isObj(a) && hasRest ? { ...rest, ...a } : a));
  }
  return undefined;
}

/** Types of one schema level (no anyOf / oneOf / $ref here), as schema.ts infers them. */
export function flatTypes(s: Obj): Types {
  let t: JsonType[];
  if (s.type !== undefined) t = (Array.isArray(s.type) ? s.type : [s.type]).filter((x): x is JsonType => JSON_TYPES.includes(x as JsonType));
  else if (s.const !== undefined) t = [jsonTypeOf(s.const)];
  else if (Array.isArray(s.enum)) t = s.enum.map(jsonTypeOf);
  else if (s.properties !== undefined || s.required !== undefined || s.additionalProperties !== undefined) t = ['object'];
  else if (s.items !== undefined || s.minItems !== undefined || s.maxItems !== undefined) t = ['array'];
  else if (s.minLength !== undefined || s.maxLength !== undefined || s.pattern !== undefined || s.format !== undefined) t = ['string'];
  else if (['minimum', 'maximum', 'exclusiveMinimum', 'exclusiveMaximum'].some((k) => s[k] !== undefined)) t = ['number'];
  else return 'any';
  if (s.type !== undefined && (s.const !== undefined || Array.isArray(s.enum))) {
    // enum narrows a declared type to the types of its values
    const vals = s.const !== undefined ? [s.const] : (s.enum as unknown[]);
    const of = new Set(vals.map(jsonTypeOf));
    t = t.filter((x) => of.has(x) || (x === 'number' && of.has('integer')));
  }
  const out = new Set(t);
  if (s.nullable === true) out.add('null');
  return out;
}

/** All JSON types a (parameter) schema admits. */
export function schemaTypes(s: unknown, root: unknown, depth = 0): Types {
  const r = resolveSchema(s, root, depth);
  if (!isObj(r) || depth > MAX_REF_DEPTH) return 'any';
  const alts = alternatives(r);
  if (alts) {
    const out = new Set<JsonType>();
    for (const a of alts) {
      const t = schemaTypes(a, root, depth + 1);
      if (t === 'any') return 'any';
      for (const x of t) out.add(x);
    }
    return out;
  }
  return flatTypes(r);
}

export interface ToolParam {
  name: string;
  schema: unknown;
  required: boolean;
}

/**
 * The parameters of a tool as XML writes them: the root object's properties in schema order, then
 * required names the schema does not describe (any value). undefined: the root is not a plain
 * object schema (anyOf / a non-object type at the top), which XML calls cannot express.
 */
export function toolParams(parameters: unknown): ToolParam[] | undefined {
  if (parameters === undefined) return [];
  const root = resolveSchema(parameters, parameters);
  if (!isObj(root) || alternatives(root)) return undefined;
  const t = flatTypes(root);
  if (t !== 'any' && (t.size !== 1 || !t.has('object'))) return undefined;
  const props = isObj(root.properties) ? root.properties : {};
  const req = new Set(Array.isArray(root.required) ? root.required.filter((x): x is string => typeof x === 'string') : []);
  const out: ToolParam[] = Object.keys(props).map((name) => ({ name, schema: props[name], required: req.has(name) }));
  for (const r of req) if (!(r in props)) out.push({ name: r, schema: true, required: true });
  return out;
}

/** Types for a parameter of a tool: unknown tools / parameters are raw strings (vLLM does the same). */
export function paramTypes(parameters: unknown, name: string): Types {
  const p = toolParams(parameters)?.find((x) => x.name === name);
  if (p) return schemaTypes(p.schema, parameters);
  const root = resolveSchema(parameters, parameters);
  const ap = isObj(root) ? root.additionalProperties : undefined;
  return isObj(ap) ? schemaTypes(ap, parameters) : new Set(['string']);
}
