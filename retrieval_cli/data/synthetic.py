"""The project's own small dataset, generated deterministically from a seed.

Documents describe products: a category made for a use, with a feature, a brand, a model
code and a known problem. Three kinds of query make lexical and semantic retrieval differ:
- ``code``: the model code plus a paraphrased problem. Exact tokens: BM25's strength.
- ``paraphrase``: category, use and feature, all in synonyms the documents never use. Only
  meaning matches, so BM25 mostly fails while a dense model can succeed.
- ``brand``: brand name plus a category synonym and the problem in the document's words.
Every document with the target (category, use, feature) is relevant to a paraphrase query;
filler sentences sprinkle the synonyms over random documents as lexical distractors.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from retrieval_cli.data.dataset import Dataset

# (document wording, query wording): query wordings never appear in document templates.
CATEGORIES = [
    ("camera", "photography gear"), ("bicycle", "bike"), ("kettle", "water boiler"),
    ("laptop", "notebook computer"), ("backpack", "rucksack"), ("drone", "quadcopter"),
    ("blender", "smoothie maker"), ("headphones", "earphones"), ("tent", "camping shelter"),
    ("printer", "paper output device"), ("vacuum cleaner", "floor sweeper"), ("sofa", "couch"),
]
USES = [
    ("mountain trips", "hiking in the hills"), ("small apartments", "compact homes"),
    ("professional studios", "expert workshops"), ("children", "kids"),
    ("long journeys", "extended travel"), ("rainy climates", "wet weather"),
    ("busy offices", "crowded workplaces"), ("beginners", "novices"),
    ("night use", "after dark"), ("elderly owners", "senior citizens"),
]
FEATURES = [
    ("a lightweight aluminium frame", "a featherweight metal body"),
    ("a battery that lasts two days", "power for forty eight hours"),
    ("silent operation", "very quiet running"), ("a waterproof shell", "protection from water"),
    ("voice control", "spoken commands"), ("a folding design", "collapses to a smaller size"),
    ("solar charging", "sunlight powered recharging"), ("a ten year warranty", "a decade of guarantee"),
    ("fast heating", "warms up quickly"), ("a touch screen", "a tap sensitive display"),
]
PROBLEMS = [
    ("the hinge cracks", "broken joint"), ("the motor overheats", "engine gets too hot"),
    ("the strap tears", "ripped belt"), ("the screen flickers", "unstable display"),
    ("the charger fails", "dead power adapter"), ("the button sticks", "jammed switch"),
    ("the paint peels", "flaking coating"), ("the lid leaks", "dripping cover"),
]
SYLLABLES = ["ka", "lo", "vi", "ter", "mon", "ra", "zu", "pel", "dor", "fin", "sa", "gri", "nov", "bel", "tu", "mar"]
FILLERS = [
    "Reviewers compare it with other {c} options.",
    "The shop also sells spare parts for {u}.",
    "A newer edition promises {f}.",
    "Customers asked whether it suits {u}.",
    "It ships in a recycled cardboard box.",
    "The manual is printed in six languages.",
    "Delivery usually takes three working days.",
]
QUERY_KINDS = ("code", "paraphrase", "brand")


@dataclass
class SynthConfig:
    """Sizes and seed of the synthetic dataset; the same config always gives the same files."""

    documents: int = 1500
    test_queries: int = 150
    train_queries: int = 300
    seed: int = 13
    brands: int = 40


def _brand(rng: random.Random) -> str:
    return "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 3))).capitalize()


def generate(config: SynthConfig) -> Dataset:
    """Generate corpus, queries and test/train qrels."""
    rng = random.Random(config.seed)
    brands = sorted({_brand(rng) for _ in range(config.brands * 3)})[: config.brands]
    rng.shuffle(brands)
    docs: list[dict] = []
    codes: set[str] = set()
    for i in range(config.documents):
        c, u, f, p = (rng.randrange(len(x)) for x in (CATEGORIES, USES, FEATURES, PROBLEMS))
        while True:
            code = f"{rng.choice('BCDFGHKMNPRSTVXZ')}{rng.choice('AEIOUXY')}-{rng.randint(100, 9999)}"
            if code not in codes:
                codes.add(code)
                break
        brand = rng.choice(brands)
        filler = rng.sample(FILLERS, 2)
        text = (
            f"{brand} {code} is a {CATEGORIES[c][0]} made for {USES[u][0]}. "
            f"It comes with {FEATURES[f][0]}. Some owners report that {PROBLEMS[p][0]} after a year. "
            + " ".join(
                s.format(c=rng.choice(CATEGORIES)[1], u=rng.choice(USES)[1], f=rng.choice(FEATURES)[1])
                for s in filler
            )
        )
        docs.append({
            "id": f"d{i}", "title": f"{brand} {code} {CATEGORIES[c][0]}", "text": text,
            "c": c, "u": u, "f": f, "p": p, "brand": brand, "code": code,
        })

    targets = rng.sample(range(len(docs)), min(len(docs), config.test_queries + config.train_queries))
    queries: dict[str, str] = {}
    qrels: dict[str, dict[str, dict[str, int]]] = {"test": {}, "train": {}}
    for n, target in enumerate(targets):
        split = "test" if n < config.test_queries else "train"
        d = docs[target]
        kind = QUERY_KINDS[rng.choices(range(3), weights=(7, 9, 4))[0]]
        if kind == "code":
            text = f"{d['code']} {PROBLEMS[d['p']][1]}"
            relevant = {d["id"]: 2}
        elif kind == "paraphrase":
            text = f"{CATEGORIES[d['c']][1]} for {USES[d['u']][1]} with {FEATURES[d['f']][1]}"
            relevant = {
                o["id"]: 2 if o is d else 1
                for o in docs if (o["c"], o["u"], o["f"]) == (d["c"], d["u"], d["f"])
            }
        else:
            text = f"{d['brand']} {CATEGORIES[d['c']][1]} where {PROBLEMS[d['p']][0].removeprefix('the ')}"
            relevant = {
                o["id"]: 2 if o is d else 1
                for o in docs if (o["brand"], o["c"], o["p"]) == (d["brand"], d["c"], d["p"])
            }
        qid = f"q{n}"
        queries[qid] = text
        qrels[split][qid] = relevant

    corpus = {d["id"]: {"title": d["title"], "text": d["text"]} for d in docs}
    return Dataset(corpus, queries, {k: v for k, v in qrels.items() if v}, relevance_level=1, name="synthetic")
