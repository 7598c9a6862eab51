#!/usr/bin/env node
// Reference token ids for the Qwen3.5 tokenizer, made ONCE with @huggingface/tokenizers (the
// official Hugging Face tokenizers' JavaScript port, a devDependency) on the official
// tokenizer.json + tokenizer_config.json, independent of qwen.ts's tokenizer:
//
//   node scripts/qwen35-tokenizer-vectors.mjs > test/fixtures/tokenizer/qwen3.5/tokenizer-vectors.json
//
// Corpus: the inputs of llama.cpp's ggml-vocab-qwen2 tests (both versions) and transformers'
// Qwen2 integration strings, plus strings aimed at what changed in Qwen3.5 (combining marks in
// words: Vietnamese, Devanagari, Thai, Arabic with harakat, Hebrew with niqqud) and the usual
// hard cases (emoji ZWJ sequences, CJK, code, digits, contractions, whitespace, added tokens),
// and the Python Jinja2 renders of the Qwen3.5 chat template. The 7 audio/TTS tokens that only
// tokenizer_config.json lists are left out of the corpus: this port does not add them (see
// test/tokenizer/qwen35_tokenizer.test.ts). Each case records decode(ids) too, and the
// decode with skip_special_tokens.
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { fileURLToPath } from 'node:url';
import { Tokenizer } from '@huggingface/tokenizers';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const FIX = path.join(ROOT, 'test/fixtures/tokenizer');
const tj = JSON.parse(zlib.gunzipSync(fs.readFileSync(path.join(FIX, 'qwen3.5/tokenizer.json.gz'))).toString('utf8'));
const cfg = JSON.parse(fs.readFileSync(path.join(FIX, 'qwen3.5/tokenizer_config.json'), 'utf8'));
const tok = new Tokenizer(tj, cfg);

const cases = [];
const add = (source, text) => cases.push({ source, text });

for (const dir of ['', '2025-09']) {
  const inp = fs.readFileSync(path.join(FIX, 'vocab-tests', dir, 'ggml-vocab-qwen2.gguf.inp'), 'utf8').split('\n__ggml_vocab_test__\n');
  if (inp[inp.length - 1] === '') inp.pop();
  inp.forEach((t, i) => {
    if (!cases.some((c) => c.text === t)) add(`llama.cpp ggml-vocab-qwen2 ${dir || 'original'} #${i}`, t);
  });
}
JSON.parse(fs.readFileSync(path.join(FIX, 'vocab-tests/transformers-qwen2-tokenizer-integration.json'), 'utf8')).cases.forEach((c, i) => add(`transformers qwen2 integration #${i}`, c.text));

const EXTRA = {
  vietnamese: 'Tiếng Việt là ngôn ngữ chính thức của Việt Nam. Người ta nói: "Học, học nữa, học mãi."',
  vietnamese_nfd: 'Tie\u0302\u0301ng Vie\u0323\u0302t co\u0301 da\u0302\u0301u',
  devanagari: 'नमस्ते दुनिया! यह एक परीक्षण है। क्षत्रिय, ज्ञान, श्रृंखला; हिन्दी में १२३ अंक।',
  bengali_tamil: 'আমি বাংলায় গান গাই। தமிழ் மொழி அழகானது.',
  thai: 'ภาษาไทยเป็นภาษาที่สวยงาม ผมชื่ออเล็กซ์ สวัสดีครับ',
  arabic_harakat: 'بِسْمِ ٱللَّٰهِ ٱلرَّحْمَٰنِ ٱلرَّحِيمِ — مَرْحَبًا بِكُمْ، ١٢٣٤',
  hebrew_niqqud: 'בְּרֵאשִׁית בָּרָא אֱלֹהִים אֵת הַשָּׁמַיִם וְאֵת הָאָרֶץ׃ שָׁלוֹם',
  marks_alone: 'a\u0301\u0302\u0303 \u0301start x\u20dd \u0300\u0301\u0302 !\u0301? 9\u0301',
  zalgo: 'Z\u0334\u0321\u0327a\u0338l\u0336g\u0337o\u0335 t\u036Be\u0346x\u0352t',
  hangul_jamo: '\u1100\u1161\u11a8 \u1112\u1161\u11ab\u1100\u1173\u11af',
  emoji_zwj: '👩🏽‍💻 👨‍👩‍👧‍👦 🏳️‍🌈 🇯🇵🇨🇭 ❤️ 👍🏿 1️⃣ #️⃣ 🧑🏻‍🤝‍🧑🏾 🫶🏼',
  cjk: '我爱北京天安门。日本語のテキスト、カタカナとひらがな。한국어 텍스트입니다. ＡＢＣ１２３',
  code_python: 'def fib(n: int) -> int:\n    """Return the n-th Fibonacci number."""\n    return n if n < 2 else fib(n - 1) + fib(n - 2)\n\nprint([fib(i) for i in range(10)])  # [0, 1, 1, ...]\n',
  code_js: 'const f = async (x) => {\n\tif (x?.y ?? false) return `${x.y}`;\n\treturn await Promise.all([1, 2, 3].map((n) => n ** 2));\n};\n',
  json: '{"name": "get_weather", "arguments": {"city": "Zürich", "days": 3, "ok": true, "list": [1.5, null]}}',
  digits: '3.14159 1,000,000 0x1F 2026-12-01 ١٢٣ ४५६ ①②③ ½ 10^9 007',
  contractions: "I'm, you're, he's, they've, we'll, I'd. DON'T, IT'S, We'Ll; rock'n'roll ’s ‘quoted’",
  whitespace: 'a\r\nb\n\n\nc\t\td  \u00a0e\u3000f\u2028g   \n  h \r\r\n \u0085i\ufeffj  ',
  trailing_spaces: 'end with spaces   ',
  only_newlines: '\n\n\n\n',
  added_tokens: '<|im_start|>system\nYou are helpful.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n<think>\nhmm\n</think>\n\nHello<|im_end|><|endoftext|>',
  added_tokens_glued: 'x<|im_end|><|im_end|>y<|im_start|assistant <|vision_start|><|image_pad|><|vision_end|><|fim_prefix|>a<|fim_suffix|>b<|fim_middle|>',
  xml_tool_call: '<tool_call>\n<function=get_weather>\n<parameter=city>\nZürich\n</parameter>\n</function>\n</tool_call>\n<tool_response>\n{"t": 21}\n</tool_response>',
  mixed: 'Mix: English, Русский, Ελληνικά, ქართული, Հայերեն, ئۇيغۇرچە, ᠮᠣᠩᠭᠣᠯ, ⵜⴰⵎⴰⵣⵉⵖⵜ 🦙🔥',
  empty: '',
  single_space: ' ',
};
for (const [name, text] of Object.entries(EXTRA)) add(name, text);

const renders = JSON.parse(fs.readFileSync(path.join(FIX, 'qwen3.5/golden-renders-jinja2.json'), 'utf8'));
for (const c of renders.cases) if (typeof c.expected === 'string') add(`render ${c.name}`, c.expected);

const dec = (ids, skip) => (ids.length === 0 ? '' : tok.decode(ids, { skip_special_tokens: skip }));
const out = cases.map((c) => {
  const ids = tok.encode(c.text).ids;
  return { ...c, ids, decoded: dec(ids, false), decoded_skip_special: dec(ids, true) };
});
const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'node_modules/@huggingface/tokenizers/package.json'), 'utf8'));
process.stdout.write(
  JSON.stringify(
    {
      _provenance: {
        generator: `scripts/qwen35-tokenizer-vectors.mjs with @huggingface/tokenizers ${pkg.version} (new Tokenizer(tokenizer.json, tokenizer_config.json)), encode(text).ids, decode(ids[, skip_special_tokens])`,
        tokenizer: 'test/fixtures/tokenizer/qwen3.5/tokenizer.json.gz (official, sha256 5f9e4d49…)',
      },
      cases: out,
    },
    null,
    0,
  ).replace(/\},\{"source"/g, '},\n{"source"') + '\n',
);
