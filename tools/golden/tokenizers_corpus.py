#!/usr/bin/env python3
"""Writes tests/fixtures/tokenizers/corpus.jsonl: the >= 300 test strings every tokenizer reference is made from.

Run: /usr/bin/python3 tools/golden/tokenizers_corpus.py
One JSON object per line: {"text": "..."}. Deterministic (fixed seed). Lone surrogates are kept as \\udXXX
escapes in the JSON; the references (node tokenizers) see them as invalid UTF-16 and replace them with U+FFFD.
"""
import json, os, random

rng = random.Random(1234)
out = []
add = out.append

# --- hand-written cases, one per behaviour worth pinning ---
fixed = [
    "Hello world", "Hello, world!", "hello world", " Hello world", "Hello world ", "  Hello  world  ",
    "", " ", "  ", "\t", "\n", "\n\n", "\r\n", " \n ", "a\n\nb", "a \n b", "a\t\tb", "a   b", "a    \n\tb",
    "The quick brown fox jumps over the lazy dog.",
    "I'm sure you're right, they've said we'll go and he'd agree; it's John's.",
    "I'M SURE YOU'RE RIGHT, THEY'VE SAID WE'LL GO AND HE'D AGREE; IT'S JOHN'S.",
    "DON'T STOP: 'S 'T 'RE 'VE 'M 'LL 'D 'x", "it\u2019s curly", "'ſ long s", "''''", "'",
    "1234567890", "12345678901234567890123456789012345678901234567890", "3.14159 2,718 1e-9 0x1F -42",
    "Version 1.2.3-beta+build.45 on 2024-01-31T12:34:56Z", "phone +1 (555) 123-4567",
    "def foo(x):\n    return x ** 2  # square\n", "for (int i = 0; i < n; ++i) { sum += a[i]; }",
    "    indented four\n\tindented tab\n        eight", "if x:\n\n\n    pass\n",
    "SELECT * FROM users WHERE id = 42 AND name LIKE '%bob%';", "<div class=\"a\">Hi &amp; bye</div>",
    "{\"key\": [1, 2, 3], \"nested\": {\"a\": null}}", "https://example.com/path?q=1&r=two#frag",
    "C:\\Users\\name\\file.txt", "email@example.org", "#hashtag @mention $100 50% a_b-c",
    "café naïve résumé façade jalapeño Ærøskøbing Straße", "ÀÉÎÕÜ àéîõü ÇÑ", "e\u0301 combining acute",
    "A\u030a vs \u00c5 vs \u212b", "ﬁ ligature ① ² ½ Ⅻ ｆｕｌｌｗｉｄｔｈ",
    "Привет, мир! Как дела?", "ПРИВЕТ МИР", "Γειά σου Κόσμε! Ελληνικά", "ΑΒΓΔ αβγδ",
    "你好，世界！", "日本語のテキストです。カタカナ、ひらがな。", "한국어 문장입니다.", "中文 English 混合 text",
    "مرحبا بالعالم", "السلام عليكم ورحمة الله", "नमस्ते दुनिया", "हिन्दी में वाक्य।", "שלום עולם", "สวัสดีชาวโลก",
    "😀", "😀😃😄", "👍🏽", "👨\u200d👩\u200d👧\u200d👦 family", "🏳️\u200d🌈 flag", "👩🏿\u200d💻 coder", "🇫🇷🇯🇵",
    "emoji😀inside", "a😀b", " 😀 ", "❤️ heart", "✓ ✗ → ← ∑ ∫ ≤ ≥", "𝐀𝐁𝐂 math bold", "𠀀 ext-b", "a𝐀b",
    "<s>", "</s>", "<unk>", "<s> hello </s>", "hello<s>world", "<|endoftext|>", "text<|endoftext|>more",
    " <|endoftext|> ", "<|begin_of_text|>hi<|end_of_text|>", "<|im_start|>user\nhi<|im_end|>\n",
    "<|user|>\nhi<|end|>\n<|assistant|>", "<|endoftext|><|endoftext|>", "<|endoftext", "endoftext|>",
    "<|reserved_special_token_5|>", "<tool_call>{}</tool_call>", "<|fim_prefix|>a<|fim_suffix|>b<|fim_middle|>",
    "< s >", "<S>", "<<s>>", "[INST] hi [/INST]",
    "\ud800", "a\ud800b", "\udc00x", "x\udfff", "\ud83d", "ok \ud83d\ude00 \ude00\ud83d", "\ufffd replacement",
    "\u00a0nbsp\u00a0", "zero\u200bwidth", "\u3000ideographic space", "\u2028line sep\u2029", "\x0b\x0c\x85",
    "tab\tsep\tvalues", "trailing spaces   ", "   leading spaces", "\n\nleading newlines", "trailing newlines\n\n",
    "MiXeD CaSe WoRdS", "snake_case_identifier camelCaseIdentifier PascalCase", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    "!!!???...,,,;;;", "-- -- --", "... …", "\u0000 nul \u0001", "\x7f del",
]
for s in fixed: add(s)

# --- generated cases in every category, so the corpus passes 300 ---
words = "the of and to in is was for on that with as by at from this be are it an or have not which".split()
cyr = "мир дом книга язык время человек работа вопрос".split()
greek = "λόγος κόσμος άνθρωπος ημέρα θάλασσα".split()
cjk = ["数据", "模型", "训练", "東京", "大学", "コンピュータ", "사람"]
arabic = ["كتاب", "مدرسة", "بيت", "قلم"]
deva = ["भारत", "पानी", "किताब", "विद्यालय"]
emoji = ["😀", "👍🏻", "👍🏿", "👩\u200d🔬", "🧑\u200d🤝\u200d🧑", "🎉", "🔥", "🇺🇸"]
accented = ["élève", "über", "ñandú", "crème", "øre", "Łódź", "Škoda", "İstanbul"]
specials = ["<s>", "</s>", "<unk>", "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|begin_of_text|>", "<|end|>", "<|user|>"]
spaces = [" ", "  ", "   ", "\t", "\n", "\r\n", " \t ", "\n\n\n", "    "]
pools = [words, cyr, greek, cjk, arabic, deva, emoji, accented, specials]

for i in range(230):
    n = rng.randint(1, 14)
    parts = []
    for _ in range(n):
        pool = rng.choice(pools)
        tok = rng.choice(pool)
        r = rng.random()
        if r < 0.1: tok = tok.upper()
        elif r < 0.2: tok = str(rng.randint(0, 10 ** rng.randint(1, 12)))
        elif r < 0.25: tok = rng.choice(["'s", "'T", "'LL", "'re", "'Ve", "'D"]) + tok
        parts.append(tok)
        parts.append(rng.choice(spaces) if rng.random() < 0.3 else " ")
    s = "".join(parts)
    if rng.random() < 0.2: s = " " + s
    if rng.random() < 0.2: s = s.rstrip()
    add(s)

# a few longer paragraphs (merges across long words and runs)
para = ("In 2023, researchers trained models on 1,000,000,000 tokens. They said: \"It's working!\" "
        "Ça marche très bien — вполне хорошо — 非常好 — बहुत अच्छा 👍🏽.\n\n")
for k in range(1, 6):
    add(para * k)
add(" " * 40 + "x" + "\t" * 10 + "\n" * 7)
add("9" * 200)

assert len(out) >= 300, len(out)
path = os.path.join(os.path.dirname(__file__), "..", "..", "tests", "fixtures", "tokenizers", "corpus.jsonl")
with open(path, "w", encoding="utf-8") as f:
    for s in out:
        f.write(json.dumps({"text": s}, ensure_ascii=True) + "\n")
print(len(out), "strings ->", os.path.normpath(path))

# train_corpus.txt: the corpus strings that fit on one line, the input of the train-tokenizer fixture
# (tests/fixtures/tokenizers/trained/, made by `itune train-tokenizer --input … --vocab-size 600`; see
# tools/golden/tokenizers-node/make_refs.js --check-trained for its reference).
train = os.path.join(os.path.dirname(path), "train_corpus.txt")
with open(train, "w", encoding="utf-8", newline="\n") as f:
    for s in out:
        if any(c in s for c in "\n\r\x0b\x0c\x85\u2028\u2029") or any(0xD800 <= ord(c) <= 0xDFFF for c in s):
            continue
        f.write(s + "\n")
