#!/usr/bin/env python3
"""Writes tests/fixtures/tokenizers/ref_spm_llama2.jsonl and ref_spm_t5.jsonl from python3-sentencepiece (apt).

Run: /usr/bin/python3 tools/golden/tokenizers_spm.py
Inputs: tests/fixtures/tokenizers/corpus.jsonl and ../shared/testdata/tokenizers/{llama2/tokenizer.model,
spm-unigram-t5/spiece.model}. Python strings cannot carry lone surrogates into sentencepiece, so they are replaced
by U+FFFD first (what the node reference does for tokenizer.json; InstructTune does the same for both formats).
Each line: ids (no special tokens), ids_special (BOS prepended when the model has one, else EOS appended, as
transformers' LlamaTokenizer / T5Tokenizer do), decoded_skip = sp.decode(ids_special) (control pieces dropped),
decoded = the same but with control pieces written as their piece text (transformers' slow tokenizers).
"""
import json, os, re
import sentencepiece as spm

here = os.path.dirname(os.path.abspath(__file__))
root = os.path.normpath(os.path.join(here, "..", ".."))
shared = os.path.normpath(os.path.join(root, "..", "shared", "testdata", "tokenizers"))
fixtures = os.path.join(root, "tests", "fixtures", "tokenizers")

texts = [json.loads(l)["text"] for l in open(os.path.join(fixtures, "corpus.jsonl"), encoding="utf-8")]
texts = [re.sub("[\ud800-\udfff]", "\ufffd", t.encode("utf-16", "surrogatepass").decode("utf-16", "replace")) for t in texts]

def decode_keep(sp, ids):
    out, run = [], []
    for i in ids:
        if sp.is_control(i):
            out.append(sp.decode(run)); run = []
            out.append(sp.id_to_piece(i))
        else:
            run.append(i)
    out.append(sp.decode(run))
    return "".join(out)

for name, rel in [("llama2", "llama2/tokenizer.model"), ("t5", "spm-unigram-t5/spiece.model")]:
    sp = spm.SentencePieceProcessor(model_file=os.path.join(shared, rel))
    path = os.path.join(fixtures, f"ref_spm_{name}.jsonl")
    with open(path, "w", encoding="utf-8") as f:
        for t in texts:
            ids = sp.encode(t)
            special = [sp.bos_id()] + ids if sp.bos_id() >= 0 else ids + [sp.eos_id()]
            f.write(json.dumps({"ids": ids, "ids_special": special, "decoded": decode_keep(sp, special),
                                "decoded_skip": sp.decode(special)}, ensure_ascii=True) + "\n")
    print(name, "->", path)
