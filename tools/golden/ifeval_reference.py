#!/usr/bin/env python3
"""Reference IFEval results for the C# implementation's tests.

Writes tests/fixtures/ifeval/reference_results.jsonl: one line per (response set, prompt) with
  set, key, strict (bools), loose (bools)       -- IFEval strict/loose follow lists
  sentences                                      -- len(PunktSentenceTokenizer(english params).tokenize(response))
  capital_words                                  -- upper-case tokens of nltk.word_tokenize(response)
  words                                          -- len(RegexpTokenizer(r"\\w+").tokenize(response))
  lang, lang_prob                                -- langdetect.detect_langs(response)[0] with DetectorFactory.seed = 0
                                                    (lang null when langdetect raises "No features in text")
and tests/fixtures/ifeval/instruction_fuzz.jsonl: 150 seeded synthetic responses (markdown bullets, emphasis,
JSON fragments, postscripts, sections, titles, separators, quotes, case changes) with, for every one of the 834
instruction instances of input_data.jsonl in file order, "1"/"0" for strict check_following (field "strict").

This is an independent Python rendering of IFEval's published rules (google-research
instruction_following_eval: instructions.py, evaluation_lib.py), written for this repository, that runs
the *genuine* libraries the official checker uses: Python's `re` and `json`, python3-nltk 3.8 (Punkt built
from ../shared/testdata/nltk-punkt-english, RegexpTokenizer, NLTKWordTokenizer) and langdetect 1.0.9
(Debian python3-langdetect, seeded with 0). Regex semantics, JSON acceptance, sentence splitting and
language detection therefore come from the tools the field uses, not from our C# code.

Usage:
  apt-get download python3-langdetect && dpkg-deb -x python3-langdetect_*.deb /tmp/ld
  PYTHONPATH=/tmp/ld/usr/lib/python3/dist-packages /usr/bin/python3 tools/golden/ifeval_reference.py
"""
import collections
import json
import os
import random
import re

import langdetect
from langdetect import DetectorFactory
from nltk.tokenize import RegexpTokenizer
from nltk.tokenize.destructive import NLTKWordTokenizer
from nltk.tokenize.punkt import PunktParameters, PunktSentenceTokenizer

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SHARED = os.path.abspath(os.path.join(ROOT, "..", "shared", "testdata"))
OUT = os.path.join(ROOT, "tests", "fixtures", "ifeval", "reference_results.jsonl")
SETS = ["gpt4_20231107_145030", "contextfocus_m0", "contextfocus_m3", "contextfocus_cad_alpha1"]

DetectorFactory.seed = 0


def punkt():
    d = os.path.join(SHARED, "nltk-punkt-english")
    p = PunktParameters()
    lines = lambda f: [l.rstrip("\n") for l in open(os.path.join(d, f), encoding="utf-8") if l.rstrip("\n")]
    p.abbrev_types = set(lines("abbrev_types.txt"))
    p.sent_starters = set(lines("sentence_starters.txt"))
    p.collocations = set(tuple(l.split("\t")) for l in lines("collocations.tab"))
    for l in lines("ortho_context.tab"):
        w, f = l.split("\t")
        p.ortho_context[w] = int(f)
    return PunktSentenceTokenizer(p)


SENT = punkt()
TREEBANK = NLTKWordTokenizer()
WORDS = RegexpTokenizer(r"\w+")


def word_tokenize(text):
    return [t for s in SENT.tokenize(text) for t in TREEBANK.tokenize(s)]


def lang_is(text, lang):
    try:
        return langdetect.detect(text) == lang
    except langdetect.LangDetectException:
        return True


def check(iid, kw, value):
    """One instruction on one response, by the rule published for its id."""
    rel = lambda actual, relation, n: actual < n if relation == "less than" else actual >= n
    if iid == "keywords:existence":
        return all(re.search(k, value, flags=re.IGNORECASE) for k in kw["keywords"])
    if iid == "keywords:frequency":
        return rel(len(re.findall(kw["keyword"].strip(), value, flags=re.IGNORECASE)), kw["relation"], kw["frequency"])
    if iid == "keywords:forbidden_words":
        return not any(re.search(r"\b" + w + r"\b", value, flags=re.IGNORECASE) for w in kw["forbidden_words"])
    if iid == "keywords:letter_frequency":
        return rel(collections.Counter(value.lower())[kw["letter"].lower()], kw["let_relation"], kw["let_frequency"])
    if iid == "language:response_language":
        return lang_is(value, kw["language"])
    if iid == "length_constraints:number_sentences":
        return rel(len(SENT.tokenize(value)), kw["relation"], kw["num_sentences"])
    if iid == "length_constraints:number_paragraphs":
        parts = re.split(r"\s?\*\*\*\s?", value)
        n = len(parts)
        for i, p in enumerate(parts):
            if not p.strip():
                if i in (0, len(parts) - 1):
                    n -= 1
                else:
                    return False
        return n == kw["num_paragraphs"]
    if iid == "length_constraints:number_words":
        return rel(len(WORDS.tokenize(value)), kw["relation"], kw["num_words"])
    if iid == "length_constraints:nth_paragraph_first_word":
        parts = re.split(r"\n\n", value)
        n = sum(1 for p in parts if p.strip())
        nth = kw["nth_paragraph"]
        if nth > n:
            return False
        para = parts[nth - 1].strip()
        if not para:
            return False
        word = para.split()[0].strip().lstrip("'").lstrip('"')
        first = ""
        for ch in word:
            if ch in {".", ",", "?", "!", "'", '"'}:
                break
            first += ch.lower()
        return n == kw["num_paragraphs"] and first == kw["first_word"].lower()
    if iid == "detectable_content:number_placeholders":
        return len(re.findall(r"\[.*?\]", value)) >= kw["num_placeholders"]
    if iid == "detectable_content:postscript":
        marker = kw["postscript_marker"].strip()
        pat = {"P.P.S": r"\s*p\.\s?p\.\s?s.*$", "P.S.": r"\s*p\.\s?s\..*$"}.get(marker, r"\s*" + marker.lower() + r".*$")
        return bool(re.findall(pat, value.lower(), flags=re.MULTILINE))
    if iid == "detectable_format:number_bullet_lists":
        n = len(re.findall(r"^\s*\*[^\*].*$", value, flags=re.MULTILINE)) + len(re.findall(r"^\s*-.*$", value, flags=re.MULTILINE))
        return n == kw["num_bullets"]
    if iid == "detectable_format:constrained_response":
        v = value.strip()
        return any(o in v for o in ("My answer is yes.", "My answer is no.", "My answer is maybe."))
    if iid == "detectable_format:number_highlighted_sections":
        n = sum(1 for h in re.findall(r"\*[^\n\*]*\*", value) if h.strip("*").strip())
        n += sum(1 for h in re.findall(r"\*\*[^\n\*]*\*\*", value) if h[2:-2].strip())
        return n >= kw["num_highlights"]
    if iid == "detectable_format:multiple_sections":
        return len(re.split(r"\s?" + kw["section_spliter"].strip() + r"\s?\d+\s?", value)) - 1 >= kw["num_sections"]
    if iid == "detectable_format:json_format":
        v = value.strip()
        for p in ("```json", "```Json", "```JSON", "```"):
            v = v[len(p):] if v.startswith(p) else v
        v = (v[:-3] if v.endswith("```") else v).strip()
        try:
            json.loads(v)
        except ValueError:
            return False
        return True
    if iid == "detectable_format:title":
        return any(t.lstrip("<").rstrip(">").strip() for t in re.findall(r"<<[^\n]+>>", value))
    if iid == "combination:two_responses":
        parts, valid = value.split("******"), []
        for i, p in enumerate(parts):
            if not p.strip():
                if i not in (0, len(parts) - 1):
                    return False
            else:
                valid.append(p)
        return len(valid) == 2 and valid[0].strip() != valid[1].strip()
    if iid == "combination:repeat_prompt":
        return value.strip().lower().startswith(kw["prompt_to_repeat"].strip().lower())
    if iid == "startend:end_checker":
        return value.strip().strip('"').lower().endswith(kw["end_phrase"].strip().lower())
    if iid == "change_case:capital_word_frequency":
        n = sum(1 for w in word_tokenize(value) if w.isupper())
        return rel(n, kw["capital_relation"], kw["capital_frequency"])
    if iid == "change_case:english_capital":
        return value.isupper() and lang_is(value, "en")
    if iid == "change_case:english_lowercase":
        return value.islower() and lang_is(value, "en")
    if iid == "punctuation:no_comma":
        return not re.search(r"\,", value)
    if iid == "startend:quotation":
        v = value.strip()
        return len(v) > 1 and v[0] == '"' and v[-1] == '"'
    raise KeyError(iid)


def variants(response):
    r = response.split("\n")
    first, last, both = "\n".join(r[1:]).strip(), "\n".join(r[:-1]).strip(), "\n".join(r[1:-1]).strip()
    return [response, response.replace("*", ""), first, last, both,
            first.replace("*", ""), last.replace("*", ""), both.replace("*", "")]


FUZZ_PIECES = ["* item", "- item", "**bold**", "*em*", "* *", "***", "******", "```json", "```", "{\"a\": 1}", "[1, 2]",
               "{\"a\": 1,}", "NaN", "P.S. note", "p. p. s later", "P.P.S", "Section 1", "SECTION 2", "PARAGRAPH 3",
               "<<Title>>", "<< >>", "[name]", "[address]", "\"", "My answer is yes.", "my answer is no.",
               "Any other questions?", "Is there anything else I can help with?", "HELLO WORLD", "hello world",
               "The weather is nice today and the city is busy.", "Das Wetter ist heute schön.", "Mr. Smith left.",
               "Done.", "Why? Because!", "a, b, c", "#tag", "!!!", "\n", "\n\n", "  ", "\t"]


def concat_pieces(rng, pieces, max_pieces, separators, transform=lambda p, rng: p):
    """A random text: 1..max_pieces pieces, each transformed and followed by a random separator."""
    t = ""
    for _ in range(rng.randint(1, max_pieces)):
        t += transform(rng.choice(pieces), rng) + rng.choice(separators)
    return t


def fuzz_responses(count=150, seed=11):
    rng = random.Random(seed)
    case = lambda p, r: p.upper() if r.random() < 0.1 else p.lower() if r.random() < 0.1 else p
    return [concat_pieces(rng, FUZZ_PIECES, 30, [" ", "\n", "", " "], case) for _ in range(count)]


def main():
    inputs = [json.loads(l) for l in open(os.path.join(SHARED, "ifeval", "input_data.jsonl"), encoding="utf-8")]
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT + ".tmp", "w", encoding="utf-8", newline="\n") as out:
        for name in SETS:
            path = os.path.join(SHARED, "ifeval", "input_response_data_%s.jsonl" % name)
            responses = {}
            for l in open(path, encoding="utf-8"):
                d = json.loads(l)
                responses[d["prompt"]] = d["response"]
            for inp in inputs:
                resp = responses[inp["prompt"]]
                pairs = list(zip(inp["instruction_id_list"], inp["kwargs"]))
                strict = [bool(resp.strip() and check(i, k, resp)) for i, k in pairs]
                loose = [any(v.strip() and check(i, k, v) for v in variants(resp)) for i, k in pairs]
                try:
                    top = langdetect.detect_langs(resp)
                    lang, prob = (top[0].lang, top[0].prob) if top else ("unknown", 0.0)
                except langdetect.LangDetectException:
                    lang, prob = None, None
                out.write(json.dumps({
                    "set": name, "key": inp["key"], "strict": strict, "loose": loose,
                    "sentences": len(SENT.tokenize(resp)),
                    "capital_words": sum(1 for w in word_tokenize(resp) if w.isupper()),
                    "words": len(WORDS.tokenize(resp)), "lang": lang, "lang_prob": prob,
                }) + "\n")
    os.replace(OUT + ".tmp", OUT)
    print("wrote", OUT)
    pairs = [(i, k) for inp in inputs for i, k in zip(inp["instruction_id_list"], inp["kwargs"])]
    fuzz = os.path.join(os.path.dirname(OUT), "instruction_fuzz.jsonl")
    with open(fuzz, "w", encoding="utf-8", newline="\n") as out:
        for resp in fuzz_responses():
            bits = "".join("1" if resp.strip() and check(i, k, resp) else "0" for i, k in pairs)
            out.write(json.dumps({"response": resp, "strict": bits}) + "\n")
    print("wrote", fuzz)


if __name__ == "__main__":
    main()
