#!/usr/bin/env python3
"""Golden chat-template renderings from jinja2 (python3-jinja2, Debian) in transformers' environment.

Writes:
  tests/fixtures/templates/render_cases.json   - shared templates (../shared/testdata/chat_templates/*.jinja and the
                                                 chat_template of every ../shared/testdata/tokenizers/*/tokenizer_config.json)
                                                 over multi-turn conversations, plus small feature templates
  tests/fixtures/templates/builtin_cases.json  - canonical renderings of the built-in formats (alpaca, chatml, llama2,
                                                 llama3, mistral, vicuna), built here in plain Python from each format's
                                                 published definition (not with Jinja)

The environment reproduces transformers' _compile_jinja_template (src/transformers/utils/chat_template_utils.py):
ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[<generation tag>, loopcontrols]),
filters["tojson"] = json.dumps(x, ensure_ascii=False, indent, separators, sort_keys), globals raise_exception (raises
TemplateError) and strftime_now (datetime.now().strftime; a fixed clock here so the output is reproducible).
Render variables as apply_chat_template passes them: messages, tools=None, documents=None, add_generation_prompt and
the tokenizer's special tokens (those that are set), plus case extras.

Run from the repository root: python3 tools/golden/templates_render.py
"""
import glob
import json
import os
from datetime import datetime

import jinja2
import jinja2.ext
import jinja2.nodes
from jinja2.sandbox import ImmutableSandboxedEnvironment

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SHARED = os.path.normpath(os.path.join(ROOT, "..", "shared", "testdata"))
OUT = os.path.join(ROOT, "tests", "fixtures", "templates")
FIXED_NOW = datetime(2024, 7, 26, 14, 5, 9)
# Shifts every fuzz seed: TEMPLATES_FUZZ_SEED=1 python3 tools/golden/templates_render.py explores new cases
# (the committed fixtures use 0).
SEED_SHIFT = int(os.environ.get("TEMPLATES_FUZZ_SEED", "0"))


class GenerationTag(jinja2.ext.Extension):
    """transformers' {% generation %} block: renders its body unchanged (tracking is not needed here)."""
    tags = {"generation"}

    def parse(self, parser):
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(["name:endgeneration"], drop_needle=True)
        return jinja2.nodes.CallBlock(self.call_method("_render"), [], [], body).set_lineno(lineno)

    def _render(self, caller):
        return caller()


def make_env():
    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

    def strftime_now(fmt):
        return FIXED_NOW.strftime(fmt)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                        extensions=[GenerationTag, jinja2.ext.loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    return env


ENV = make_env()
SPECIAL = ["bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token",
           "additional_special_tokens"]


def token_content(v):
    return v["content"] if isinstance(v, dict) else v


def special_tokens(tok_dir):
    out = {}
    for name in ("tokenizer_config.json", "special_tokens_map.json"):
        path = os.path.join(tok_dir, name)
        if not os.path.exists(path):
            continue
        cfg = json.load(open(path, encoding="utf-8"))
        for key in SPECIAL:
            if key in out or cfg.get(key) is None:
                continue
            v = cfg[key]
            out[key] = [token_content(x) for x in v] if key == "additional_special_tokens" else token_content(v)
    return out


def render(source, tokens, messages, add_generation_prompt, extra=None):
    try:
        tmpl = ENV.from_string(source)
    except jinja2.exceptions.TemplateSyntaxError as e:
        return {"error": "syntax: " + str(e), "errorKind": "syntax"}
    kwargs = dict(tokens)
    kwargs.update(extra or {})
    try:
        text = tmpl.render(messages=messages, tools=kwargs.pop("tools", None), documents=kwargs.pop("documents", None),
                           add_generation_prompt=add_generation_prompt, **kwargs)
        return {"text": text}
    except jinja2.exceptions.TemplateError as e:
        kind = "raise" if type(e) is jinja2.exceptions.TemplateError else type(e).__name__
        return {"error": str(e), "errorKind": kind}
    except Exception as e:  # TypeError etc. from Python operations inside the template
        return {"error": f"{type(e).__name__}: {e}", "errorKind": type(e).__name__}


def m(role, content):
    return {"role": role, "content": content}


CONVERSATIONS = {
    "single_user": [m("user", "Hello!")],
    "user_assistant": [m("user", "What is 2+2?"), m("assistant", "4.")],
    "three_turns": [m("user", "Hi"), m("assistant", "Hello! How can I help?"), m("user", "Tell me a joke.")],
    "system_user": [m("system", "You are terse."), m("user", "Name a colour.")],
    "system_five": [m("system", "Be kind."), m("user", "q1"), m("assistant", "a1"), m("user", "q2"), m("assistant", "a2")],
    "padded_content": [m("system", "  sys with spaces \n"), m("user", "\n  padded user  \n"), m("assistant", "  answer\t\n")],
    "unicode_and_braces": [m("user", "Ünïcødé 你好 👩‍👩‍👧 {{ not_a_var }} {% if %} 'quotes' \"dq\" \\ back"),
                           m("assistant", "line1\nline2\r\nline3")],
    "empty_content": [m("user", ""), m("assistant", "")],
    "non_alternating_users": [m("user", "one"), m("user", "two")],
    "assistant_first": [m("assistant", "I start."), m("user", "ok")],
    "system_only": [m("system", "Only a system prompt.")],
}

TOOLS = [{"type": "function", "function": {
    "name": "get_weather", "description": "Get the weather in a city",
    "parameters": {"type": "object", "properties": {
        "city": {"type": "string", "description": "City name, e.g. Zürich"},
        "unit": {"type": "string", "enum": ["c", "f"]}}, "required": ["city"]}}}]

TOOL_CONVERSATIONS = {
    "tool_call_round": [
        m("user", "Weather in Paris?"),
        {"role": "assistant", "content": "", "tool_calls": [
            {"id": "abc123XYZ", "type": "function",
             "function": {"name": "get_weather", "arguments": {"city": "Paris", "unit": "c", "days": 2, "ratio": 0.5}}}]},
        {"role": "tool", "tool_call_id": "abc123XYZ", "content": "{\"temp\": 21.5}"},
        m("assistant", "It is 21.5 °C."),
    ],
}


def random_conversations(n, seed=7):
    """Random conversations: mostly alternating, sometimes not; contents with edge whitespace and odd characters."""
    import random
    rng = random.Random(seed + SEED_SHIFT)
    bits = ["Hello", " world ", "\n", "  ", "\t", "ünï", "日本", "🙂", "{{ x }}", "{% y %}", "'", "\"", "\\", "<s>", "[INST]", "a\r\nb", "42", ""]
    convs = []
    for _ in range(n):
        msgs = []
        if rng.random() < 0.4:
            msgs.append(m("system", "".join(rng.choice(bits) for _ in range(rng.randrange(0, 5)))))
        turns = rng.randrange(1, 6)
        for i in range(turns):
            role = ("user", "assistant")[i % 2] if rng.random() < 0.9 else rng.choice(["user", "assistant", "system"])
            msgs.append(m(role, "".join(rng.choice(bits) for _ in range(rng.randrange(0, 6)))))
        convs.append(msgs)
    return convs


def shared_templates():
    out = []
    for path in sorted(glob.glob(os.path.join(SHARED, "chat_templates", "*.jinja"))):
        name = os.path.basename(path)
        tok = "llama3" if name.startswith("llama3") else "llama2"  # as SOURCE.md pairs them
        out.append((f"chat_templates/{name}", open(path, encoding="utf-8").read(), os.path.join(SHARED, "tokenizers", tok)))
    for cfg_path in sorted(glob.glob(os.path.join(SHARED, "tokenizers", "*", "tokenizer_config.json"))):
        cfg = json.load(open(cfg_path, encoding="utf-8"))
        ct = cfg.get("chat_template")
        if ct is None:
            continue
        if isinstance(ct, list):
            ct = next(t["template"] for t in ct if t["name"] == "default")
        tok_dir = os.path.dirname(cfg_path)
        out.append((f"tokenizers/{os.path.basename(tok_dir)}", ct, tok_dir))
    return out


# Small templates that exercise the interpreter feature by feature (our own sources, rendered by jinja2).
FEATURES = {
    "loop_vars": "{% for x in ['a','b','c'] %}{{ loop.index }}{{ loop.index0 }}{{ loop.revindex }}{{ loop.revindex0 }}"
                 "{{ loop.first }}{{ loop.last }}{{ loop.length }}{{ loop.previtem }}|{{ loop.nextitem }}|{{ loop.cycle('x','y') }};{% endfor %}",
    "for_else_filter": "{% for x in [1,2,3,4] if x is even %}{{ x }}{% else %}none{% endfor %}/{% for x in [] %}{{ x }}{% else %}empty{% endfor %}",
    "for_unpack_items": "{% for k, v in {'b': 1, 'a': [2, 3]}.items() %}{{ k }}={{ v }};{% endfor %}{% for k, v in {'x': 1} | items %}{{ k }}{{ v }}{% endfor %}",
    "loopcontrols": "{% for i in range(10) %}{% if i == 2 %}{% continue %}{% endif %}{% if i > 5 %}{% break %}{% endif %}{{ i }}{% endfor %}",
    "nested_loops": "{% for i in range(2) %}{% for j in range(3) %}{{ loop.depth }}{{ i }}{{ j }},{% endfor %}{{ loop.depth0 }}{% endfor %}",
    "scoping": "{% set x = 1 %}{% for i in range(3) %}{% set x = x + 10 %}{{ x }},{% endfor %}{{ x }}|{% if true %}{% set y = 5 %}{% endif %}{{ y }}",
    "namespace": "{% set ns = namespace(count=0, found=false) %}{% for i in range(5) %}{% set ns.count = ns.count + i %}"
                 "{% if i == 3 %}{% set ns.found = true %}{% endif %}{% endfor %}{{ ns.count }} {{ ns.found }}",
    "set_block": "{% set block %}  Hello {{ 'World' }}!  {% endset %}[{{ block }}]{% set b2 | upper | trim %} shout {% endset %}[{{ b2 }}]",
    "macro_call": "{% macro greet(name, punct='!') %}Hi {{ name }}{{ punct }}{% endmacro %}{{ greet('Ann') }} {{ greet('Bob', punct='?') }}"
                  "{% macro wrap(tag) %}<{{ tag }}>{{ caller() }}</{{ tag }}>{% endmacro %}{% call wrap('b') %}inner {{ 1 + 1 }}{% endcall %}",
    "filters_text": "{{ '  Hi There  ' | trim }}|{{ 'abc' | upper }}|{{ 'ABC' | lower }}|{{ 'hello world-foo bar' | title }}|"
                    "{{ 'hELLO' | capitalize }}|{{ 'a-b-c' | replace('-', '+') }}|{{ 'x' | center(5) }}|{{ 'xx--' | trim('x-') }}|"
                    "{{ '<a href=\"x\">&\\'' | escape }}|{{ 'ab' | safe }}|{{ 'one two  three' | wordcount }}|{{ 'abc' | reverse }}",
    "filters_seq": "{{ [3, 1, 2] | sort }}|{{ ['b', 'A', 'c'] | sort }}|{{ ['b', 'A', 'c'] | sort(reverse=true) }}|{{ [1, 2, 2, 3, 1] | unique | list }}|"
                   "{{ [1, 2, 3] | first }}{{ [1, 2, 3] | last }}|{{ [1, 2, 3] | reverse | list }}|{{ [1, 2, 3] | length }}{{ 'abcd' | count }}|"
                   "{{ [1, 2, 3] | join('-') }}|{{ [1, 2, 3] | sum }}|{{ [4, 2, 9] | min }}{{ [4, 2, 9] | max }}|{{ 'abc' | list }}|"
                   "{{ {'b': 2, 'a': 1} | dictsort }}|{{ [1, 2, 3, 4, 5] | batch(2) | list }}",
    "filters_select": "{% set people = [{'name': 'ann', 'age': 30, 'role': 'user'}, {'name': 'bob', 'age': 20, 'role': 'assistant'}, {'name': 'cy', 'role': 'user'}] %}"
                      "{{ people | selectattr('role', 'equalto', 'user') | map(attribute='name') | join(',') }}|"
                      "{{ people | rejectattr('role', 'eq', 'user') | map(attribute='name') | list }}|"
                      "{{ people | selectattr('age', 'defined') | map(attribute='age') | sum }}|"
                      "{{ people | map(attribute='age', default=0) | list }}|{{ [1, 0, 2, none] | select | list }}|"
                      "{{ [1, 2, 3, 4] | reject('odd') | list }}|{{ ['a', 'b'] | map('upper') | list }}|{{ people | sort(attribute='name', reverse=true) | map(attribute='name') | first }}",
    "filters_numbers": "{{ '42' | int }} {{ '4.7' | int }} {{ 'x' | int }} {{ 'x' | int(7) }} {{ 3.99 | int }} {{ '1.5' | float }} {{ 2.5 | round }} "
                       "{{ 3.14159 | round(2) }} {{ 2.7 | round(0, 'floor') }} {{ -3 | abs }} {{ 10 / 4 }} {{ 10 // 4 }} {{ -7 // 2 }} {{ -7 % 3 }} "
                       "{{ 2 ** 10 }} {{ 7 % 3 }} {{ 1.5 + 1 }} {{ 0.1 + 0.2 }} {{ 1e-7 }} {{ 123456789012345678.0 }} {{ 1 / 3 }}",
    "default_filter": "{{ missing | default('dflt') }}|{{ '' | default('empty', true) }}|{{ none | default('n') }}|{{ 0 | d('zero', boolean=true) }}",
    "tests": "{{ x is defined }}{{ x is undefined }}{{ none is none }}{{ 'a' is string }}{{ 1 is number }}{{ 1.5 is number }}"
             "{{ {} is mapping }}{{ [] is iterable }}{{ 'a' is iterable }}{{ [] is sequence }}{{ 3 is odd }}{{ 4 is even }}"
             "{{ 9 is divisibleby 3 }}{{ 'a' is in 'abc' }}{{ 2 is in [1, 2] }}{{ true is true }}{{ 1 is true }}{{ false is false }}"
             "{{ 'x' is equalto 'x' }}{{ 1 is eq 1.0 }}{{ 3 is gt 2 }}{{ 'abc' is lower }}{{ 'ABC' is upper }}{{ 1 is integer }}{{ 1.0 is float }}"
             "{{ true is boolean }}{{ x is not defined }}{{ 5 is ne 4 }}",
    "operators": "{{ 1 + 2 * 3 }} {{ (1 + 2) * 3 }} {{ 'a' ~ 1 ~ none ~ true }} {{ 'ab' * 3 }} {{ [1] + [2] }} {{ not true }} {{ true and 'x' }} "
                 "{{ false or 'y' }} {{ 1 < 2 < 3 }} {{ 3 > 2 > 2 }} {{ 'b' in 'abc' }} {{ 'z' not in 'abc' }} {{ 1 in [1, 2] }} {{ 'k' in {'k': 1} }} "
                 "{{ 'yes' if 1 else 'no' }} {{ 'yes' if 0 else 'no' }} [{{ 'only' if false }}] {{ -(3) }} {{ 1 == 1.0 }} {{ [1, 2] == [1, 2] }} "
                 "{{ {'a': 1} == {'a': 1} }} {{ 'a' != 'b' }} {{ 'abc' < 'abd' }} {{ '%s is %d' % ('x', 4) }} {{ '%.2f' % 3.14159 }}",
    "literals_repr": "{{ [1, 'two', 3.0, none, true, [false]] }} {{ {'a': 1, 'b': 'x', 'c': [1, 2]} }} {{ (1, 'a') }} {{ (1,) }} {{ () }} "
                     "{{ \"it's\" }} {{ ['it\\'s', \"q\\\"\"] }} {{ 'tab\\there' }} {{ ['nl\\n'] }} {{ 'a' 'b' }} {{ 1_000 }}",
    "slicing_indexing": "{% set s = 'Hello, World' %}{{ s[0] }}{{ s[-1] }}{{ s[1:4] }}{{ s[:5] }}{{ s[7:] }}{{ s[::-1] }}{{ s[::2] }}{{ s[-5:-1] }}"
                        "|{% set l = [0, 1, 2, 3, 4, 5] %}{{ l[1:3] }}{{ l[::-2] }}{{ l[-2:] }}{{ l[10:] }}{{ l.1 }}{{ l[99] is defined }}",
    "string_methods": "{% set s = '  Hello World  ' %}[{{ s.strip() }}][{{ s.lstrip() }}][{{ s.rstrip() }}][{{ s.upper() }}][{{ s.lower() }}]"
                      "{{ 'a,b,,c'.split(',') }}{{ ' a  b '.split() }}{{ 'a b c'.split(' ', 1) }}{{ 'a.b.c'.rsplit('.', 1) }}"
                      "{{ 'Hello'.startswith('He') }}{{ 'Hello'.endswith(('x', 'lo')) }}{{ 'aXbX'.replace('X', '-') }}{{ 'hello'.title() }}"
                      "{{ 'abc'.find('c') }}{{ 'l1\\nl2\\r\\nl3'.splitlines() }}{{ '-'.join(['x', 'y']) }}{{ '{} and {name}'.format(1, name='n') }}"
                      "{{ 'xxhixx'.strip('x') }}{{ 'abc'.capitalize() }}{{ '123'.isdigit() }}{{ 'a=b=c'.partition('=') }}{{ 'aaa'.count('a') }}",
    "dict_methods": "{% set d = {'name': 'x', 'n': 2} %}{{ d.keys() | list }}{{ d.values() | list }}{{ d.items() | list }}{{ d.get('name') }}"
                    "{{ d.get('missing', 'fallback') }}{{ d.get('missing') }}{{ d.name }}{{ d['n'] }}{{ d.missing is defined }}{{ d | length }}",
    "tojson_variants": "{% set v = {'b': [1, 2.5, none, true], 'a': 'Zürich \"q\" \\\\ \\n', 'e': {}, 'l': []} %}{{ v | tojson }}\n"
                       "{{ v | tojson(indent=2) }}\n{{ v | tojson(sort_keys=true) }}\n{{ v | tojson(ensure_ascii=true) }}\n"
                       "{{ v | tojson(separators=(',', ':')) }}\n{{ 'x<y>&' | tojson }}\n{{ [1e20, 0.1, -0.0, 100.0] | tojson }}\n{{ v | tojson(indent='\\t') }}",
    "whitespace_control": "A\n  {% if true %}\n    B\n  {% endif %}\nC {{- ' D ' -}} E\n{#- comment -#}\n  F  {%- if true -%}  G  {%- endif -%}  H\n"
                          "   {{ 'I' }}   \n{%+ if true %}J{% endif %}\n  {# c #}\nK\n{% raw %}{{ not parsed }}{% endraw %}\nend\n",
    "trailing_newlines": "line\n\n",
    "crlf_source": "a\r\n{% if true %}\r\nb\r\n{% endif %}\r\nc",
    "generation_block": "{% for m in messages %}{% if m.role == 'assistant' %}{% generation %}{{ m.content }}{% endgeneration %}{% else %}{{ m.content }}{% endif %}|{% endfor %}",
    "strftime": "{{ strftime_now('%d %b %Y') }}|{{ strftime_now('%Y-%m-%d %H:%M:%S') }}|{{ strftime_now('%A %B %j %I%p %y %%') }}",
    "with_and_filter_block": "{% with a = 1, b = 2 %}{{ a + b }}{% endwith %}{% filter upper %}shout {{ 'this' }}{% endfilter %}",
    "messages_features": "{% for message in messages %}{{ message.role | upper }}:{{ message['content'] | trim }}"
                         "{% if not loop.last %}\n{% endif %}{% endfor %}{% if add_generation_prompt %}\nASSISTANT:{% endif %}",
    "unicode_case": "{{ 'Straße ﬁx ŉ' | upper }}|{{ 'İSTANBUL ΟΔΟΣ ΟΔΟΣ. Σ' | lower }}|{{ 'straße'.upper() }}|{{ 'ÉCOLE'.lower() }}|"
                    "{{ ['b', 'Ä', 'a'] | sort }}|{{ 'ßa' | capitalize }}|{{ ['a\u200db', 'é\x85', '\u2028', '🙂'] }}|{{ 'x\u0000y' | tojson }}",
    "misc_features": "{% set a, b = 1, 'two' %}{{ a }}{{ b }}|{% for p, q in [[1, 2], (3, 4)] %}{{ p * q }},{% endfor %}|"
                     "{% for x in [1, 1, 2, 3, 3] %}{% if loop.changed(x) %}{{ x }}{% endif %}{% endfor %}|{{ '%s-%s' | format('a', 1) }}|"
                     "{{ dict(k=1, j='x') }}|{% set ns = namespace({'z': 5}) %}{{ ns.z }}|{{ {'y': 3} | attr('y') }}|"
                     "{% filter trim %}   padded   {% endfilter %}|{{ '\u00e9\x41\U0001F600' }}|{{ 'a' if none is none }}|{{ (1, 2) | list }}|"
                     "{{ [1, [2, [3]]] | length }}|{{ 'ab' ~ 3 ~ [4] }}|{{ 10 ** -1 }}|{{ 7 / 7 }}|{{ 2 * 3.0 }}|{{ -0.0 }}|{{ 1e16 }}|{{ 123456.789 }}",
    "macro_features": "{% macro f(a, b=a ~ '!', c=none) %}{{ a }}{{ b }}{{ c }}{{ varargs }}{{ kwargs }}{% endmacro %}"
                      "{{ f(1) }}|{{ f(1, 2, 3, 4, 5) }}|{{ f('x', c='y') }}|{{ f('x', z=1) }}|"
                      "{% macro row(x) %}<{{ caller(x * 2) }}>{% endmacro %}{% call(v) row(3) %}[{{ v }}]{% endcall %}|"
                      "{% macro outer() %}{% macro inner() %}I{% endmacro %}{{ inner() }}O{% endmacro %}{{ outer() }}",
    "raise_custom": "{% if messages | length > 1 %}{{ raise_exception('too many: ' ~ messages | length) }}{% endif %}ok",
}

FEATURE_ERRORS = {
    "err_undefined_attr": "{{ missing.attr }}",
    "err_undefined_add": "{{ missing + 'x' }}",
    "err_unsafe_append": "{% set l = [] %}{{ l.append(1) }}",
    "err_none_attr_chain": "{{ none.a.b }}",
    "err_type_add": "{{ 1 + 'a' }}",
    "err_syntax_unclosed": "{% if true %}no end",
    "err_syntax_bad_expr": "line one\n{{ 1 + }}",
    "err_unknown_filter": "{{ 1 | no_such_filter }}",
}


def whitespace_fuzz(n, seed=1234):
    """Random mixes of text with spaces/tabs/newlines and tags with -/+ whitespace control (lexer stress)."""
    import random
    rng = random.Random(seed + SEED_SHIFT)
    texts = ["", " ", "  ", "\t", "\n", " \n", "\n  ", "\n\n", "a", " b ", "c\n", "\n d", "\t\te\n ", "x y"]

    def sign():
        return rng.choice(["", "", "-", "+"])

    def end_sign():
        return rng.choice(["", "", "-"])

    def piece(depth):
        k = rng.randrange(6 if depth < 2 else 3)
        if k == 0:
            return rng.choice(texts)
        if k == 1:
            return "{{" + sign().replace("+", "") + " 'v' " + end_sign() + "}}"
        if k == 2:
            return "{#" + sign() + " note " + end_sign() + "#}"
        body = "".join(piece(depth + 1) for _ in range(rng.randrange(1, 4)))
        if k == 3:
            return "{%" + sign() + " if true " + end_sign() + "%}" + body + "{%" + sign() + " endif " + end_sign() + "%}"
        if k == 4:
            return "{%" + sign() + " for i in range(2) " + end_sign() + "%}" + body + "{{ i }}{%" + sign() + " endfor " + end_sign() + "%}"
        return "{%" + sign() + " set t = 1 " + end_sign() + "%}" + body

    return ["".join(piece(0) for _ in range(rng.randrange(2, 7))) + rng.choice(["", "\n", "\n\n", " \n"]) for _ in range(n)]


def expression_fuzz(n, seed=99):
    """Random expressions over literals, operators, filters, tests, slices and methods (evaluator stress)."""
    import random
    rng = random.Random(seed + SEED_SHIFT)
    atoms = ["0", "1", "2", "-3", "7", "2.5", "0.1", "-1.5", "1e3", "'ab'", "'Hello World'", "'  pad  '", "''", "'a,b,c'",
             "none", "true", "false", "[1, 2, 3]", "['b', 'a', 'C']", "[]", "{'k': 1, 'j': 'v'}", "{}", "(1, 'x')",
             "messages[0]['content']", "messages | length", "messages[-1].role", "undefined_var", "ns.n", "'x' * 3"]
    filters = ["length", "upper", "lower", "trim", "first", "last", "list", "sort", "reverse", "string", "int", "float",
               "round", "abs", "title", "capitalize", "tojson", "unique | list", "join('-')", "default('D')", "replace('a', 'Z')",
               "count", "sum", "min", "max", "items | list", "tojson(indent=1)", "map('string') | list", "select | list",
               "round(1)", "int(5)", "center(7)", "indent(2)", "dictsort", "batch(2) | list", "wordcount"]
    tests = ["defined", "undefined", "none", "string", "number", "mapping", "iterable", "sequence", "true", "false",
             "odd", "even", "integer", "float", "boolean", "equalto 2", "in [1, 2]", "lower", "divisibleby 2"]
    binops = ["+", "-", "*", "/", "//", "%", "~", "==", "!=", "<", ">=", "and", "or", "in", "not in", "**"]
    methods = ["strip()", "upper()", "split(',')", "startswith('a')", "endswith('c')", "replace('a', 'b')", "keys() | list",
               "values() | list", "get('k')", "get('zz', 9)", "items() | list", "title()", "lstrip()", "find('b')", "count('a')"]

    def expr(d):
        k = rng.randrange(9 if d < 3 else 1)
        if k == 0:
            return rng.choice(atoms)
        if k == 1:
            return "(" + expr(d + 1) + " " + rng.choice(binops) + " " + expr(d + 1) + ")"
        if k == 2:
            return "(" + expr(d + 1) + " | " + rng.choice(filters) + ")"
        if k == 3:
            return "(" + expr(d + 1) + " is " + rng.choice(["", "not "]) + rng.choice(tests) + ")"
        if k == 4:
            return "(not " + expr(d + 1) + ")"
        if k == 5:
            return "(" + expr(d + 1) + " if " + expr(d + 1) + " else " + expr(d + 1) + ")"
        if k == 6:
            a, b = rng.choice(["", "1", "-1", "0", "-2"]), rng.choice(["", "2", "-1", "5"])
            return "(" + expr(d + 1) + ")[" + rng.choice([a + ":" + b, a + ":" + b + ":" + rng.choice(["-1", "2"]), rng.choice(["0", "-1", "1"])]) + "]"
        if k == 7:
            return "(" + expr(d + 1) + ")." + rng.choice(methods)
        return "[" + expr(d + 1) + ", " + expr(d + 1) + "]"

    prefix = "{% set ns = namespace(n=4) %}"
    return [prefix + "{{ " + expr(0) + " }}" for _ in range(n)]


def statement_fuzz(n, seed=4242):
    """Random programs of for/if/set/namespace/macro/loop controls (scoping and control-flow stress)."""
    import random
    rng = random.Random(seed + SEED_SHIFT)
    conds = ["loop.first", "loop.last", "x is even", "x > 1", "v is defined", "ns.c > 2", "not loop.first and x != 2",
             "messages | length > 2", "x in [1, 3]", "v == 'a'", "true", "false"]
    values = ["x", "v", "loop.index", "loop.revindex0", "ns.c", "loop.previtem", "loop.nextitem", "v ~ x", "loop.length",
              "m(x)", "messages[x % 3]['role']", "'lit'"]

    def stmt(depth, in_loop):
        k = rng.randrange(8 if depth < 3 else 3)
        if k == 0:
            return "{{ " + (rng.choice(values) if in_loop else rng.choice(["v", "ns.c", "'t'", "m(1)"])) + " }}"
        if k == 1:
            return "{% set v = " + rng.choice(["'a'", "'b'", "v ~ '+'" if rng.random() < 0.5 else "1"]) + " %}"
        if k == 2:
            return "{% set ns.c = ns.c + 1 %}"
        if k == 3:
            inner = "".join(stmt(depth + 1, True) for _ in range(rng.randrange(1, 4)))
            iterable = rng.choice(["[1, 2, 3]", "range(4)", "[]", "[2, 1]"])
            filt = rng.choice(["", "", " if x != 2"])
            els = rng.choice(["", "", "{% else %}E"])
            return "{% for x in " + iterable + filt + " %}" + inner + els + "{% endfor %}"
        if k == 4 and in_loop:
            c = rng.choice(conds)
            return "{% if " + c + " %}" + stmt(depth + 1, in_loop) + "{% elif " + rng.choice(conds) + " %}" + \
                stmt(depth + 1, in_loop) + "{% else %}" + stmt(depth + 1, in_loop) + "{% endif %}"
        if k == 5 and in_loop:
            return "{% if " + rng.choice(conds) + " %}{% " + rng.choice(["break", "continue"]) + " %}{% endif %}"
        if k == 6:
            return "[" + "".join(stmt(depth + 1, in_loop) for _ in range(2)) + "]"
        return "{% if v is defined %}D{% else %}U{% endif %}"

    prelude = "{% set ns = namespace(c=0) %}{% macro m(n) %}<{{ n }}{{ ns.c }}>{% endmacro %}"
    return [prelude + "".join(stmt(0, False) for _ in range(rng.randrange(2, 5))) + "|{{ ns.c }}{{ v }}" for _ in range(n)]


def string_fuzz(n, seed=555):
    """Random strings (unicode whitespace, case, digits, punctuation) through string filters and methods."""
    import random
    rng = random.Random(seed + SEED_SHIFT)
    pieces = ["a", "B", "ß", "é", "İ", "ǅ", "ﬁ", " ", "  ", "\\t", "\\n", "\\u00a0", "\\u3000", "\\u2003", "-", "(", "'s", "x1", "42",
              "3.5", "-7", "Hello", "wORLD", ",", ".", "_", "日本", "😀", "\\u200b", "\\r\\n", "\\x1f", "\\u0085"]
    ops = ["trim", "upper", "lower", "title", "capitalize", "length", "wordcount", "center(9)", "indent(2)", "indent(2, true)",
           "indent(2, blank=true)", "replace(' ', '_')", "int", "float", "list | length", "reverse", "string", "tojson",
           "tojson(ensure_ascii=true)", "first", "last", "escape"]
    methods = ["strip()", "lstrip()", "rstrip()", "split()", "split(' ')", "splitlines()", "title()", "capitalize()", "isdigit()",
               "isspace()", "isalpha()", "isupper()", "islower()", "upper()", "lower()", "startswith(' ')", "strip(' a')", "rsplit(None, 1)",
               "split(None, 1)", "swapcase()", "zfill(6)", "find('a')", "count(' ')"]
    out = []
    for _ in range(n):
        text = "".join(rng.choice(pieces) for _ in range(rng.randrange(0, 7)))
        if rng.random() < 0.5:
            expr = "'" + text + "' | " + rng.choice(ops)
        else:
            expr = "('" + text + "')." + rng.choice(methods)
        out.append("{{ " + expr + " }}")
    return out


def main():
    cases = []
    for template_id, source, tok_dir in shared_templates():
        tokens = special_tokens(tok_dir)
        for conv_name, conv in CONVERSATIONS.items():
            for agp in (False, True):
                r = render(source, tokens, conv, agp)
                cases.append({"template": template_id, "tokenizer": os.path.basename(tok_dir), "conversation": conv_name,
                              "messages": conv, "add_generation_prompt": agp, **r})
        for k, conv in enumerate(random_conversations(25)):
            agp = k % 2 == 1
            r = render(source, tokens, conv, agp)
            cases.append({"template": template_id, "tokenizer": os.path.basename(tok_dir), "conversation": f"random_{k:02d}",
                          "messages": conv, "add_generation_prompt": agp, **r})
        if "llama3.1" in template_id or "mistral-nemo" in template_id or "qwen2.5" in template_id:
            for conv_name, conv in TOOL_CONVERSATIONS.items():
                for agp in (False, True):
                    extra = {"tools": TOOLS}
                    r = render(source, tokens, conv, agp, extra)
                    cases.append({"template": template_id, "tokenizer": os.path.basename(tok_dir), "conversation": conv_name,
                                  "messages": conv, "add_generation_prompt": agp, "extra": extra, **r})
    feature_msgs = CONVERSATIONS["padded_content"]
    fuzz = {f"ws_fuzz_{i:03d}": src for i, src in enumerate(whitespace_fuzz(250))}
    fuzz.update({f"expr_fuzz_{i:03d}": src for i, src in enumerate(expression_fuzz(500))})
    fuzz.update({f"stmt_fuzz_{i:03d}": src for i, src in enumerate(statement_fuzz(200))})
    fuzz.update({f"str_fuzz_{i:03d}": src for i, src in enumerate(string_fuzz(300))})
    for name, source in {**FEATURES, **FEATURE_ERRORS, **fuzz}.items():
        for agp in (False, True) if name == "messages_features" else (False,):
            r = render(source, {"bos_token": "<s>"}, feature_msgs, agp)
            cases.append({"template": "feature/" + name, "source": source, "tokens": {"bos_token": "<s>"},
                          "conversation": "padded_content", "messages": feature_msgs, "add_generation_prompt": agp, **r})
    os.makedirs(OUT, exist_ok=True)
    write_json(os.path.join(OUT, "render_cases.json"), {"jinja2_version": jinja2.__version__, "fixed_now": FIXED_NOW.isoformat(), "cases": cases})
    write_json(os.path.join(OUT, "builtin_cases.json"), {"cases": builtin_cases()})
    print(f"{len(cases)} render cases; jinja2 {jinja2.__version__}")


# ---- canonical built-in formats, written from their definitions (no Jinja) ----

ALPACA_PREAMBLE = ("Below is an instruction that describes a task. "
                   "Write a response that appropriately completes the request.")
VICUNA_SYSTEM = ("A chat between a curious user and an artificial intelligence assistant. "
                 "The assistant gives helpful, detailed, and polite answers to the user's questions.")


def split_system(msgs):
    if msgs and msgs[0]["role"] == "system":
        return msgs[0]["content"], msgs[1:]
    return None, msgs


def check_alternation(turns):
    for i, t in enumerate(turns):
        if (t["role"] == "user") != (i % 2 == 0):
            raise ValueError("Conversation roles must alternate user/assistant/user/assistant/...")


def chatml(msgs, agp):
    # openai-python chatml.md
    s = "".join(f"<|im_start|>{x['role']}\n{x['content']}<|im_end|>\n" for x in msgs)
    return s + ("<|im_start|>assistant\n" if agp else "")


def alternating(msgs, opening, user, assistant):
    """Formats with an optional system message and strict user/assistant alternation after it."""
    system, turns = split_system(msgs)
    check_alternation(turns)
    out = opening(system)
    for i, t in enumerate(turns):
        out += user(t["content"], system if i == 0 else None) if t["role"] == "user" else assistant(t["content"])
    return out


def llama2(msgs, agp):
    # meta-llama/llama generation.py: B_INST, E_INST = "[INST]", "[/INST]"; B_SYS, E_SYS = "<<SYS>>\n", "\n<</SYS>>\n\n"
    return alternating(
        msgs, lambda system: "",
        lambda c, system: "<s>[INST] " + (c if system is None else "<<SYS>>\n" + system + "\n<</SYS>>\n\n" + c).strip() + " [/INST]",
        lambda c: " " + c.strip() + " </s>")


def llama3(msgs, agp):
    # Meta Llama 3 prompt format
    out = "<|begin_of_text|>" + "".join(
        f"<|start_header_id|>{x['role']}<|end_header_id|>\n\n{x['content'].strip()}<|eot_id|>" for x in msgs)
    return out + ("<|start_header_id|>assistant<|end_header_id|>\n\n" if agp else "")


def mistral(msgs, agp):
    # Mistral-7B-Instruct v0.1 format: <s>[INST] user [/INST]answer</s>[INST] ...
    return alternating(
        msgs, lambda system: "<s>",
        lambda c, system: "[INST] " + (c if system is None else system + "\n\n" + c) + " [/INST]",
        lambda c: c + "</s>")


def alpaca(msgs, agp):
    # tatsu-lab/stanford_alpaca train.py PROMPT_DICT["prompt_no_input"] + output + eos
    return alternating(
        msgs, lambda system: system if system is not None else ALPACA_PREAMBLE,
        lambda c, system: "\n\n### Instruction:\n" + c + "\n\n### Response:",
        lambda c: c + "</s>")


def vicuna(msgs, agp):
    # lm-sys/FastChat conversation.py vicuna_v1.1, SeparatorStyle.ADD_COLON_TWO, sep=" ", sep2="</s>"
    system, turns = split_system(msgs)
    check_alternation(turns)
    seps = [" ", "</s>"]
    out = (system if system is not None else VICUNA_SYSTEM) + seps[0]
    for i, t in enumerate(turns):
        role = "USER" if t["role"] == "user" else "ASSISTANT"
        out += role + ": " + t["content"] + seps[i % 2]
    return out + ("ASSISTANT:" if agp else "")


def builtin_cases():
    cases = []
    for name, fn in [("chatml", chatml), ("llama2", llama2), ("llama3", llama3), ("mistral", mistral),
                     ("alpaca", alpaca), ("vicuna", vicuna)]:
        convs = list(CONVERSATIONS.items()) + [(f"random_{k:02d}", c) for k, c in enumerate(random_conversations(12, seed=11))]
        for conv_name, conv in convs:
            for agp in (False, True):
                try:
                    r = {"text": fn(conv, agp)}
                except ValueError as e:
                    r = {"error": str(e)}
                cases.append({"template": name, "conversation": conv_name, "messages": conv, "add_generation_prompt": agp, **r})
    return cases


def write_json(path, obj):
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(obj, f, ensure_ascii=False, indent=1)
        f.write("\n")
    os.replace(tmp, path)


if __name__ == "__main__":
    main()
