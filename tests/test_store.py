import hashlib

import pytest

from genretrieve.index.store import Store


def chunks(*texts: str, heading: str | None = None) -> list[dict]:
    out, pos = [], 0
    for n, t in enumerate(texts):
        out.append({"text": t, "start_char": pos, "end_char": pos + len(t),
                    "start_line": n + 1, "end_line": n + 1, "page": None,
                    "heading": heading, "metadata": {"n": n},
                    "chunk_hash": hashlib.sha256(t.encode()).hexdigest()})
        pos += len(t) + 1
    return out


@pytest.fixture
def store(tmp_path):
    s = Store(tmp_path / "meta.sqlite")
    yield s
    s.close()


def hit_ids(store, query, k=10, ids=None):
    return [i for i, _ in store.keyword_search(query, k, ids)]


def test_new_store_records_schema_version(tmp_path):
    s = Store(tmp_path / "idx" / "meta.sqlite")
    assert s.get_meta("schema_version") == 1
    assert s.count_chunks() == 0 and s.count_files() == 0
    s.close()


def test_replace_file_replaces_old_chunks_everywhere(store):
    old = store.replace_file("a.md", "h1", 10, 1.0, chunks("apples grow", "bananas ripen"))
    new = store.replace_file("a.md", "h2", 12, 2.0, chunks("cherries bloom"))
    assert store.get_chunks(old) == []
    assert store.chunk_ids_for("a.md") == new
    assert hit_ids(store, "apples") == []          # the FTS index forgot the old text
    assert hit_ids(store, "cherries") == new
    assert {path: row["sha256"] for path, row in store.file_records().items()} == {"a.md": "h2"}
    assert store.count_chunks() == 1 and store.count_files() == 1


def test_get_chunks_keeps_order_skips_missing_and_parses_metadata(store):
    ids = store.replace_file("a.md", "h", 1, 1.0, chunks("one", "two", heading="Intro"))
    rows = store.get_chunks([ids[1], 999_999, ids[0]])
    assert [r["text"] for r in rows] == ["two", "one"]
    assert rows[0]["metadata"] == {"n": 1} and rows[0]["heading"] == "Intro"
    assert rows[0]["path"] == "a.md" and rows[0]["start_line"] == 2


def test_remove_files_prunes_rows_and_search(store):
    a = store.replace_file("a.md", "ha", 1, 1.0, chunks("zebra stripes", "zebra herd"))
    b = store.replace_file("b.md", "hb", 1, 1.0, chunks("zebra crossing"))
    removed = store.remove_files(["a.md", "never-indexed.md"])
    assert sorted(removed) == sorted(a)
    assert {path: row["sha256"] for path, row in store.file_records().items()} == {"b.md": "hb"}
    assert hit_ids(store, "zebra") == b
    assert store.all_chunk_ids() == b


def test_keyword_search_ranks_matching_chunk_first(store):
    ids = store.replace_file("a.md", "h", 1, 1.0, chunks(
        "the weather is mild today",
        "C++ templates and the C++ standard library",
        "python packaging notes"))
    hits = store.keyword_search('what\'s "C++" (v2)?', 3)
    assert hits[0][0] == ids[1]
    assert hits == sorted(hits, key=lambda h: -h[1])  # best first, higher is better
    assert store.keyword_search("python", 5)[0][0] == ids[2]


@pytest.mark.parametrize("query", ['"', "'", "(", ")", "a:b", "NEAR(x y)", "-x", "*",
                                   "^foo", "AND", "OR NOT", "", "   ", "?!", 'x" OR "'])
def test_keyword_search_never_raises_on_user_text(store, query):
    store.replace_file("a.md", "h", 1, 1.0, chunks("and or not near foo x y"))
    store.keyword_search(query, 5)  # must not raise an FTS5 syntax error


def test_keyword_search_restricts_before_top_k(store):
    ids = store.replace_file("a.md", "h", 1, 1.0, chunks(
        "kiwi kiwi kiwi kiwi", "kiwi and other fruit mentioned once", "no match"))
    assert hit_ids(store, "kiwi", k=1) == [ids[0]]
    # The weaker match is still returned when it is the only allowed candidate.
    assert hit_ids(store, "kiwi", k=1, ids=[ids[1], ids[2]]) == [ids[1]]
    assert hit_ids(store, "kiwi", ids=[]) == []


def test_ids_are_never_reused_after_delete(store, tmp_path):
    first = store.replace_file("a.md", "h", 1, 1.0, chunks("x1", "x2", "x3"))
    store.remove_files(["a.md"])
    again = store.replace_file("a.md", "h", 1, 1.0, chunks("y1"))
    assert min(again) > max(first)
    store.close()
    reopened = Store(tmp_path / "meta.sqlite")  # the counter survives a restart
    later = reopened.replace_file("b.md", "h", 1, 1.0, chunks("z1"))
    assert min(later) > max(again)
    reopened.close()


def test_known_id_kept_only_for_identical_content(store):
    (cid,) = store.replace_file("a.md", "h1", 1, 1.0, chunks("same text"))
    kept = chunks("same text", "new text")
    kept[0]["id"] = cid
    ids = store.replace_file("a.md", "h2", 1, 2.0, kept)
    assert ids[0] == cid and ids[1] > cid
    bad = chunks("different text")
    bad[0]["id"] = cid
    with pytest.raises(ValueError):
        store.replace_file("a.md", "h3", 1, 3.0, bad)
    assert store.chunk_ids_for("a.md") == ids  # the failed call changed nothing
    assert {path: row["sha256"] for path, row in store.file_records().items()}["a.md"] == "h2"


def test_ids_matching_path_globs(store):
    paths = ["README.md", "docs/a.md", "docs/sub/b.md", "docs/c.txt", "src/x.py"]
    ids = {p: store.replace_file(p, "h", 1, 1.0, chunks(p))[0] for p in paths}

    def match(pattern):
        return {p for p, i in ids.items() if i in store.ids_matching_path(pattern)}

    assert match("**/*.md") == {"README.md", "docs/a.md", "docs/sub/b.md"}
    assert match("docs/**/*.md") == {"docs/a.md", "docs/sub/b.md"}
    assert match("docs/*.md") == {"docs/a.md", "docs/sub/b.md"}  # GLOB's * crosses "/"
    assert match("docs/") == {"docs/a.md", "docs/sub/b.md", "docs/c.txt"}
    assert match("./src/*.py") == {"src/x.py"}
    assert match("*.MD") == set()  # GLOB is case-sensitive


def test_meta_round_trips_json(store):
    store.set_meta("model", {"name": "m", "dim": 8})
    assert store.get_meta("model") == {"name": "m", "dim": 8}
    assert store.get_meta("missing", "dflt") == "dflt"


def test_chunks_of_gives_back_what_replace_file_took(store, tmp_path):
    import numpy as np

    given = chunks("alpha beta", "gamma delta", heading="H")
    for n, c in enumerate(given):
        c["vector"] = np.full(4, n + 0.5, np.float16)
    ids = store.replace_file("a.txt", "s", 1, 1.0, given)
    store.replace_file("b.txt", "t", 1, 1.0, chunks("no vector here"))
    copy = Store(tmp_path / "copy.sqlite")  # merge copies a shard's file like this
    copy.replace_file("a.txt", "s", 1, 1.0, store.chunks_of("a.txt"))
    for before, after in zip(given, copy.chunks_of("a.txt")):
        assert {k: v for k, v in after.items() if k != "vector"} == {k: v for k, v in before.items() if k != "vector"}
        np.testing.assert_array_equal(after["vector"], before["vector"])
    vector_ids, paths = store.vector_paths()
    assert vector_ids.tolist() == ids and paths == ["a.txt", "a.txt"]  # the chunk without a vector is left out
    copy.close()
