#!/usr/bin/python3
"""Golden generator for `itune eval run --predictions` (issue 13).

Writes (under tests/fixtures/eval/run/):
  heldout.jsonl            alpaca records {id, instruction, input, output}: the text-metric corpus of
                           eval_text_metrics.py (first reference of each pair with a non-empty one)
  heldout_predictions.jsonl  {id, prediction}
  gsm8k.jsonl              GSM8K records {question, answer} with "#### n" answers (commas, negatives, decimals, $)
  gsm8k_predictions.jsonl  {id, prediction} (no ids in the data file: ids are the record positions)
  expected.jsonl           per id: em, f1, rouge1/2/L/Lsum, bleu (sentence); for gsm8k ids also answer, gsm8k,
                           gsm8k_strict, gsm8k_flexible; last lines: {"id":"corpus:heldout"|"corpus:gsm8k", corpus bleu}

Run with Debian's python3 (python3-nltk): /usr/bin/python3 tools/golden/eval_run_golden.py

Where each number comes from:
  * EM / F1 / ROUGE / BLEU: the functions of eval_text_metrics.py (SQuAD v1.1 normalisation and F1; rouge_score's
    definitions with NLTK's Porter stemmer; sacreBLEU 2.x checked there against nltk's BLEU on every sentence).
  * GSM8K: openai/grade-school-math `extract_answer` / `is_correct` (ANS_RE = r"#### (\\-?[0-9\\.\\,]+)", commas
    removed, "[invalid]" when absent), and lm-evaluation-harness gsm8k.yaml: RegexFilter "strict-match"
    (same regex, first match) and "flexible-extract" (r"(-?[$0-9.,]{2,})|(-?[0-9]+)", last match, first non-empty
    group), then exact_match with ignore_case and regexes_to_ignore [",", "\\$", "(?s).*#### ", "\\.$"] applied with
    re.sub to prediction and reference. All with Python's own `re`.
"""
import json, os, random, re, sys

sys.path.insert(0, os.path.dirname(__file__))
import eval_text_metrics as tm  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
OUT = os.path.join(ROOT, "tests", "fixtures", "eval", "run")

# ---------------------------------------------------------------- GSM8K rules (official code, restated)
ANS_RE = re.compile(r"#### (\-?[0-9\.\,]+)")
INVALID_ANS = "[invalid]"


def extract_answer(completion):
    match = ANS_RE.search(completion)
    if match:
        match_str = match.group(1).strip()
        match_str = match_str.replace(",", "")
        return match_str
    return INVALID_ANS


def regex_filter(resp, pattern, group_select):
    match = re.compile(pattern).findall(resp)
    if match:
        match = match[group_select]
        if isinstance(match, tuple):
            match = [m for m in match if m]
            match = match[0] if match else INVALID_ANS
        return match.strip()
    return INVALID_ANS


IGNORE = [",", "\\$", "(?s).*#### ", "\\.$"]


def harness_exact(pred, ref):
    for s in IGNORE:
        pred = re.sub(s, "", pred)
        ref = re.sub(s, "", ref)
    return pred.lower() == ref.lower()


GSM = [
    ("Tom has 3 apples and buys 4. How many?", "He has 3 + 4 = <<3+4=7>>7 apples.\n#### 7",
     ["#### 7", "The answer is 7.", "7", "3 + 4 = 7 apples\n#### 7.", "#### 8", "I think 07", "seven"]),
    ("A car costs $12,500 and a bike $500. Total?", "12,500 + 500 = 13,000\n#### 13,000",
     ["#### 13,000", "#### 13000", "The total is $13,000.", "#### $13,000", "13,000.00", "It is 13000\n#### 13,000.5"]),
    ("The temperature drops 5 degrees from 2. Now?", "2 - 5 = -3\n#### -3",
     ["#### -3", "-3", "The answer is - 3", "#### 3", "minus 3 degrees: -3."]),
    ("Half of 7?", "7 / 2 = 3.5\n#### 3.5",
     ["#### 3.5", "3.50", "#### 3.50", "The answer is 3.5.", "3.5 liters, i.e. 35 dl"]),
    ("How many legs do 2 spiders have?", "2 * 8 = 16\n#### 16",
     ["2 spiders have 16 legs.\n#### 16", "####16", "#### 16\n#### 17", "16\n\n", "", "Answer: 1,6"]),
]


def main():
    os.makedirs(OUT, exist_ok=True)
    rng = random.Random(13)
    pairs = tm.HAND + tm.generated(random.Random(20261121), 240 - len(tm.HAND))
    heldout, preds, expected = [], [], []
    stats_total = [0] * 10
    for idx, (pred, refs) in enumerate(pairs):
        ref = refs[0]
        if not ref.strip():
            continue  # the data pipeline refuses an empty output
        pid = f"q{idx:03d}"
        heldout.append({"id": pid, "instruction": f"Answer item {idx}.", "input": "", "output": ref})
        preds.append({"id": pid, "prediction": pred})
        stats, h, rs = tm.seg_stats(pred, [ref])
        stats_total = [a + b for a, b in zip(stats_total, stats)]
        rec = {"id": pid, "em": tm.squad_normalize(pred) == tm.squad_normalize(ref), "f1": tm.squad_f1(pred, ref),
               "bleu": tm.bleu_from(stats, True)}
        rec.update(tm.rouge_multi([ref], pred, False))
        expected.append(rec)
    expected_corpus = [{"id": "corpus:heldout", "bleu": tm.bleu_from(stats_total, False)}]

    gsm, gsm_preds = [], []
    stats_total = [0] * 10
    k = 0
    for question, answer, candidates in GSM:
        for pred in candidates:
            gsm.append({"question": question, "answer": answer})
            gsm_preds.append({"id": str(k), "prediction": pred})
            stats, _, _ = tm.seg_stats(pred, [answer])
            stats_total = [a + b for a, b in zip(stats_total, stats)]
            gold = extract_answer(answer)
            assert gold != INVALID_ANS
            rec = {"id": str(k), "em": tm.squad_normalize(pred) == tm.squad_normalize(answer),
                   "f1": tm.squad_f1(pred, answer), "bleu": tm.bleu_from(stats, True),
                   "answer": extract_answer(pred), "gsm8k": extract_answer(pred) == gold,
                   "gsm8k_strict": harness_exact(regex_filter(pred, r"#### (\-?[0-9\.\,]+)", 0), answer),
                   "gsm8k_flexible": harness_exact(regex_filter(pred, r"(-?[$0-9.,]{2,})|(-?[0-9]+)", -1), answer)}
            rec.update(tm.rouge_multi([answer], pred, False))
            expected.append(rec)
            k += 1
    expected_corpus.append({"id": "corpus:gsm8k", "bleu": tm.bleu_from(stats_total, False)})
    rng.shuffle(gsm_preds)  # matched by id, not by order

    def dump(name, rows):
        with open(os.path.join(OUT, name), "w", encoding="utf-8") as f:
            for r in rows:
                f.write(json.dumps(r, ensure_ascii=False) + "\n")
    dump("heldout.jsonl", heldout)
    dump("heldout_predictions.jsonl", preds)
    dump("gsm8k.jsonl", gsm)
    dump("gsm8k_predictions.jsonl", gsm_preds)
    dump("expected.jsonl", expected + expected_corpus)
    print(f"wrote {len(heldout)} held-out and {len(gsm)} gsm8k examples to {OUT}")


if __name__ == "__main__":
    main()
