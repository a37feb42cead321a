#!/usr/bin/env python3
"""Peer for `InstructTune.Bench tokenizers`: python3-sentencepiece encode speed, single thread.

Usage: /usr/bin/python3 bench/peers/tokenizers_spm_peer.py CORPUS.txt MODEL
Encodes every line of CORPUS (UTF-8) with SentencePieceProcessor.encode, one call per line as InstructTune does, and
prints one JSON line: {"peer": "sentencepiece", "mb_per_s": … (wall), "mb_per_cpu_s": … (process CPU time), "tokens": …}.
"""
import json, sys, time
import sentencepiece as spm

corpus, model = sys.argv[1], sys.argv[2]
lines = open(corpus, encoding="utf-8").read().split("\n")
mb = sum(len(l.encode("utf-8")) for l in lines) / 1e6
sp = spm.SentencePieceProcessor(model_file=model)
sp.encode(lines[:100])  # warm up
t, c = time.perf_counter(), time.process_time()
tokens = 0
for l in lines:
    tokens += len(sp.encode(l))
dt, dc = time.perf_counter() - t, time.process_time() - c
print(json.dumps({"peer": "sentencepiece", "version": spm.__version__, "mb_per_s": mb / dt, "mb_per_cpu_s": mb / dc,
                  "tokens": tokens, "seconds": dt, "cpu_seconds": dc}))
