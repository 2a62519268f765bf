#!/usr/bin/env python3
"""Build a small multiple-choice task from Brown corpus text for `fusion-run --score-choices`.

Each task: the first words of a sentence as the context, the sentence's next word as the
correct choice and three distractor words drawn (seeded) from the corpus's word stream, so
distractors follow the corpus's word frequencies; chance accuracy is 25%. Choices start with
a space, as continuations do in lm-eval-harness.

usage: make_brown_tasks.py BROWN_TEXT_DIR OUT.jsonl [--tasks N] [--seed S] [--files PREFIX]
(BROWN_TEXT_DIR is the output of `fusion-data brown`.)
"""
import argparse, json, os, random, re, sys


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("text_dir")
    p.add_argument("out")
    p.add_argument("--tasks", type=int, default=200)
    p.add_argument("--seed", type=int, default=1234)
    p.add_argument("--files", default="c", help="only files whose name starts with this")
    a = p.parse_args()
    names = sorted(n for n in os.listdir(a.text_dir) if n.startswith(a.files) and n.endswith(".txt"))
    if not names:
        sys.exit(f"make_brown_tasks.py: no Brown text files in {a.text_dir}")
    sentences, words = [], []
    for n in names:
        text = open(os.path.join(a.text_dir, n), encoding="utf-8").read()
        for s in re.split(r"(?<=[.!?])\s+", text):
            w = s.split()
            words.extend(x for x in w if x.isalpha())
            if len(w) >= 10 and all(x.isalpha() for x in w[4:8]):
                sentences.append(w)
    rng = random.Random(a.seed)
    rng.shuffle(sentences)
    tasks = []
    for w in sentences:
        if len(tasks) == a.tasks:
            break
        cut = rng.randint(4, 7)
        answer_word = w[cut]
        distractors = set()
        while len(distractors) < 3:
            d = rng.choice(words)
            if d.lower() != answer_word.lower():
                distractors.add(d)
        choices = [" " + answer_word] + [" " + d for d in sorted(distractors)]
        order = list(range(4))
        rng.shuffle(order)
        shuffled = [choices[i] for i in order]
        tasks.append({"context": " ".join(w[:cut]), "choices": shuffled,
                      "answer": order.index(0)})
    with open(a.out, "w", encoding="utf-8") as f:
        for t in tasks:
            f.write(json.dumps(t) + "\n")
    print(f"wrote {len(tasks)} tasks to {a.out}")


if __name__ == "__main__":
    main()
