"""tools/safety_natural.py: which FAQ lines become natural questions, and the shipped file keeps that rule."""
from genretrieve.safety.data import NATURAL_DOCS, read_lines
from tools.safety_natural import plain_text, questions


def test_numbered_faq_headings_become_questions_and_fragments_do_not():
    text = "\n".join([
        "A.2.1 Does PuTTY support SSH-2?",  # appendix numbering (PuTTY)
        "Q) Can I restrict users to their home directories?",  # vsftpd
        "G1. How do I report bugs?",
        "1.2. Where does the name come from?",
        "If binaries exist for your platform (see Are there Unix-like binaries for R?",  # a cross-reference
        "What now?",  # too short to stand alone
        "this line is not a question?",
        "Window Maker is a window manager.",
    ])
    assert questions(text) == ["Does PuTTY support SSH-2?", "Can I restrict users to their home directories?",
                                "How do I report bugs?", "Where does the name come from?"]


def test_docbook_question_blocks_are_joined_and_entities_read(tmp_path):
    page = tmp_path / "index.docbook"
    page.write_text("<qandaset><qandaentry><question><para>Can I use &kbounce; with\n   the keyboard?</para>"
                    "</question><answer><para>Yes. Is that clear?</para></answer></qandaentry></qandaset>")
    assert questions(plain_text(page)) == ["Can I use kbounce with the keyboard?"]


def test_every_shipped_question_passes_the_rule_unchanged():
    shipped = read_lines(NATURAL_DOCS)
    assert len(set(shipped)) == len(shipped)
    assert [q for q in shipped if questions(q) != [q]] == []
