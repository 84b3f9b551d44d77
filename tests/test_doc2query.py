"""doc2query keeps only the generated lines that are questions, and says how many it kept."""
import pytest

from genretrieve.train import doc2query
from genretrieve.train.doc2query import question_line, queries_from_index

from .helpers import fixture_docs, index_json


@pytest.mark.parametrize("reply, question", [
    ("How do I stop a truck safely?\nIt is explained below.", "How do I stop a truck safely?"),
    ("Question: What is the capital of France?", "What is the capital of France?"),
    ("  q. Why do tides rise twice a day?  ", "Why do tides rise twice a day?"),
    ("What a fascinating topic! The passage tells the story.", None),  # a small LLM chatting instead
    ("The answer to this question is:", None),
    ("Why?", None),  # too short to stand alone
    ("", None),
])
def test_question_line(reply, question):
    assert question_line(reply) == question


def test_queries_from_index_keeps_questions_and_counts(tmp_path, fake, monkeypatch):
    index_json(fixture_docs(tmp_path / "docs"), tmp_path / "idx")
    prompts = []

    def write(backbone, texts, max_new_tokens):  # the LLM's replies: every other one a question
        prompts.extend(texts)
        return [f"What does passage {i} say?" if i % 2 == 0 else "What a delightful passage!" for i in range(len(texts))]

    monkeypatch.setattr(doc2query, "generate_answers", write)
    queries, asked = queries_from_index(fake, tmp_path / "idx", n=5)
    assert asked == {"chunks": 5, "questions": 3}
    assert [q["text"] for q in queries] == ["What does passage 0 say?", "What does passage 2 say?", "What does passage 4 say?"]
    assert all(q["source"].startswith("doc2query:") for q in queries) and all("Passage:" in p for p in prompts)


def test_train_from_index_refuses_when_no_question_was_written(tmp_path, fake, monkeypatch):
    from .helpers import run_cli

    index_json(fixture_docs(tmp_path / "docs"), tmp_path / "idx")
    monkeypatch.setattr(doc2query, "generate_answers", lambda backbone, texts, max_new_tokens: ["Sure!"] * len(texts))
    result = run_cli("train", "--from-index", tmp_path / "idx", "--out", tmp_path / "adapter")
    assert result.exit_code == 1
    assert "usable question for 0 of" in result.output and not (tmp_path / "adapter").exists()
