// Python semantics for @huggingface/jinja where it follows JavaScript instead, so that chat
// templates render as Python Jinja2 (what transformers uses) renders them:
//   - `x|string`, `{{ x }}`: Python str(): None, True/False, 1.0, 1e-05, ['a', 1], {'k': None}
//     (the library gives "true", "1", JSON; Qwen3.5's template writes tool-call arguments this way)
//   - `x|trim`, `s.strip()`: Python whitespace (U+0085 and U+001C..U+001F are whitespace,
//     U+FEFF is not; JavaScript's trim() differs on both)
//   - `s.strip(chars)`, `s.lstrip(chars)`, `s.rstrip(chars)`: the library ignores `chars` and
//     strips all whitespace; Qwen3.5's template calls `.lstrip('\n')` on assistant content
//   - `x|items` on a non-mapping: Jinja2's TypeError instead of "Unknown StringValue filter"
// The library exports its Interpreter but not its value classes, so the classes are taken from
// values it creates, and the affected methods are wrapped once, when this module is loaded.
import { Environment, Interpreter } from '@huggingface/jinja';

interface Value {
  type: string;
  value: unknown;
  toString(): string;
}
type ValueClass = new (v?: unknown) => Value;

const classOf = (v: unknown): ValueClass => (new Environment().set('_', v) as unknown as { constructor: ValueClass }).constructor;
const StringValue = classOf(''),
  BooleanValue = classOf(true),
  FloatValue = classOf(1.5);
const FunctionValue = (new Environment().variables.get('namespace') as unknown as { constructor: ValueClass }).constructor;

/** Characters Python's str.isspace() accepts (str.strip() with no argument removes these). */
const PY_SPACE = '\t\n\v\f\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000';

/** Python str.strip / lstrip / rstrip: `chars` null or undefined means whitespace. */
export function pyStrip(s: string, chars: string | null | undefined, left: boolean, right: boolean): string {
  const set = chars ?? PY_SPACE;
  const cps = Array.from(s);
  let a = 0,
    b = cps.length;
  if (left) while (a < b && set.includes(cps[a]!)) a++;
  if (right) while (b > a && set.includes(cps[b - 1]!)) b--;
  return a === 0 && b === cps.length ? s : cps.slice(a, b).join('');
}

/** Python repr() of a float, which str() and json.dumps() both use. */
export function pyFloat(x: number): string {
  if (Number.isNaN(x)) return 'nan';
  if (!Number.isFinite(x)) return x > 0 ? 'inf' : '-inf';
  if (Object.is(x, -0)) return '-0.0';
  // both languages print the shortest digits that round-trip; they differ in the layout:
  // Python switches to an exponent below 1e-4 and from 1e16 on, and writes it e-05 / e+16
  const [mant, e] = x.toExponential().split('e') as [string, string];
  const exp = Number(e);
  if (exp < -4 || exp >= 16) return `${mant}e${exp < 0 ? '-' : '+'}${String(Math.abs(exp)).padStart(2, '0')}`;
  const fixed = String(x);
  return fixed.includes('.') ? fixed : `${fixed}.0`;
}

/** Python repr() of a string: single quotes unless it holds ' but not ", non-printables escaped. */
function pyReprStr(s: string): string {
  const q = s.includes("'") && !s.includes('"') ? '"' : "'";
  let out = q;
  for (const ch of s) {
    const cp = ch.codePointAt(0)!;
    if (ch === q || ch === '\\') out += '\\' + ch;
    else if (ch === '\n') out += '\\n';
    else if (ch === '\r') out += '\\r';
    else if (ch === '\t') out += '\\t';
    else if (ch !== ' ' && /[\p{Cc}\p{Cf}\p{Cs}\p{Co}\p{Cn}\p{Zl}\p{Zp}\p{Zs}]/u.test(ch)) {
      out += cp < 0x100 ? `\\x${cp.toString(16).padStart(2, '0')}` : cp < 0x10000 ? `\\u${cp.toString(16).padStart(4, '0')}` : `\\U${cp.toString(16).padStart(8, '0')}`;
    } else out += ch;
  }
  return out + q;
}

/** Python str() of a template value (repr() inside lists and dicts, as Python prints them). */
export function pyStr(v: Value, inner = false): string {
  switch (v.type) {
    case 'NullValue':
      return 'None';
    case 'UndefinedValue':
      return inner ? 'None' : '';
    case 'BooleanValue':
      return v.value ? 'True' : 'False';
    case 'IntegerValue':
      return String(v.value);
    case 'FloatValue':
      return pyFloat(v.value as number);
    case 'StringValue':
      return inner ? pyReprStr(v.value as string) : (v.value as string);
    case 'ArrayValue':
      return `[${(v.value as Value[]).map((x) => pyStr(x, true)).join(', ')}]`;
    case 'TupleValue': {
      const xs = (v.value as Value[]).map((x) => pyStr(x, true));
      return `(${xs.join(', ')}${xs.length === 1 ? ',' : ''})`;
    }
    case 'ObjectValue':
    case 'KeywordArgumentsValue':
      return `{${[...(v.value as Map<string, Value>)].map(([k, x]) => `${pyReprStr(k)}: ${pyStr(x, true)}`).join(', ')}}`;
    default:
      return v.toString();
  }
}

interface FilterNode {
  type: string;
  value?: string;
  callee?: { type: string; value: string };
}
type ApplyFilter = (operand: Value, filter: FilterNode, env: unknown) => Value;

let installed = false;
/** Wrap the library's methods (idempotent). */
export function installPythonSemantics(): void {
  if (installed) return;
  installed = true;

  const proto = Interpreter.prototype as unknown as { applyFilter: ApplyFilter };
  const applyFilter = proto.applyFilter;
  proto.applyFilter = function (this: unknown, operand, filter, env) {
    if (filter.type === 'Identifier') {
      if (filter.value === 'string') return new StringValue(pyStr(operand));
      if (filter.value === 'trim' && operand.type === 'StringValue') return new StringValue(pyStrip(operand.value as string, null, true, true));
      if (filter.value === 'items' && operand.type !== 'ObjectValue' && operand.type !== 'UndefinedValue') throw new Error('Can only get item pairs from a mapping.');
    }
    return applyFilter.call(this, operand, filter, env);
  };

  // `{{ true }}` prints True in Python
  (BooleanValue.prototype as Value).toString = function (this: Value) {
    return this.value ? 'True' : 'False';
  };
  // FloatValue already prints 1.0 for integral values; Python's exponent layout too
  (FloatValue.prototype as Value).toString = function (this: Value) {
    return pyFloat(this.value as number);
  };

  // s.strip(chars) / lstrip / rstrip with Python's meaning (the library ignores chars)
  const desc = Object.getOwnPropertyDescriptor(StringValue.prototype, 'builtins');
  if (!desc?.get) throw new Error('@huggingface/jinja: StringValue.builtins not found (library changed?)');
  const getBuiltins = desc.get;
  const PATCHED = Symbol('python strip');
  Object.defineProperty(StringValue.prototype, 'builtins', {
    configurable: true,
    get(this: Value) {
      const m = getBuiltins.call(this) as Map<string | symbol, unknown>;
      if (!m.has(PATCHED)) {
        const s = this.value as string;
        const strip = (left: boolean, right: boolean, name: string) =>
          new FunctionValue((args: Value[]) => {
            const c = args[0];
            if (c !== undefined && c.type !== 'NullValue' && c.type !== 'StringValue') throw new Error(`${name} arg must be None or str`);
            return new StringValue(pyStrip(s, c?.type === 'StringValue' ? (c.value as string) : null, left, right));
          });
        m.set('strip', strip(true, true, 'strip'));
        m.set('lstrip', strip(true, false, 'lstrip'));
        m.set('rstrip', strip(false, true, 'rstrip'));
        m.set(PATCHED, true);
      }
      return m;
    },
  });
}
