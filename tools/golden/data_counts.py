#!/usr/bin/env python3
"""Independent record counts for every dataset in ../shared/testdata/datasets.

Writes: tests/fixtures/data/dataset_counts.json

For each (path, format) it counts, with Python's json module and plain rules written here (not our C# code):
records read, records kept, and rejections by reason, using the validation rules of issue 5:
missing/wrong-typed field, empty output (whitespace only), empty instruction, no assistant turn, unknown role,
GSM8K answer without '####'. Self-Instruct yields one record per instance; SNI one per instance.
"""
import glob, json, os, sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DATA = os.path.normpath(os.path.join(ROOT, "..", "shared", "testdata", "datasets"))
ROLES = {"system", "human", "user", "gpt", "assistant", "bot", "model", "chatgpt", "function_call",
         "observation", "tool", "function", "ipython"}
ASSISTANT = {"gpt", "assistant", "bot", "model", "chatgpt", "function_call"}


def records(path):
    with open(path, encoding="utf-8") as f:
        text = f.read()
    if text.lstrip().startswith("["):
        return json.loads(text)
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def blank(s):
    return not isinstance(s, str) or s.strip() == ""


def check(fmt, r):
    """Returns (records produced, reason or None)."""
    if fmt == "alpaca":
        if blank(r.get("instruction")): return 0, "empty_instruction"
        if blank(r.get("output")): return 0, "empty_output"
        return 1, None
    if fmt == "dolly":
        if blank(r.get("response")): return 0, "empty_output"
        return 1, None
    if fmt == "gsm8k":
        if blank(r.get("answer")): return 0, "empty_output"
        if "####" not in r["answer"]: return 0, "no_final_answer"
        return 1, None
    if fmt in ("sharegpt", "messages"):
        turns = r["conversations"] if fmt == "sharegpt" else r["messages"]
        rk, ck = ("from", "value") if fmt == "sharegpt" else ("role", "content")
        for t in turns:
            if t[rk].lower() not in ROLES: return 0, "unknown_role"
            if t[rk].lower() in ASSISTANT and blank(t[ck]): return 0, "empty_output"
        if not any(t[rk].lower() in ASSISTANT for t in turns): return 0, "no_assistant_turn"
        return 1, None
    if fmt == "self-instruct":
        if any(blank(i.get("output")) for i in r["instances"]): return 0, "empty_output"
        return len(r["instances"]), None
    raise ValueError(fmt)


def main():
    out = {}
    plain = [("alpaca/alpaca_5000.json", "alpaca"), ("dolly-15k/databricks-dolly-15k.head70.jsonl", "dolly"),
             ("gsm8k/train.jsonl", "gsm8k"), ("gsm8k/test.jsonl", "gsm8k"), ("gsm8k/test_socratic.jsonl", "gsm8k"),
             ("llamafactory-demo/alpaca_en_demo.json", "alpaca"), ("llamafactory-demo/alpaca_zh_demo.json", "alpaca"),
             ("llamafactory-demo/identity.json", "alpaca"), ("llamafactory-demo/glaive_toolcall_en_demo.json", "sharegpt"),
             ("llamafactory-demo/kto_en_demo.json", "messages"), ("openai-messages/toy_chat_fine_tuning.jsonl", "messages"),
             ("self-instruct/seed_tasks.jsonl", "self-instruct"), ("self-instruct/user_oriented_instructions.jsonl", "self-instruct"),
             ("sharegpt-fastchat/dummy_conversation.json", "sharegpt")]
    for rel, fmt in plain:
        read = kept = 0
        reasons = {}
        for r in records(os.path.join(DATA, rel)):
            n, why = check(fmt, r)
            read += max(n, 1)
            kept += n
            if why: reasons[why] = reasons.get(why, 0) + 1
        out[rel] = {"format": fmt, "read": read, "kept": kept, "rejected_by_reason": reasons}
    for path in sorted(glob.glob(os.path.join(DATA, "super-natural-instructions", "tasks*", "*.json"))):
        with open(path, encoding="utf-8") as f:
            task = json.load(f)
        inst = task["Instances"]
        empty = sum(1 for i in inst if blank(i["output"] if isinstance(i["output"], str) else (i["output"] or [""])[0]))
        rel = os.path.relpath(path, DATA)
        out[rel] = {"format": "sni", "read": len(inst), "kept": len(inst) - empty,
                    "rejected_by_reason": {"empty_output": empty} if empty else {},
                    "positive_examples": len(task["Positive Examples"])}
    dest = os.path.join(ROOT, "tests", "fixtures", "data", "dataset_counts.json")
    with open(dest + ".tmp", "w") as f:
        json.dump(out, f, indent=1, sort_keys=True)
    os.replace(dest + ".tmp", dest)
    print(f"wrote {dest}: {len(out)} datasets")


if __name__ == "__main__":
    sys.exit(main())
