#!/usr/bin/env python3
"""Peer for `InstructTune.Bench tokenizers`: python3-sentencepiece encode speed, single thread.

Usage: /usr/bin/python3 bench/peers/tokenizers_spm_peer.py CORPUS.txt MODEL
Encodes every line of CORPUS (UTF-8) with SentencePieceProcessor.encode, one call per line as InstructTune does, and
prints one JSON line: {"peer": "sentencepiece", "mb_per_s": …, "tokens": …, "seconds": …}.
"""
import json, sys, time
import sentencepiece as spm

corpus, model = sys.argv[1], sys.argv[2]
lines = open(corpus, encoding="utf-8").read().split("\n")
mb = sum(len(l.encode("utf-8")) for l in lines) / 1e6
sp = spm.SentencePieceProcessor(model_file=model)
sp.encode(lines[:100])  # warm up
t = time.perf_counter()
tokens = 0
for l in lines:
    tokens += len(sp.encode(l))
dt = time.perf_counter() - t
print(json.dumps({"peer": "sentencepiece", "version": spm.__version__, "mb_per_s": mb / dt, "tokens": tokens, "seconds": dt}))
