"""The library API the README shows: index a folder and search it from Python, on the real teacher."""
import subprocess
import sys

import genretrieve


def test_index_and_search_from_python(tmp_path):
    from genretrieve import Searcher, build_index, load_config, load_teacher_encoder

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "tides.md").write_text("# Tides\nThe moon's gravity pulls the oceans, which raises the tides twice a day.\n")
    (docs / "bread.md").write_text("# Bread\nKnead the dough, let it rise for an hour, then bake it at 220 degrees.\n")
    config = load_config()
    encoder = load_teacher_encoder(config)  # teacher-encoded documents and teacher search need no LLM
    summary = build_index(docs, tmp_path / "index", encoder, config)
    assert summary.files_indexed == 2
    [result] = Searcher(tmp_path / "index", encoder, config).search(["what causes the tides?"], k=2)
    assert [hit.path for hit in result.hits] == ["tides.md", "bread.md"]


def test_import_is_light_and_names_are_exported():
    assert set(genretrieve.__all__) >= {"Searcher", "build_index", "load_config", "load_encoder"}
    code = "import sys, genretrieve; print('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "False"
