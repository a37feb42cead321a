#!/usr/bin/env python3
"""Writes small hand-built tokenizer.json files under tests/fixtures/tokenizers/synthetic/ that exercise the
components the real test tokenizers do not use; HF tokenizers (node, make_refs.js) then provides their reference
ids, so the C# side is checked against HF, not against itself.

Run: /usr/bin/python3 tools/golden/tokenizers_synthetic.py && (cd tools/golden/tokenizers-node && node make_refs.js)
  wordpiece.json   NFD + Lowercase + StripAccents, BertPreTokenizer, WordPiece, BertProcessing, WordPiece decoder
  wordpiece_ws.json  NFKC + Replace(regex) + Lowercase, Whitespace + Digits, RobertaProcessing, WordPiece+Strip decoders
  unigram.json     NFKC + Replace, Metaspace(prepend_scheme=first), Unigram, TemplateProcessing, Metaspace decoder
  bpe_suffix.json  Strip + Lowercase, WhitespaceSplit/Punctuation/Digits/Split behaviours, BPE with
                   continuing_subword_prefix + end_of_word_suffix + unk, BPEDecoder, added tokens with
                   lstrip/rstrip/single_word/normalized
  bytelevel_prefix.json  the trained byte-level BPE with ByteLevel(add_prefix_space) after a Split(MergedWithNext),
                   Whitespace-free; ByteLevel post-processor with trim_offsets
Vocabularies come from tests/fixtures/tokenizers/train_corpus.txt (deterministic).
"""
import collections, json, math, os, re, unicodedata

here = os.path.dirname(os.path.abspath(__file__))
fx = os.path.normpath(os.path.join(here, "..", "..", "tests", "fixtures", "tokenizers"))
out_dir = os.path.join(fx, "synthetic")
os.makedirs(out_dir, exist_ok=True)
lines = open(os.path.join(fx, "train_corpus.txt"), encoding="utf-8").read().split("\n")

def norm_bert(s):
    s = unicodedata.normalize("NFD", s).lower()
    return "".join(c for c in s if unicodedata.category(c) != "Mn")

words = collections.Counter(w for l in lines for w in re.findall(r"\w+", norm_bert(l)))
chars = sorted({c for l in lines for c in norm_bert(l) if not c.isspace()})

def added(i, content, special=True, **kw):
    d = {"id": i, "content": content, "single_word": False, "lstrip": False, "rstrip": False, "normalized": False, "special": special}
    d.update(kw)
    return d

def save(name, obj):
    with open(os.path.join(out_dir, name), "w", encoding="utf-8") as f:
        json.dump(obj, f, ensure_ascii=False, indent=1)

# --- WordPiece ---
vocab = {t: i for i, t in enumerate(["[PAD]", "[UNK]", "[CLS]", "[SEP]"])}
for c in chars:
    vocab.setdefault(c, len(vocab)); vocab.setdefault("##" + c, len(vocab))
for w, _ in words.most_common(250):
    vocab.setdefault(w, len(vocab))
for suf in ["ing", "ed", "er", "s", "ly", "tion", "est"]:
    vocab.setdefault("##" + suf, len(vocab))
save("wordpiece.json", {
    "version": "1.0", "truncation": None, "padding": None,
    "added_tokens": [added(i, t) for t, i in list(vocab.items())[:4]],
    "normalizer": {"type": "Sequence", "normalizers": [{"type": "NFD"}, {"type": "Lowercase"}, {"type": "StripAccents"}]},
    "pre_tokenizer": {"type": "BertPreTokenizer"},
    "post_processor": {"type": "BertProcessing", "sep": ["[SEP]", 3], "cls": ["[CLS]", 2]},
    "decoder": {"type": "WordPiece", "prefix": "##", "cleanup": True},
    "model": {"type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##", "max_input_chars_per_word": 12, "vocab": vocab},
})

# --- WordPiece behind Whitespace/Digits, with NFKC + regex Replace + Lowercase, RobertaProcessing ---
save("wordpiece_ws.json", {
    "version": "1.0", "truncation": None, "padding": None,
    "added_tokens": [added(i, t) for t, i in list(vocab.items())[:4]],
    "normalizer": {"type": "Sequence", "normalizers": [{"type": "NFKC"}, {"type": "Replace", "pattern": {"Regex": "\\s+"}, "content": " "}, {"type": "Lowercase"}]},
    "pre_tokenizer": {"type": "Sequence", "pretokenizers": [{"type": "Whitespace"}, {"type": "Digits", "individual_digits": False}]},
    "post_processor": {"type": "RobertaProcessing", "sep": ["[SEP]", 3], "cls": ["[CLS]", 2], "trim_offsets": True, "add_prefix_space": False},
    "decoder": {"type": "Sequence", "decoders": [{"type": "WordPiece", "prefix": "##", "cleanup": False}, {"type": "Strip", "content": " ", "start": 1, "stop": 1}]},
    "model": {"type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##", "max_input_chars_per_word": 100, "vocab": vocab},
})

# --- Unigram: pieces = chars, ▁-words and frequent substrings, score = log relative frequency ---
counts = collections.Counter()
for l in lines:
    t = "\u2581" + unicodedata.normalize("NFKC", l).replace(" ", "\u2581")
    for w in re.findall("\u2581?[^\u2581]+|\u2581", t):
        counts[w] += 1
        for n in (1, 2, 3):
            for i in range(len(w) - n + 1):
                counts[w[i:i + n]] += 1
pieces = [p for p, c in counts.most_common() if c >= 2 and p not in ("<unk>", "<s>", "</s>")][:1500]
total = sum(counts[p] for p in pieces)
uvocab = [["<unk>", 0.0], ["<s>", 0.0], ["</s>", 0.0]] + [[p, math.log(counts[p] / total)] for p in pieces]
save("unigram.json", {
    "version": "1.0", "truncation": None, "padding": None,
    "added_tokens": [added(0, "<unk>"), added(1, "<s>"), added(2, "</s>")],
    "normalizer": {"type": "Sequence", "normalizers": [{"type": "NFKC"}, {"type": "Replace", "pattern": {"String": "``"}, "content": "\""}]},
    "pre_tokenizer": {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "first", "split": True},
    "post_processor": {"type": "TemplateProcessing",
                       "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}, {"SpecialToken": {"id": "</s>", "type_id": 0}}],
                       "pair": [{"Sequence": {"id": "A", "type_id": 0}}, {"Sequence": {"id": "B", "type_id": 1}}],
                       "special_tokens": {"<s>": {"id": "<s>", "ids": [1], "tokens": ["<s>"]}, "</s>": {"id": "</s>", "ids": [2], "tokens": ["</s>"]}}},
    "decoder": {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "first", "split": True},
    "model": {"type": "Unigram", "unk_id": 0, "vocab": uvocab, "byte_fallback": False},
})

# --- BPE with continuing-subword prefix and end-of-word suffix, learnt here by plain BPE counting ---
wc = collections.Counter(w for l in lines for w in re.findall(r"[^\W\d_]+", l.lower()))
segs = {w: [w[0]] + ["##" + c for c in w[1:-1]] + ([("##" if len(w) > 1 else "") + w[-1] + "</w>"] if len(w) > 1 else []) for w in wc}
for w in segs:
    if len(w) == 1: segs[w] = [w + "</w>"]
bvocab = {"<unk>": 0, "[MASK]": 1, "<sep>": 2, "<X>": 3}
for s in segs.values():
    for t in s: bvocab.setdefault(t, len(bvocab))
merges = []
for _ in range(300):
    pc = collections.Counter()
    for w, s in segs.items():
        for a, b in zip(s, s[1:]): pc[(a, b)] += wc[w]
    if not pc: break
    (a, b), c = max(pc.items(), key=lambda kv: (kv[1], kv[0]))
    if c < 2: break
    m = a + b[2:]
    merges.append(f"{a} {b}"); bvocab.setdefault(m, len(bvocab))
    for w, s in segs.items():
        i, r = 0, []
        while i < len(s):
            if i + 1 < len(s) and s[i] == a and s[i + 1] == b: r.append(m); i += 2
            else: r.append(s[i]); i += 1
        segs[w] = r
for d in "0123456789": bvocab.setdefault(d + "</w>", len(bvocab)); bvocab.setdefault(d, len(bvocab))
save("bpe_suffix.json", {
    "version": "1.0", "truncation": None, "padding": None,
    "added_tokens": [added(0, "<unk>"), added(1, "[MASK]", lstrip=True), added(2, "<sep>", special=False, rstrip=True),
                     added(3, "<X>", special=False, normalized=True),
                     added(len(bvocab), "hello", special=False, single_word=True, normalized=True)],
    "normalizer": {"type": "Sequence", "normalizers": [{"type": "Strip", "strip_left": True, "strip_right": True}, {"type": "Lowercase"}]},
    "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
        {"type": "WhitespaceSplit"}, {"type": "Punctuation", "behavior": "Isolated"}, {"type": "Digits", "individual_digits": True},
        {"type": "Split", "pattern": {"String": "er"}, "behavior": "MergedWithPrevious", "invert": False},
        {"type": "Split", "pattern": {"Regex": "[aeiou]+"}, "behavior": "Contiguous", "invert": True}]},
    "post_processor": None,
    "decoder": {"type": "BPEDecoder", "suffix": "</w>"},
    "model": {"type": "BPE", "dropout": None, "unk_token": "<unk>", "continuing_subword_prefix": "##", "end_of_word_suffix": "</w>",
              "fuse_unk": True, "byte_fallback": False, "vocab": bvocab, "merges": merges},
})

# --- ByteLevel with add_prefix_space, on the trained byte-level BPE ---
t = json.load(open(os.path.join(fx, "trained", "tokenizer.json"), encoding="utf-8"))
t["pre_tokenizer"] = {"type": "Sequence", "pretokenizers": [
    {"type": "Split", "pattern": {"String": "\n"}, "behavior": "MergedWithNext", "invert": False},
    {"type": "Split", "pattern": {"Regex": "\\d+"}, "behavior": "Removed", "invert": False},
    {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True}]}
t["post_processor"] = {"type": "Sequence", "processors": [{"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True}, t["post_processor"]]}
save("bytelevel_prefix.json", t)
print("wrote", sorted(os.listdir(out_dir)))
