#!/usr/bin/env python3
"""Conversations for `itune eval run --multi-turn` from a quickstart split: each conversation asks three questions of
three different task families in turn (user: "instruction\\nInput: x", assistant: " answer", as the quickstart tunes).

usage: tools/quickstart_conversations.py QUICKSTART_OUT/suite/heldout_examples.jsonl OUT.jsonl [N=20]
"""
import json
import sys

src, dst = sys.argv[1], sys.argv[2]
n = int(sys.argv[3]) if len(sys.argv) > 3 else 20
rows = [json.loads(line) for line in open(src, encoding="utf-8") if line.strip()]
by_task = {}
for r in rows:
    if r.get("complexity", 0) == 0:
        by_task.setdefault(r["task"], []).append(r)
tasks = sorted(by_task)
with open(dst, "w", encoding="utf-8") as out:
    for i in range(n):
        messages = []
        for j in range(3):
            family = by_task[tasks[(i + j) % len(tasks)]]
            r = family[i % len(family)]
            messages.append({"role": "user", "content": r["instruction"] + "\nInput: " + r["input"]})
            messages.append({"role": "assistant", "content": " " + r["output"]})
        out.write(json.dumps({"id": f"c{i}", "messages": messages}) + "\n")
