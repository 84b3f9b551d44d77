"""The MTEB wrapper: mteb's own retrieval evaluation on a tiny task built here (no hub), with the fake encoder."""
import pytest

mteb = pytest.importorskip("mteb", reason="mteb is an optional extra: pip install genretrieve[mteb]")

from datasets import Dataset  # noqa: E402  (mteb brings it)
from mteb.abstasks.retrieval import AbsTaskRetrieval  # noqa: E402
from mteb.abstasks.retrieval_dataset_loaders import RetrievalSplitData  # noqa: E402
from mteb.abstasks.task_metadata import TaskMetadata  # noqa: E402

from genretrieve.mteb import GenRetrieveModel  # noqa: E402

from .helpers import FakeEncoder  # noqa: E402

CORPUS = {"d1": "The automobile needs new tires", "d2": "Terminate the job with a signal", "d3": "The ocean is salty",
          "d4": "Paris is the capital of France", "d5": "Bake bread at home with flour"}
QUERIES = {"q1": "my car", "q2": "kill it", "q3": "the sea"}
QRELS = {"q1": {"d1": 1}, "q2": {"d2": 1}, "q3": {"d3": 1}}


class SynonymRetrieval(AbsTaskRetrieval):
    """Three queries whose answers share no word with them, only a concept (car/automobile, kill/terminate, sea/ocean)."""

    metadata = TaskMetadata(
        name="GenretrieveSynonymRetrieval", description="A tiny local task for genretrieve's tests.",
        reference="https://example.org/genretrieve-test", dataset={"path": "local/none", "revision": "1"},
        type="Retrieval", category="t2t", modalities=["text"], eval_splits=["test"], eval_langs=["eng-Latn"],
        main_score="ndcg_at_10", date=("2026-01-01", "2026-01-01"), domains=[], task_subtypes=[], license="cc-by-4.0",
        annotations_creators="derived", dialect=[], sample_creation="created", bibtex_citation="")

    def load_data(self, num_proc=None, **kwargs):
        split = RetrievalSplitData(
            queries=Dataset.from_list([{"id": i, "text": t} for i, t in QUERIES.items()]),
            corpus=Dataset.from_list([{"id": i, "text": t, "title": ""} for i, t in CORPUS.items()]),
            relevant_docs=QRELS, top_ranked=None)
        self.dataset = {"default": {"test": split}}
        self.data_loaded = True


class SpyEncoder(FakeEncoder):
    """Records which texts went through the query and the document embeddings."""

    def __init__(self):
        super().__init__()
        self.queries, self.documents = [], []

    def encode_queries(self, texts, instruction=None):
        self.queries += texts
        return super().encode_queries(texts)

    def encode_documents(self, texts, instruction=None):
        self.documents += texts
        return super().encode_documents(texts)


def ndcg(model) -> float:
    result = mteb.evaluate(model, SynonymRetrieval(), cache=None, show_progress_bar=False)
    [task] = result.task_results
    return task.scores["test"][0]["ndcg_at_10"]


def test_queries_and_documents_take_their_own_embeddings_and_the_method_finds_synonyms():
    encoder = SpyEncoder()
    model = GenRetrieveModel(encoder=encoder, query_model="gen", document_model="gen-document")
    assert ndcg(model) == pytest.approx(1.0)
    assert sorted(encoder.queries) == sorted(QUERIES.values())
    assert sorted(encoder.documents) == sorted(CORPUS.values())
    plain = ndcg(GenRetrieveModel(encoder=FakeEncoder(), query_model="teacher", document_model="teacher"))
    assert plain < 0.9  # the teacher sees no shared word


def test_model_meta_describes_the_encoder():
    meta = GenRetrieveModel(encoder=FakeEncoder()).mteb_model_meta
    assert meta.name == "genretrieve/fake-llm+fake-teacher" and meta.revision == "fake-adapter-1"
    assert meta.embed_dim == 64 and meta.similarity_fn_name.value == "cosine"
    assert meta.experiment_kwargs == {"query_model": "gen", "document_model": "teacher"}


def test_an_unknown_embedding_is_refused():
    from genretrieve.errors import UsageError

    with pytest.raises(UsageError, match="model must be one of"):
        GenRetrieveModel(encoder=FakeEncoder(), query_model="ada")
