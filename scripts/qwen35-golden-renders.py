#!/usr/bin/env python3
"""Golden renders of the official Qwen3.5 chat template with Python Jinja2, under the settings of
Hugging Face transformers' apply_chat_template (ImmutableSandboxedEnvironment, trim_blocks,
lstrip_blocks, loopcontrols, tojson = json.dumps(x, ensure_ascii=False) with key order kept,
raise_exception as a global). qwen.ts must reproduce every render byte for byte and raise where
Jinja2 raises.

    python3 scripts/qwen35-golden-renders.py > test/fixtures/tokenizer/qwen3.5/golden-renders-jinja2.json

Run once; the output is committed. Nothing of qwen.ts is used here.
"""
import hashlib
import json
import sys
from pathlib import Path

import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE_FILE = ROOT / 'test/fixtures/tokenizer/qwen3.5/chat_template.jinja'


def raise_exception(message):
    raise jinja2.exceptions.TemplateError(message)


def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    # transformers' override of Jinja2's tojson (which would HTML-escape and sort keys)
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=['jinja2.ext.loopcontrols'])
env.filters['tojson'] = tojson
env.globals['raise_exception'] = raise_exception
TEMPLATE_TEXT = TEMPLATE_FILE.read_text(encoding='utf-8')
template = env.from_string(TEMPLATE_TEXT)

# --- building blocks -------------------------------------------------------------------------

SYSTEM = {'role': 'system', 'content': 'You are a helpful assistant.'}

TOOLS = [
    {'type': 'function', 'function': {
        'name': 'get_weather',
        'description': 'Get the current weather for a city, with an optional "unit".',
        'parameters': {
            'type': 'object',
            'properties': {
                'city': {'type': 'string', 'description': 'City name, e.g. "Zürich" or 東京'},
                'unit': {'type': 'string', 'enum': ['celsius', 'fahrenheit'], 'default': 'celsius'},
                'days': {'type': 'integer', 'minimum': 1, 'maximum': 7},
            },
            'required': ['city'],
        },
    }},
    {'type': 'function', 'function': {
        'name': 'search_flights',
        'description': 'Search flights.\nReturns a list of offers.',
        'parameters': {
            'type': 'object',
            'properties': {
                'route': {'type': 'object', 'properties': {
                    'from': {'type': 'string'}, 'to': {'type': 'string'},
                    'stops': {'type': 'array', 'items': {'type': 'string'}},
                }, 'required': ['from', 'to']},
                'passengers': {'type': 'array', 'items': {'type': 'object', 'properties': {
                    'name': {'type': 'string'}, 'age': {'type': 'integer'}, 'infant': {'type': 'boolean'},
                }}},
                'max_price': {'type': ['number', 'null'], 'description': 'in EUR; null = any'},
                'flexible': {'type': 'boolean'},
            },
            'required': ['route'],
        },
    }},
]

# arguments as objects, every JSON type (transformers passes them to the template as they are)
WEATHER_CALL = {'type': 'function', 'function': {'name': 'get_weather', 'arguments': {'city': 'Zürich', 'unit': 'celsius', 'days': 3}}}
FLIGHT_CALL = {'id': 'call_2', 'type': 'function', 'function': {'name': 'search_flights', 'arguments': {
    'route': {'from': 'ZRH', 'to': 'NRT', 'stops': ['HEL']},
    'passengers': [{'name': 'Ana', 'age': 34, 'infant': False}, {'name': 'Bo', 'age': 1, 'infant': True}],
    'max_price': 1250.5,
    'flexible': True,
    'note': 'window seat\nif possible',
    'budget': None,
    'empty_list': [],
    'empty_obj': {},
    'quote': 'say "hi" </parameter>',
}}}

# --- conversations ---------------------------------------------------------------------------

def case(name, messages, tools=None, add_generation_prompt=False, **kwargs):
    return {'name': name, 'messages': messages, 'tools': tools, 'add_generation_prompt': add_generation_prompt, 'kwargs': kwargs}


def u(text):
    return {'role': 'user', 'content': text}


def a(text, **extra):
    return {'role': 'assistant', 'content': text, **extra}


CASES = [
    case('plain_single_turn', [u('Hello!')]),
    case('plain_single_turn_genprompt', [u('Hello!')], add_generation_prompt=True),
    case('system_user_genprompt', [SYSTEM, u('What is 2+2?')], add_generation_prompt=True),
    case('multi_turn', [SYSTEM, u('Hi'), a('Hello! How can I help?'), u('Tell me a joke.'), a('Why did the chicken cross the road?'), u('Why?')], add_generation_prompt=True),
    case('genprompt_thinking_default', [u('Solve x^2 = 4.')], add_generation_prompt=True),
    case('genprompt_enable_thinking_true', [u('Solve x^2 = 4.')], add_generation_prompt=True, enable_thinking=True),
    case('genprompt_enable_thinking_false', [u('Solve x^2 = 4.')], add_generation_prompt=True, enable_thinking=False),
    case('multi_turn_thinking_true', [SYSTEM, u('Hi'), a('Hello!'), u('2+2?')], add_generation_prompt=True, enable_thinking=True),
    case('reasoning_before_and_after_last_query', [
        u('What is 3*7?'),
        a('3*7 = 21.', reasoning_content='Multiply 3 by 7.\n'),
        u('And 21/3?'),
        a('21/3 = 7.', reasoning_content='\n  Divide 21 by 3.  \n'),
    ]),
    case('reasoning_inline_think_tags', [
        u('First?'),
        a('<think>\nold reasoning\n</think>\n\nold answer'),
        u('Second?'),
        a('<think>\nnew reasoning\n</think>\n\nnew answer'),
    ], add_generation_prompt=True),
    # .lstrip('\n') keeps the spaces (JavaScript's trimStart would not)
    case('reasoning_inline_indented_answer', [u('Q'), a('<think>\nr  \n</think>\n\n  indented answer\n')]),
    case('reasoning_empty_after_last_query', [u('Hi'), a('Hello.')]),
    case('reasoning_content_null_with_think_in_content', [u('Q'), a('pre<think>\nr1\n</think>\n\nanswer', reasoning_content=None)]),
    case('tools_no_system_genprompt', [u("What's the weather in Zürich?")], tools=TOOLS, add_generation_prompt=True),
    case('tools_with_system_genprompt', [SYSTEM, u("What's the weather in Zürich?")], tools=TOOLS, add_generation_prompt=True),
    case('tools_empty_system', [{'role': 'system', 'content': '  '}, u('Hi')], tools=TOOLS, add_generation_prompt=True),
    case('tools_empty_list_is_no_tools', [SYSTEM, u('Hi')], tools=[], add_generation_prompt=True),
    case('tool_call_without_content', [
        u("Weather in Zürich for 3 days?"),
        a(None, tool_calls=[WEATHER_CALL]),
    ], tools=TOOLS),
    case('tool_call_empty_content', [u('Weather?'), a('', tool_calls=[WEATHER_CALL])], tools=TOOLS),
    case('tool_call_with_content', [
        u('Find me a flight from Zürich to Tokyo.'),
        a('Let me search for flights.', tool_calls=[FLIGHT_CALL]),
    ], tools=TOOLS),
    case('two_tool_calls_flat_and_wrapped', [
        u('Weather and flights please.'),
        a('Checking both.', tool_calls=[WEATHER_CALL, FLIGHT_CALL['function']]),
    ], tools=TOOLS),
    case('tool_call_without_arguments', [u('Ping?'), a(None, tool_calls=[{'type': 'function', 'function': {'name': 'ping'}}])]),
    case('one_tool_result', [
        u("Weather in Zürich?"),
        a(None, tool_calls=[WEATHER_CALL]),
        {'role': 'tool', 'tool_call_id': 'call_1', 'content': '{"temperature": 21, "condition": "sunny"}'},
    ], tools=TOOLS, add_generation_prompt=True),
    case('two_consecutive_tool_results', [
        SYSTEM,
        u('Weather and flights please.'),
        a('Checking both.', tool_calls=[WEATHER_CALL, FLIGHT_CALL]),
        {'role': 'tool', 'content': '{"temperature": 21}'},
        {'role': 'tool', 'content': '[{"price": 980.0, "airline": "LX"}]'},
        a('It is 21 °C and the cheapest flight is 980 EUR.'),
    ], tools=TOOLS),
    case('multi_turn_reasoning_and_tools', [
        SYSTEM,
        u('Plan a trip to Tokyo.'),
        a('', reasoning_content='I need the weather first.', tool_calls=[WEATHER_CALL]),
        {'role': 'tool', 'content': 'sunny, 25 °C'},
        a('Now flights.', reasoning_content='Weather is fine; search flights.', tool_calls=[FLIGHT_CALL]),
        {'role': 'tool', 'content': 'LX160 980 EUR'},
        a('Sunny and LX160 at 980 EUR.', reasoning_content='Summarise.'),
        u('Thanks! Book it.'),
    ], tools=TOOLS, add_generation_prompt=True, enable_thinking=True),
    case('multi_step_tool_genprompt_no_thinking', [
        u('Weather?'),
        a(None, reasoning_content='Call the tool.', tool_calls=[WEATHER_CALL]),
        {'role': 'tool', 'content': '21'},
    ], tools=TOOLS, add_generation_prompt=True, enable_thinking=False),
    case('user_turn_that_is_a_tool_response', [
        u('Weather?'),
        a('', tool_calls=[WEATHER_CALL]),
        u('<tool_response>\n21\n</tool_response>'),
        a('21 degrees.', reasoning_content='Read the response.'),
    ]),
    case('unicode', [
        {'role': 'system', 'content': 'Réponds en français. 你好 🦙'},
        u('Tiếng Việt, नमस्ते, สวัสดี, مَرْحَبًا, שָׁלוֹם, 👩🏽\u200d💻 and "quotes" \\ backslash'),
        a('D\u2019accord — 好的！', reasoning_content='Unicode réflexion 思考'),
        u('emoji only: 🇯🇵🏳️\u200d🌈'),
    ], add_generation_prompt=True),
    case('whitespace_edges_trimmed', [
        {'role': 'system', 'content': '\n\t System with spaces \u3000\n'},
        u('\u00a0 padded user \u2003\n'),
        a('\n\nanswer with newlines\n\n'),
        u('\ufeffBOM stays, \x85 and \x1f are Python whitespace\x1f\x85'),
    ], add_generation_prompt=True),
    case('content_parts_text_image_video', [
        {'role': 'system', 'content': [{'type': 'text', 'text': 'System as parts.'}]},
        {'role': 'user', 'content': [{'type': 'image', 'image': 'a.png'}, {'type': 'text', 'text': 'What is this?'}, {'type': 'video', 'video': 'b.mp4'}]},
        a('A cat.'),
        {'role': 'user', 'content': [{'type': 'image_url', 'image_url': {'url': 'http://x/c.png'}}, {'type': 'text', 'text': 'And this?'}]},
    ], add_generation_prompt=True),
    case('content_parts_add_vision_id', [
        {'role': 'user', 'content': [{'type': 'image'}, {'type': 'image'}, {'type': 'video'}, {'type': 'text', 'text': 'Compare.'}]},
    ], add_generation_prompt=True, add_vision_id=True),
    case('content_null_user', [u('Q'), a('A'), {'role': 'user', 'content': None}, u('Real question')]),
    # Jinja2 raises on these (the template's own raise_exception, or a Python TypeError)
    case('error_no_messages', []),
    case('error_unexpected_role', [u('Hi'), {'role': 'bot', 'content': 'x'}]),
    case('error_no_user_query', [SYSTEM, a('Hello')]),
    case('error_only_tool_responses', [u('<tool_response>\nx\n</tool_response>')]),
    case('error_system_not_first', [u('Hi'), SYSTEM]),
    case('error_image_in_system', [{'role': 'system', 'content': [{'type': 'image'}]}, u('Hi')]),
    case('error_video_in_system', [{'role': 'system', 'content': [{'type': 'video'}]}, u('Hi')]),
    case('error_unexpected_content_part', [{'role': 'user', 'content': [{'type': 'audio', 'audio': 'x.wav'}]}]),
    case('error_arguments_as_json_string', [u('Weather?'), a(None, tool_calls=[{'type': 'function', 'function': {'name': 'get_weather', 'arguments': '{"city": "Zürich"}'}}])]),
]


# Python semantics the chat templates rely on, checked one by one (each template gets `x`)
SEMANTICS = [
    ('{{ x|string }}', v) for v in [None, True, False, 3, 2.5, 1e-05, 0.0001, 123456789012345.6, 'plain',
                                     ['a', 1, None, True, "it's", 'tab\t', 'nb\u00a0sp'], {'k': None, 'n': [1.5, {'q': '"'}]}, []]
] + [
    ('[{{ x|trim }}]', '\x85 a \ufeff\x1f\u3000'),
    ("[{{ x.strip() }}|{{ x.lstrip('\\n') }}|{{ x.rstrip('\\n') }}|{{ x.strip('x\\n') }}|{{ x.lstrip() }}]", '\nx  body \u2003 \n\nx'),
    ('{{ x }} {{ x|string }} {{ not x }} {{ 1.0 }} {{ 2.5 }}', True),
    ('{% for k, v in x|items %}{{ k }}={{ v|string }};{% endfor %}', {'a': True, 'b': None, 'c': 1.25}),
    ('{{ x|tojson }}', {'b': [1, 2.5, True, None], 'a': 'é "q" \\ \n', 'c': {}}),
]


def render_semantics():
    out = []
    for text, x in SEMANTICS:
        out.append({'template': text, 'x': x, 'expected': env.from_string(text).render(x=x)})
    return out


def render(c):
    try:
        return template.render(messages=c['messages'], tools=c['tools'], add_generation_prompt=c['add_generation_prompt'],
                               bos_token=None, eos_token='<|im_end|>', **c['kwargs'])
    except Exception as e:  # noqa: BLE001 - the exception is the expected result
        return {'error': f'{type(e).__name__}: {e}'}


def main():
    out_cases = []
    for c in CASES:
        exp = render(c)
        is_err = isinstance(exp, dict)
        if c['name'].startswith('error_') != is_err:
            sys.exit(f"{c['name']}: expected {'an error' if c['name'].startswith('error_') else 'a render'}, got {exp!r}")
        out_cases.append({**c, 'expected': exp})
    doc = {
        '_provenance': {
            'generator': f'scripts/qwen35-golden-renders.py, Python Jinja2 {jinja2.__version__}, with transformers apply_chat_template settings: '
                         'ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols]); '
                         'tojson = json.dumps(x, ensure_ascii=False) (key order kept); raise_exception global; '
                         'bos_token=None, eos_token="<|im_end|>"; tools=None when absent; kwargs passed as template variables',
            'template': f'test/fixtures/tokenizer/qwen3.5/chat_template.jinja, sha256 {hashlib.sha256(TEMPLATE_TEXT.encode()).hexdigest()}, '
                        f'{len(TEMPLATE_TEXT.encode())} B (official Qwen3.5-0.8B)',
            'note': 'expected is the render, or {"error": "<Python exception type>: <message>"} where Jinja2 raises.',
        },
        'cases': out_cases,
        'semantics': render_semantics(),
    }
    json.dump(doc, sys.stdout, ensure_ascii=False, indent=1)
    sys.stdout.write('\n')


main()
