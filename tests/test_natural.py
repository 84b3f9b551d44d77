"""The natural benign questions: parsed from the FAQs' markup, and no copy of a test query."""
import json

from genretrieve.exclusion import ExclusionIndex
from genretrieve.safety.data import NATURAL_FAQS, read_lines
from tools.build_natural import pod_questions, rst_questions


def test_rst_and_pod_titles_become_questions():
    rst = "How do I X?\n===========\n\nbody\n\nNot a question\n--------------\n"
    assert rst_questions(rst) == ["How do I X?"]
    pod = "=head1 NAME\n\n=head2 How do I open C<E<gt>file>?\n\ntext\n\n=head2 Perl Books\n=head2 Why L<perlfunc/B<open>>?\n"
    assert pod_questions(pod) == ["How do I open >file?", "Why perlfunc/open?"]


def test_shipped_natural_questions_are_real_and_not_test_data():
    questions = read_lines(NATURAL_FAQS)  # as the safety data reads it
    assert len(questions) >= 450 and len(set(questions)) == len(questions)
    assert all(q.endswith("?") and "<" not in q.replace("<*>", "").replace("<<", "").replace("<$", "")
               or "<module" in q for q in questions)
    dev = [json.loads(line)["text"] for line in (NATURAL_FAQS.parent / "devset" / "queries.jsonl").read_text().splitlines()]
    borderline = [line for line in (NATURAL_FAQS.parent / "borderline.txt").read_text().splitlines() if line.strip()]
    protected = ExclusionIndex(dev + borderline)
    assert not [q for q in questions if protected.hits(q)]
