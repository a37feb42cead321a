#!/usr/bin/env python3
"""Expected answers of the built-in task families, computed independently in Python.

Writes: tests/fixtures/data/task_answers.json  ({family: [[input, answer], ...]})

Inputs are hand-picked (edge cases included); answers come from the Python definitions below, which restate
each family's rule from its phrasings, not from the C# code.
"""
import json, os

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
POS = {"good", "great", "happy", "lovely", "wonderful", "excellent", "fun", "nice"}
ANIMALS = {"cat", "dog", "horse", "tiger", "bird", "fish", "frog", "lion", "mouse", "sheep"}


def pair(s):
    a, b = s.split(" and ")
    return int(a), int(b)


def nums(s):
    return [int(x) for x in s.split(",")]


RULES = {
    "reverse_word": (["apple", "a", "level"], lambda s: s[::-1]),
    "uppercase": (["river", "cat"], str.upper),
    "lowercase": (["RIVER", "CAT"], str.lower),
    "first_letter": (["tiger", "x"], lambda s: s[0]),
    "last_letter": (["tiger", "x"], lambda s: s[-1]),
    "double_word": (["moon"], lambda s: f"{s} {s}"),
    "sort_letters": (["dragon", "banana"], lambda s: "".join(sorted(s))),
    "count_letters": (["window", "a"], lambda s: str(len(s))),
    "count_words": (["the cat sat", "one"], lambda s: str(len(s.split()))),
    "count_vowels": (["queue", "rhythm"], lambda s: str(sum(c in "aeiou" for c in s))),
    "count_items": (["a, b, c", "pen"], lambda s: str(len(s.split(", ")))),
    "add": (["3 and 5", "49 and 49"], lambda s: str(sum(pair(s)))),
    "subtract": (["3 and 5", "40 and 2"], lambda s: str(pair(s)[0] - pair(s)[1])),
    "multiply": (["12 and 12", "1 and 7"], lambda s: str(pair(s)[0] * pair(s)[1])),
    "max_of_list": (["4, 9, 2", "7"], lambda s: str(max(nums(s)))),
    "min_of_list": (["4, 9, 2", "7"], lambda s: str(min(nums(s)))),
    "successor": (["0", "99"], lambda s: str(int(s) + 1)),
    "sum_of_list": (["1, 2, 3", "29, 29"], lambda s: str(sum(nums(s)))),
    "to_json": (["name Anna, age 7"], lambda s: json.dumps({"name": s.split(", ")[0][5:], "age": int(s.split(", ")[1][4:])})),
    "bullets": (["apple, pear"], lambda s: "\n".join("- " + x for x in s.split(", "))),
    "title_case": (["the red fox"], lambda s: " ".join(w[0].upper() + w[1:] for w in s.split())),
    "join_with_dashes": (["the red fox"], lambda s: "-".join(s.split())),
    "first_number": (["Ben has 3 cats and 17 dogs"], lambda s: next(w for w in s.split() if w.isdigit())),
    "last_word": (["the red fox"], lambda s: s.split()[-1]),
    "first_word": (["the red fox"], lambda s: s.split()[0]),
    "find_name": (["the cup was given to Iris near the tree"], lambda s: next(w for w in s.split() if w[0].isupper())),
    "sentiment": (["the cake was lovely", "the cake was awful"], lambda s: "positive" if s.split()[-1] in POS else "negative"),
    "even_odd": (["0", "7", "42"], lambda s: "even" if int(s) % 2 == 0 else "odd"),
    "animal_or_fruit": (["lion", "mango"], lambda s: "animal" if s in ANIMALS else "fruit"),
    "is_palindrome": (["kayak", "river", "wow"], lambda s: "yes" if s == s[::-1] else "no"),
}

out = {name: [[x, f(x)] for x in inputs] for name, (inputs, f) in RULES.items()}
dest = os.path.join(ROOT, "tests", "fixtures", "data", "task_answers.json")
with open(dest + ".tmp", "w") as f:
    json.dump(out, f, indent=1, sort_keys=True)
os.replace(dest + ".tmp", dest)
print(f"wrote {dest}: {len(out)} families")
