#!/usr/bin/env python3
"""Small goldens for the IFEval text tools, from the genuine Python libraries.

Writes, under tests/fixtures/ifeval/:
  punkt_cases.jsonl      {"text", "sentences", "words"}: PunktSentenceTokenizer (NLTK English parameters from
                         ../shared/testdata/nltk-punkt-english) .tokenize(text) and nltk's word_tokenize tokens
  python_random.json     CPython random.Random(seed): getrandbits(32), random(), gauss(0,1), randrange(n) streams
  langdetect_cases.jsonl {"text", "langs": [[lang, prob]...] or null}: langdetect.detect_langs with seed 0
  pyjson_cases.jsonl     {"text", "dumps", "loads_ok"}: json.dumps(text) and whether json.loads(text) succeeds
  official_output_head.jsonl  the first 25 prompts of the GPT-4 set, strict then loose, written as evaluation_lib's
                         write_outputs does (json.dumps of the OutputExample fields in dir() order)
  punkt_fuzz.jsonl       600 random concatenations of abbreviations, initials, numbers, ellipses, quotes, brackets,
                         contractions and line breaks (seeded), with nltk's sentences and word_tokenize tokens

Usage: PYTHONPATH=/tmp/ld/usr/lib/python3/dist-packages /usr/bin/python3 tools/golden/ifeval_text_goldens.py
(langdetect from `apt-get download python3-langdetect`, unpacked with dpkg-deb -x).
"""
import json
import os
import random

import langdetect
from langdetect import DetectorFactory

from ifeval_reference import ROOT, SENT, SHARED, check, concat_pieces, variants, word_tokenize

OUT = os.path.join(ROOT, "tests", "fixtures", "ifeval")

PUNKT_TEXTS = [
    "", "   ", "Hello.", "Hello world", "Mr. Smith went to Washington. He arrived at 5 p.m. on Monday.",
    "The U.S.A. is large. It has 50 states.", "I live in the U.S. But I was born elsewhere.",
    "Dr. J. S. Bach composed music. Prof. Brown agreed.", "See e.g. the appendix. Also i.e. this one.",
    "Pi is 3.14159. That is all.", "1. First item\n2. Second item\n3. Third item.",
    "He said \"Stop.\" Then he left.", "(Sent1.) Sent2.", "Wait... What? No! Really?! Yes.",
    "Hmmm...\n\nI'm thinking. Maybe...", "It ended in 1999. The next year was 2000.",
    "Visit www.example.com. Or mail a@b.org. Thanks.", "He was born on Jan. 5 in St. Louis. Mo. is a state.",
    "The cost is $5.99. Cheap!", "First paragraph.\n\nSecond paragraph.\n\n\nThird.",
    "No terminal punctuation\nand a line break", "Ellipsis at end...", "Quote: 'Done.' Next.",
    "Numbers like 1.5 and 2.25 are decimals. They are fine.", "A sentence -- with dashes. Another.",
    "Café au lait. Naïve résumé! Über alles?", "Is it 5 p.m. yet? It is 6 P.M. now.",
    "The 3rd. The 4th. The 5th.", "Section 1. Intro. Section 2. Body.", "He said: yes. She said: no.",
    "Items: a. apples b. bananas c. cherries.", "OK. OK! OK?", "* Point one.\n* Point two.\n* Point three.",
    "**Bold.** Then normal. *Italic.* End.", "The end.\"  Then more.", "Sentence one.Sentence two.",
    "Gen. Patton led. Col. Mustard followed. Lt. Dan too.", "Inc. is a suffix. Ltd. too. Co. also.",
    "He left at approx. 3 o'clock. Then slept.", "Ph.D. students study. They work hard.",
    "This is sentence one.   This is sentence two.\tAnd three.", "Trailing spaces.   ",
    "emoji 😀 here. Next 🎉 one!", "日本語の文です。これは二番目です。", "Зачем? Потому что. Да.",
    "WHAT IS THIS. I DON'T KNOW. CAN'T SAY.", "They're gonna wanna go. Let's gimme that.",
    "\"Quoted sentence.\" \"Another quoted one.\"", "Price: 1,000.00 USD. Done.",
    "See Fig. 3. It shows results. See Tab. 2.", "Vol. 3, no. 4, pp. 5-6. Published.",
    "a. b. c. d.", "The U.K. and the E.U. agreed.", "At 10 a.m. we met. At noon we ate.",
    "Hello!!! World??? Yes...", "end with abbreviation etc.", "Mrs. Jones. Ms. Lee. Mr. Kim.",
]

LANG_TEXTS = [
    "This is a simple English sentence about the weather and the city.",
    "Ceci est une phrase en français sur le temps qu'il fait aujourd'hui.",
    "Dies ist ein deutscher Satz über das Wetter und die Stadt.",
    "Esta es una frase en español sobre el clima de la ciudad.",
    "Questa è una frase in italiano sul tempo che fa oggi in città.",
    "Esta é uma frase em português sobre o tempo na cidade hoje.",
    "Это предложение на русском языке о погоде в городе.",
    "これは日本語の文です。今日の天気について話しています。",
    "이것은 한국어 문장입니다. 오늘 날씨에 대해 이야기합니다.",
    "यह हिंदी में एक वाक्य है जो मौसम के बारे में है।",
    "هذه جملة باللغة العربية عن الطقس في المدينة.",
    "Đây là một câu tiếng Việt về thời tiết hôm nay.",
    "Hii ni sentensi ya Kiswahili kuhusu hali ya hewa leo.",
    "Tämä on suomenkielinen lause säästä ja kaupungista.",
    "ਇਹ ਪੰਜਾਬੀ ਵਿੱਚ ਇੱਕ ਵਾਕ ਹੈ।", "ಇದು ಕನ್ನಡದಲ್ಲಿ ಒಂದು ವಾಕ್ಯ.", "இது தமிழில் ஒரு வாக்கியம்.",
    "THIS TEXT IS ALL IN CAPITAL LETTERS AND SHOULD STILL BE DETECTED.", "ok", "12345 !!! ???", "",
    "Visit https://example.com/page?x=1 or mail someone@example.org for details about the project.",
    "Mixed text: hello world bonjour le monde hallo Welt.",
]

JSON_TEXTS = [
    "", "{}", "[]", "{\"a\": 1}", "{\"a\": 1,}", "[1, 2, 3]", "[1, 2,]", "NaN", "-Infinity", "Infinity",
    "{\"a\": NaN}", "\"string\"", "'single'", "1e5", "1e", "01", "-0", "0.5", ".5", "5.", "true", "True",
    "null", "None", "{\"a\": \"line\nbreak\"}", "{\"a\": \"tab\\tok\"}", "{\"a\": \"\\u12\"}", "{\"a\": \"\\ud800\"}",
    " {\"a\": [1, {\"b\": null}]} ", "{\"a\": 1} {\"b\": 2}", "[1 2]", "{\"a\" 1}", "{a: 1}", "\ufeff{}",
    "{\"k\": \"é\"}", "[\"\\/\"]", "[\"\\x\"]", "\u00a0{}", "{\"a\":1}\n", "-", "--1", "1.0e+10", "[[[[[]]]]]",
]

DUMPS_TEXTS = ["plain", "quote \" and backslash \\", "new\nline\ttab\r\b\f", "ctrl \x01\x1f\x7f",
               "é ü ß 日本 😀", "\u2028\u2029", "</script>", ""]


FUZZ_PIECES = ["Mr.", "Dr.", "U.S.", "e.g.", "i.e.", "etc.", "J.", "A.", "3.", "1999.", "3.14", "...", "..", ". . .", "?",
               "!", "?!", "\"", "'", "(", ")", "[", "]", "--", "-", ",", ";", ":", "*", "**", "#", "@", "the", "The", "He",
               "he", "It", "I", "I'm", "don't", "CAN'T", "cannot", "gonna", "St.", "Inc.", "Co.", "p.m.", "No.", "vol.",
               "Fig.", "\n", "\n\n", "  ", "\t", "word", "Word", "WORD", "café", "日本", "😀", "1,000", "$5", "50%",
               "a.b.c.", "x", "Y.", "'s", "n't", "“", "”", "‘", "’", "«", "»", "<<", ">>", "https://a.b/c.", "me@x.org",
               "''", "``", "{", "}", "&", "...)", ".)", ".\"", "!\"", "?\""]


def fuzz_texts(count=600, seed=7):
    rng = random.Random(seed)
    return [concat_pieces(rng, FUZZ_PIECES, 25, [" ", " ", " ", "", "\n"]) for _ in range(count)]


def official_output_head(n=25):
    inputs = [json.loads(l) for l in open(os.path.join(SHARED, "ifeval", "input_data.jsonl"), encoding="utf-8")][:n]
    responses = {}
    for l in open(os.path.join(SHARED, "ifeval", "input_response_data_gpt4_20231107_145030.jsonl"), encoding="utf-8"):
        d = json.loads(l)
        responses[d["prompt"]] = d["response"]
    lines = []
    for mode in ("strict", "loose"):
        for inp in inputs:
            r = responses[inp["prompt"]]
            pairs = list(zip(inp["instruction_id_list"], inp["kwargs"]))
            if mode == "strict":
                follows = [bool(r.strip() and check(i, k, r)) for i, k in pairs]
            else:
                follows = [any(v.strip() and check(i, k, v) for v in variants(r)) for i, k in pairs]
            o = {"instruction_id_list": inp["instruction_id_list"], "prompt": inp["prompt"], "response": r,
                 "follow_all_instructions": all(follows), "follow_instruction_list": follows}
            lines.append(json.dumps({name: o[name] for name in sorted(o)}))
    return lines


def main():
    with open(os.path.join(OUT, "official_output_head.jsonl"), "w", encoding="utf-8", newline="\n") as f:
        f.write("\n".join(official_output_head()) + "\n")
    with open(os.path.join(OUT, "punkt_fuzz.jsonl"), "w", encoding="utf-8", newline="\n") as f:
        for t in fuzz_texts():
            f.write(json.dumps({"text": t, "sentences": SENT.tokenize(t), "words": word_tokenize(t)}) + "\n")
    with open(os.path.join(OUT, "punkt_cases.jsonl"), "w", encoding="utf-8", newline="\n") as f:
        for t in PUNKT_TEXTS:
            f.write(json.dumps({"text": t, "sentences": SENT.tokenize(t), "words": word_tokenize(t)}) + "\n")

    streams = {}
    for seed in (0, 1, 12345, 2**40 + 7):
        r = random.Random(seed)
        bits = [r.getrandbits(32) for _ in range(5)]
        r = random.Random(seed)
        rnd = [r.random() for _ in range(5)]
        r = random.Random(seed)
        gauss = [r.gauss(0.0, 1.0) for _ in range(5)]
        r = random.Random(seed)
        below = [r.randrange(n) for n in (1, 2, 3, 7, 100, 1000, 65537, 10**9)]
        streams[str(seed)] = {"getrandbits32": bits, "random": rnd, "gauss": gauss,
                              "randbelow_n": [1, 2, 3, 7, 100, 1000, 65537, 10**9], "randbelow": below}
    with open(os.path.join(OUT, "python_random.json"), "w", encoding="utf-8", newline="\n") as f:
        json.dump(streams, f, indent=1)
        f.write("\n")

    DetectorFactory.seed = 0
    with open(os.path.join(OUT, "langdetect_cases.jsonl"), "w", encoding="utf-8", newline="\n") as f:
        for t in LANG_TEXTS:
            try:
                langs = [[l.lang, l.prob] for l in langdetect.detect_langs(t)]
            except langdetect.LangDetectException:
                langs = None
            f.write(json.dumps({"text": t, "langs": langs}) + "\n")

    with open(os.path.join(OUT, "pyjson_cases.jsonl"), "w", encoding="utf-8", newline="\n") as f:
        for t in JSON_TEXTS + DUMPS_TEXTS:
            try:
                json.loads(t)
                ok = True
            except ValueError:
                ok = False
            f.write(json.dumps({"text": t, "dumps": json.dumps(t), "loads_ok": ok}) + "\n")
    print("wrote goldens to", OUT)


if __name__ == "__main__":
    main()
