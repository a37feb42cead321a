#!/usr/bin/python3
"""Golden for the Self-Instruct instruction filters (issue 18).

Reads  tests/fixtures/synth/self_instruct_answers.json   the scripted endpoint answers to the instruction-generation
                                                          requests, in request order ({"text", "truncated"} each)
       ../shared/testdata/datasets/self-instruct/seed_tasks.jsonl   the released 175 seed tasks (the initial pool)
Writes tests/fixtures/synth/self_instruct_expected.json  every candidate in processing order with the decision
                                                          ("keep" or the reason) and its ROUGE-L max against the pool.

Rules, written here from the paper (Wang et al. 2023, §2.2 "Filtering and Postprocessing") and the authors' released
code (yizhongw/self-instruct, bootstrap_instructions.py post_process_gpt3_response), independently of the C#:
  * an answer cut at max_tokens contributes nothing;
  * split on "\\n<number>. ", collapse whitespace, str.capitalize();
  * <= 3 or > 150 whitespace words -> length; a blocked keyword as a whole word (any case) -> keyword;
    starts with "Write a program" -> write_a_program; first char in string.punctuation -> punctuation_start;
    first char not ASCII -> non_ascii_start;
  * ROUGE-L F-measure (rouge_score's rougeL: lower-case, non-alphanumerics to spaces, no stemming; LCS F with
    beta 1) against every instruction in the pool (seeds, then the instructions kept so far); kept only if the
    maximum is below 0.7 (the paper's "less than 0.7"), and then it joins the pool.
ROUGE comes from eval_text_metrics.py (our Python re-implementation of rouge_score; rouge_score itself is not
installable here). Run: /usr/bin/python3 tools/golden/synth_self_instruct.py
"""
import json, os, re, string, sys

sys.path.insert(0, os.path.dirname(__file__))
from eval_text_metrics import rouge_tokens, rouge_l  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
FIX = os.path.join(ROOT, "tests", "fixtures", "synth")
SEEDS = os.path.join(ROOT, "..", "shared", "testdata", "datasets", "self-instruct", "seed_tasks.jsonl")
if not os.path.exists(SEEDS):
    SEEDS = "/work/shared/testdata/datasets/self-instruct/seed_tasks.jsonl"
KEYWORDS = ["image", "images", "graph", "graphs", "picture", "pictures", "file", "files", "map", "maps", "draw", "plot", "go to"]


def split(text):
    # The prompt ends with "N." so the answer continues task N; accept an answer that repeats "N. " itself.
    body = "\n" + text.lstrip() if re.match(r"^\s*\d+\s?\.\s", text) else "\n0. " + text
    out = []
    for piece in re.split(r"\n\d+\s?\. ", body):
        piece = re.sub(r"\s+", " ", piece).strip().capitalize()
        if piece:
            out.append(piece)
    return out


def rule(inst):
    n = len(inst.split())
    if n <= 3 or n > 150:
        return "length"
    if any(re.search(r"\b({0})\b".format(re.escape(k)), inst, flags=re.IGNORECASE) for k in KEYWORDS):
        return "keyword"
    if inst.startswith("Write a program"):
        return "write_a_program"
    if inst[0] in string.punctuation:
        return "punctuation_start"
    if not inst[0].isascii():
        return "non_ascii_start"
    return None


def main():
    seeds = [json.loads(l)["instruction"] for l in open(SEEDS) if l.strip()]
    pool = [rouge_tokens(s, False) for s in seeds]
    answers = json.load(open(os.path.join(FIX, "self_instruct_answers.json")))
    out = []
    for a in answers:
        if a.get("truncated"):
            continue
        for inst in split(a["text"]):
            r = rule(inst)
            entry = {"instruction": inst}
            if r is None:
                toks = rouge_tokens(inst, False)
                best = max(rouge_l(p, toks)[2] for p in pool)
                entry["rouge_l_max"] = best
                if best >= 0.7:
                    r = "rouge_l"
                else:
                    pool.append(toks)
            entry["decision"] = r or "keep"
            out.append(entry)
    with open(os.path.join(FIX, "self_instruct_expected.json"), "w") as f:
        json.dump(out, f, indent=1)
    for e in out:
        print(f"{e['decision']:18} {e.get('rouge_l_max', float('nan')):.4f}  {e['instruction'][:90]}")


if __name__ == "__main__":
    main()
