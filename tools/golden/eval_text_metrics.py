#!/usr/bin/python3
"""Golden generator for the text metrics (issue 6).

Writes (under tests/fixtures/eval/):
  text_metrics_pairs.jsonl     the corpus: {"id","prediction","references":[...]}, >= 200 varied pairs
  text_metrics_expected.jsonl  per pair: em, f1, rouge1/2/L/Lsum F (plain and stemmed), sentence BLEU, 13a tokens;
                               last line: corpus BLEU and the means
  porter_stems.tsv             word <TAB> NLTK PorterStemmer().stem(word) (NLTK_EXTENSIONS mode, as rouge_score)

Run with Debian's python3 (python3-nltk from apt): /usr/bin/python3 tools/golden/eval_text_metrics.py

Where each number comes from, honestly:
  * Porter stems: NLTK itself (a tool we did not write).
  * BLEU: our own Python re-implementation of sacreBLEU 2.x (13a regexes, exp smoothing, effective order),
    written from sacreBLEU's documented algorithm; every sentence score is ALSO checked here against
    nltk.translate.bleu_score.sentence_bleu (method3 = NIST exp smoothing, weights over the effective order)
    on the 13a tokens, and the corpus score against nltk corpus_bleu where nltk's conventions coincide
    (every hypothesis >= 4 tokens); the script aborts on any disagreement above 1e-9.
  * ROUGE: our own Python re-implementation of the published ROUGE definitions in the way rouge_score applies
    them (its tokenizer, NLTK Porter stems, summary-level LCS for Lsum); it is not rouge_score (no PyPI here).
  * EM / F1: the SQuAD v1.1 normalisation and F1 definition, re-implemented here.
"""
import collections, json, math, os, random, re, string, sys

from nltk.stem import porter
from nltk.translate.bleu_score import corpus_bleu, sentence_bleu, SmoothingFunction

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
OUT = os.path.join(ROOT, "tests", "fixtures", "eval")
STEMMER = porter.PorterStemmer()

# ---------------------------------------------------------------- corpus
HAND = [
    ("The cat sat on the mat.", ["The cat sat on the mat."]),                     # identical
    ("", ["The cat sat on the mat."]),                                            # empty prediction
    ("The cat sat on the mat.", [""]),                                            # empty reference
    ("", [""]),                                                                   # both empty
    ("the cat", ["The cat sat on the mat."]),                                     # short
    ("a", ["a"]),
    ("cat", ["cat"]),
    ("THE CAT SAT ON THE MAT", ["the cat sat on the mat"]),                       # casing
    ("The Cat, the Hat!", ["the cat the hat"]),                                   # punctuation
    ("Hello... world!!! (really?)", ["Hello world, really."]),
    ("It costs $3.14, not $1,000.", ["It costs 3.14 dollars, not 1,000 dollars."]),  # numbers
    ("Call 555-1234 between 10-20 May.", ["Call 555 - 1234 between 10 and 20 May."]),
    ("pi is 3.14159 and e is 2.71828", ["pi is 3.14 and e is 2.72"]),
    ("First sentence.\nSecond sentence here.\nThird one.", ["First sentence.\nThe second sentence.\nA third one."]),
    ("one two three\nfour five six", ["four five six\none two three"]),           # multi-sentence reordered
    ("A\n\nB C\n", ["A B\nC"]),
    ("Café naïve résumé", ["cafe naive resume"]),                                 # unicode
    ("Café naïve résumé", ["Café naïve résumé"]),
    ("東京は日本の首都です。", ["東京は日本の首都です。"]),
    ("東京 is the capital", ["Tokyo is the capital"]),
    ("İstanbul is big", ["istanbul is big"]),
    ("Straße und Fluß", ["strasse und fluss"]),
    ("emoji 😀 test 🚀!", ["emoji test!"]),
    ("non\u00a0breaking\u2003spaces\u3000here", ["non breaking spaces here"]),
    ("tab\tseparated\x1cfield", ["tab separated field"]),
    ("Tom &amp; Jerry &quot;rock&quot; &lt;3", ["Tom & Jerry \"rock\" <3"]),
    ("multi-\nline hyphen <skipped> text", ["multiline hyphen text"]),
    ("The answer is Paris", ["Paris", "The capital is Paris", "paris, France"]),   # several references
    ("an apple a day", ["The apple a day", "apples every day"]),
    ("The the the the", ["the cat"]),                                             # repeated tokens
    ("running runners ran quickly", ["the runner runs quick"]),                   # stemming matters
    ("generalizations of relational operators", ["generalize the relation operator"]),
    ("happiness and happy skies", ["happy sky, happily"]),
    ("connected connecting connection connections", ["connect"]),
    ("It's John's book, isn't it?", ["it is johns book is not it"]),
    ("e-mail me at john.doe@example.com", ["email john.doe@example.com"]),
    ("C++ and C# are languages", ["c and c are languages"]),
    ("100% sure; 50/50 chance", ["100 percent sure, 50 50 chance"]),
    ("Version 2.0.1 released on 2023-01-05.", ["Version 2.0.1 was released on 2023-01-05."]),
    ("Mr. Smith went to Washington, D.C.", ["Mr Smith went to Washington DC"]),
    ("   leading and trailing spaces   ", ["leading and trailing spaces"]),
    ("\n\nnewlines around\n\n", ["newlines around"]),
    ("...", ["..."]),
    ("?!", ["."]),
    ("a b c d e f g h i j k l m n o p", ["a b c d e f g h i j k l m n o p q"]),
    ("the quick brown fox jumps over the lazy dog", ["the quick brown dog jumps on the log"]),
    ("The quick brown fox jumps over the lazy dog", ["The quick brown dog jumps on the log."]),
    ("police killed the gunman", ["the gunman was shot down by police"]),
    ("the gunman police killed", ["police kill the gunman"]),
    ("Step 1: mix. Step 2: bake. Step 3: serve.", ["Step 1: mix the flour. Step 2: bake it. Step 3: serve warm."]),
    ("Yes", ["yes"]), ("No.", ["Yes."]), ("42", ["42"]), ("42", ["forty-two"]), ("3", ["3.0"]),
    ("An", ["a"]), ("The", ["the"]),
    ("<b>bold</b> & <i>italic</i>", ["bold & italic"]),
    ("x" * 40, ["x" * 40]),
    ("word " * 30, ["word " * 25]),
    ("She said: \"don't go!\"", ["she said do not go"]),
    ("¿Qué tal? ¡Muy bien!", ["Que tal? Muy bien!"]),
    ("Ελληνικά κείμενα", ["ελληνικά κείμενα"]),
    ("Привет, мир!", ["привет мир"]),
    ("The KELVIN sign \u212a and K", ["the kelvin sign k and k"]),
    ("1st 2nd 3rd 4th", ["first second third fourth"]),
    ("[1] (2) {3} <4>", ["1 2 3 4"]),
    ("under_score and back\\slash", ["under score and back slash"]),
    ("trailing dash 5- and 5 -", ["trailing dash 5 - and 5 -"]),
    ("comma,separated,values,1,2", ["comma separated values 1 2"]),
    ("end.Start of next", ["end. Start of next"]),
    (".5 and 5. and .x", ["0.5 and 5 and x"]),
    ("ΟΔΟΣ ΚΑΙ ΣΟΦΟΣ", ["οδος και σοφος"]),                                      # Python's final-sigma lowering
    ("the\u0301 cafe\u0301", ["cafe\u0301"]),                                  # combining mark after an article
    ("THE END.", ["the end"]), ("An apple", ["an Apple!"]),
]

VOCAB = ("the a an of to in model data train test language instruction answer question summary text "
         "generate evaluate score metric token sentence paragraph system user assistant helpful correct "
         "wrong running jumped happily quickly relational conditional operators generalization connection "
         "fishing fished fisher argue argued argues arguing argument arguments 2023 3.5 42 100 cat dog "
         "café über naïve city cities studies studying agreed feed plastered motoring hopping sized failing "
         "filing happiness sensitivity hopefulness callousness formality triplicate formative electrical "
         "revival allowance inference airliner adjustable irritant replacement adoption communism").split()


def perturb(rng, words):
    words = list(words)
    op = rng.randrange(8)
    if op == 0 and len(words) > 1:
        del words[rng.randrange(len(words))]
    elif op == 1:
        words.insert(rng.randrange(len(words) + 1), rng.choice(VOCAB))
    elif op == 2 and len(words) > 2:
        i = rng.randrange(len(words) - 1); words[i], words[i + 1] = words[i + 1], words[i]
    elif op == 3:
        words = [w.upper() if rng.random() < 0.3 else w for w in words]
    elif op == 4:
        words = [w + rng.choice([",", ".", "!", "?", ";", ":"]) if rng.random() < 0.2 else w for w in words]
    elif op == 5:
        words = words[: max(1, len(words) // 2)]
    elif op == 6:
        words = words + [rng.choice(VOCAB) for _ in range(rng.randrange(1, 4))]
    else:
        cut = rng.randrange(1, len(words) + 1); words = words[:cut] + ["\n"] + words[cut:]
    return words


def generated(rng, count):
    pairs = []
    for _ in range(count):
        n = rng.randrange(1, 25)
        ref = [rng.choice(VOCAB) for _ in range(n)]
        if rng.random() < 0.3:
            ref.insert(rng.randrange(len(ref) + 1), ".\n")
        hyp = ref
        for _ in range(rng.randrange(0, 4)):
            hyp = perturb(rng, hyp)
        refs = [" ".join(ref).replace(" \n ", "\n")]
        if rng.random() < 0.25:
            refs.append(" ".join(perturb(rng, ref)))
        pairs.append((" ".join(hyp).replace(" \n ", "\n").replace(" .\n", ".\n"), refs))
    return pairs


# ---------------------------------------------------------------- SQuAD v1.1
def squad_normalize(s):
    s = s.lower()
    s = "".join(ch for ch in s if ch not in set(string.punctuation))
    s = re.sub(r"\b(a|an|the)\b", " ", s)
    return " ".join(s.split())


def squad_f1(pred, gold):
    p, g = squad_normalize(pred).split(), squad_normalize(gold).split()
    same = sum((collections.Counter(p) & collections.Counter(g)).values())
    if same == 0:
        return 0.0
    pr, rc = same / len(p), same / len(g)
    return 2 * pr * rc / (pr + rc)


# ---------------------------------------------------------------- ROUGE (re-implementation)
def rouge_tokens(text, stem):
    text = re.sub(r"[^a-z0-9]+", " ", text.lower())
    toks = re.split(r"\s+", text)
    if stem:
        toks = [STEMMER.stem(t) if len(t) > 3 else t for t in toks]
    return [t for t in toks if re.match(r"^[a-z0-9]+$", t)]


def prf(hits, n_pred, n_ref):
    p, r = hits / max(n_pred, 1), hits / max(n_ref, 1)
    return (p, r, 2 * p * r / (p + r) if p + r > 0 else 0.0)


def rouge_n(t, p, n):
    tg = collections.Counter(tuple(t[i:i + n]) for i in range(len(t) - n + 1))
    pg = collections.Counter(tuple(p[i:i + n]) for i in range(len(p) - n + 1))
    return prf(sum((tg & pg).values()), sum(pg.values()), sum(tg.values()))


def lcs_table(a, b):
    t = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            t[i][j] = t[i - 1][j - 1] + 1 if a[i - 1] == b[j - 1] else max(t[i - 1][j], t[i][j - 1])
    return t


def rouge_l(t, p):
    if not t or not p:
        return (0.0, 0.0, 0.0)
    return prf(lcs_table(t, p)[-1][-1], len(p), len(t))


def lcs_positions(a, b):
    t, i, j, out = lcs_table(a, b), len(a), len(b), []
    while i > 0 and j > 0:
        if a[i - 1] == b[j - 1]:
            out.append(i - 1); i -= 1; j -= 1
        elif t[i][j - 1] > t[i - 1][j]:
            j -= 1
        else:
            i -= 1
    return out


def rouge_lsum(target, pred, stem):
    ts = [rouge_tokens(s, stem) for s in target.split("\n") if s]
    ps = [rouge_tokens(s, stem) for s in pred.split("\n") if s]
    m, n = sum(map(len, ts)), sum(map(len, ps))
    if not ts or not ps or not m or not n:
        return (0.0, 0.0, 0.0)
    left_t = collections.Counter(x for s in ts for x in s)
    left_p = collections.Counter(x for s in ps for x in s)
    hits = 0
    for r in ts:
        union = sorted(set().union(*[set(lcs_positions(r, c)) for c in ps]))
        for i in union:
            if left_p[r[i]] > 0 and left_t[r[i]] > 0:
                hits += 1; left_p[r[i]] -= 1; left_t[r[i]] -= 1
    return prf(hits, n, m)


def rouge_all(target, pred, stem):
    t, p = rouge_tokens(target, stem), rouge_tokens(pred, stem)
    return {"rouge1": rouge_n(t, p, 1), "rouge2": rouge_n(t, p, 2), "rougeL": rouge_l(t, p),
            "rougeLsum": rouge_lsum(target, pred, stem)}


def rouge_multi(targets, pred, stem):
    best = None
    for tgt in targets:
        s = rouge_all(tgt, pred, stem)
        if best is None:
            best = s
        else:
            best = {k: (s[k] if s[k][2] > best[k][2] else best[k]) for k in s}
    return {k: v[2] for k, v in best.items()}


# ---------------------------------------------------------------- sacreBLEU (re-implementation)
RX = [(re.compile(r"([\{-\~\[-\` -\&\(-\+\:-\@\/])"), r" \1 "),
      (re.compile(r"([^0-9])([\.,])"), r"\1 \2 "),
      (re.compile(r"([\.,])([^0-9])"), r" \1 \2"),
      (re.compile(r"([0-9])(-)"), r"\1 \2 ")]


def tok13a(line):
    line = line.replace("<skipped>", "").replace("-\n", "").replace("\n", " ")
    if "&" in line:
        line = line.replace("&quot;", '"').replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">")
    line = " " + line + " "
    for rx, rep in RX:
        line = rx.sub(rep, line)
    return " ".join(line.split())


def ngrams(toks, n):
    return collections.Counter(tuple(toks[i:i + n]) for i in range(len(toks) - n + 1))


def seg_stats(hyp, refs):
    h = tok13a(hyp.rstrip()).split()
    rs = [tok13a(r.rstrip()).split() for r in refs]
    ref_len = min((abs(len(h) - len(r)), len(r)) for r in rs)[1]
    correct, total = [0] * 4, [0] * 4
    for n in range(1, 5):
        maxref = collections.Counter()
        for r in rs:
            for g, c in ngrams(r, n).items():
                maxref[g] = max(maxref[g], c)
        for g, c in ngrams(h, n).items():
            total[n - 1] += c
            correct[n - 1] += min(c, maxref.get(g, 0))
    return [len(h), ref_len] + correct + total, h, rs


def bleu_from(stats, effective):
    sys_len, ref_len, correct, total = stats[0], stats[1], stats[2:6], stats[6:10]
    bp = (math.exp(1 - ref_len / sys_len) if sys_len > 0 else 0.0) if sys_len < ref_len else 1.0
    prec = [0.0] * 4
    if not any(correct):
        return 0.0
    smooth, eff = 1.0, 4
    for n in range(1, 5):
        if total[n - 1] == 0:
            break
        if effective:
            eff = n
        if correct[n - 1] == 0:
            smooth *= 2
            prec[n - 1] = 100.0 / (smooth * total[n - 1])
        else:
            prec[n - 1] = 100.0 * correct[n - 1] / total[n - 1]
    return bp * math.exp(sum(math.log(p) if p > 0 else -9999999999 for p in prec[:eff]) / eff)


def nltk_sentence(h, rs):
    if not h:
        return 0.0
    k = min(4, len(h))
    return 100 * sentence_bleu(rs, h, weights=tuple([1.0 / k] * k), smoothing_function=SmoothingFunction().method3)


# ---------------------------------------------------------------- main
def main():
    rng = random.Random(20261121)
    pairs = HAND + generated(rng, 240 - len(HAND))
    rows, expected, all_stats = [], [], [0] * 10
    nltk_checked = 0
    for idx, (pred, refs) in enumerate(pairs):
        pid = f"p{idx:03d}"
        rows.append({"id": pid, "prediction": pred, "references": refs})
        stats, h, rs = seg_stats(pred, refs)
        all_stats = [a + b for a, b in zip(all_stats, stats)]
        bleu = bleu_from(stats, True)
        ref_nltk = nltk_sentence(h, rs)
        if abs(ref_nltk - bleu) > 1e-9:
            sys.exit(f"{pid}: our sacreBLEU re-implementation {bleu} != nltk {ref_nltk}")
        nltk_checked += 1
        rec = {"id": pid, "em": any(squad_normalize(pred) == squad_normalize(r) for r in refs),
               "f1": max([squad_f1(pred, r) for r in refs] or [0.0]), "bleu": bleu,
               "hyp13a": " ".join(h), "refs13a": [" ".join(r) for r in rs]}
        for stem in (False, True):
            for k, v in rouge_multi(refs, pred, stem).items():
                rec[k + ("_stem" if stem else "")] = v
        expected.append(rec)
    corpus = bleu_from(all_stats, False)
    # nltk corpus_bleu agrees with sacreBLEU only when no hypothesis is shorter than 4 tokens.
    long_idx = [i for i, (p, r) in enumerate(pairs) if len(tok13a(p.rstrip()).split()) >= 4]
    sub = [0] * 10
    for i in long_idx:
        sub = [a + b for a, b in zip(sub, seg_stats(*pairs[i])[0])]
    ours_sub = bleu_from(sub, False)
    nltk_sub = 100 * corpus_bleu([seg_stats(*pairs[i])[2] for i in long_idx],
                                 [seg_stats(*pairs[i])[1] for i in long_idx],
                                 smoothing_function=SmoothingFunction().method3)
    if abs(ours_sub - nltk_sub) > 1e-9:
        sys.exit(f"corpus subset: ours {ours_sub} != nltk {nltk_sub}")
    mean = lambda k: sum(float(e[k]) for e in expected) / len(expected)
    expected.append({"id": "corpus", "bleu": corpus, "em": mean("em"), "f1": mean("f1"), "rouge1": mean("rouge1"),
                     "rouge2": mean("rouge2"), "rougeL": mean("rougeL"), "rougeLsum": mean("rougeLsum"),
                     "long_subset_ids": [f"p{i:03d}" for i in long_idx], "long_subset_bleu_nltk": nltk_sub})

    words = set()
    for pred, refs in pairs:
        for text in [pred] + refs:
            words.update(t for t in re.sub(r"[^a-z0-9]+", " ", text.lower()).split() if len(t) > 3)
    roots = ["connect", "relat", "general", "hope", "happ", "run", "sens", "form", "electr", "adopt", "argu",
             "fish", "agre", "plaster", "motor", "hop", "siz", "fail", "fil", "call", "triplic", "reviv", "allow",
             "infer", "airlin", "adjust", "irrit", "replac", "commun", "activ", "angular", "homolog", "effect",
             "bowdler", "probat", "rate", "ceas", "controll", "roll", "sky", "die", "ly", "ti", "spi", "flie", "logi",
             "analog", "radic", "different", "vile", "conform", "valen", "hesit", "digit", "vietnam", "predic",
             "oper", "feud", "decis", "formal", "sensitiv", "sensib", "troubl", "conflat", "tann", "fizz", "hiss"]
    suffixes = ["", "s", "es", "ies", "ied", "ed", "ing", "ly", "y", "er", "ers", "ation", "ational", "ations",
                "ness", "ful", "fulness", "ive", "iveness", "ize", "ization", "izer", "ism", "ist", "ity", "iti",
                "ible", "able", "abli", "bli", "alli", "entli", "eli", "ousli", "fulli", "ogi", "logi", "ance",
                "ence", "ment", "ement", "ent", "ant", "al", "ical", "icate", "iciti", "ative", "alize", "ous", "ou"]
    words.update(r + s for r in roots for s in suffixes)
    words.update(["sky", "skies", "dying", "lying", "tying", "news", "innings", "inning", "outings", "canning",
                  "howe", "proceed", "exceed", "succeed", "ties", "pies", "cried", "died", "a", "is", "as", "at",
                  "by", "yes", "ys", "y", "aaa", "eed", "ied", "ing", "inging", "feed", "agreed", "bled", "sing",
                  "enjoy", "enjoyment", "toy", "syzygy", "happy", "ivy", "trees", "oaten", "orrery", "tree"])
    with open(os.path.join(OUT, "porter_stems.tsv"), "w", encoding="utf-8") as f:
        for w in sorted(words):
            f.write(f"{w}\t{STEMMER.stem(w)}\n")
    with open(os.path.join(OUT, "text_metrics_pairs.jsonl"), "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    with open(os.path.join(OUT, "text_metrics_expected.jsonl"), "w", encoding="utf-8") as f:
        for e in expected:
            f.write(json.dumps(e, ensure_ascii=False) + "\n")
    print(f"{len(rows)} pairs, {nltk_checked} sentence BLEU checked against nltk, corpus subset of "
          f"{len(long_idx)} checked against nltk corpus_bleu ({nltk_sub:.4f}), {len(words)} stems; corpus BLEU {corpus:.4f}")


if __name__ == "__main__":
    main()
