"""The filter's commands: fit-safety (refit the probe of an adapter) and calibrate-safety (re-set its threshold)."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from ..ui import handle_errors, out, print_json
from . import ConfigOpt, IndexOpt, JsonOpt, _encoder, _index_dir, app

RateOpt = typer.Option(0.01, "--rate", help="Target false-flag rate on the benign queries [default: 0.01].")


def _check_rate(rate: float) -> None:
    from ..errors import UsageError

    if not 0.0 <= rate < 0.5:
        raise UsageError(f"--rate must be in [0, 0.5), not {rate}")


@app.command("fit-safety")
@handle_errors
def fit_safety(queries: Optional[Path] = typer.Option(None, "--queries", help="The benign queries the adapter was trained on, if not the pool's (.txt, .jsonl or .csv)."),
               rate: float = RateOpt, config: Optional[str] = ConfigOpt, json: bool = JsonOpt):
    """Refit the harmful-query probe of the configured adapter and write safety.json beside it.

    No answers are generated and the adapter is not retrained: one forward pass per fitting text
    (cached), the feature set chosen on a validation split, the threshold set for --rate false flags
    on held-out natural and everyday questions.

    Examples:
      genretrieve fit-safety
      genretrieve fit-safety --config qwen2.5-coder-1.5b --rate 0.02 --json
    """
    from ..config import load_config
    from ..errors import UsageError
    from ..query_file import read_query_file
    from ..train.run import refit_safety_probe
    from ..ui import progress

    _check_rate(rate)
    user_queries = read_query_file(queries) if queries else None
    cfg = load_config(config)
    encoder = _encoder(cfg)
    folder = encoder.card.get("path")
    if not folder or not encoder.card.get("trained"):
        raise UsageError("fit-safety needs a trained adapter folder (model.adapter in the config); this one is built in "
                         "and untrained")
    with progress() as bar:
        task = bar.add_task("safety features", total=None)
        probe = refit_safety_probe(encoder, cfg, Path(folder), user_queries, rate,
                                   lambda done, total: bar.update(task, completed=done, total=total))
    best = max(probe.fit["validation"], key=lambda r: (r["score"], r["auroc"]))
    summary = {"path": str(Path(folder) / "safety.json"), "features": probe.features, "l2": probe.fit["l2"],
               "threshold": probe.threshold, "calibration": probe.calibration, "validation": best,
               "fingerprint": probe.fingerprint, "seconds": probe.fit["seconds"]}
    if json:
        return print_json(summary)
    out.print(f"safety probe written to [bold]{summary['path']}[/bold] ({probe.features}, l2 {probe.fit['l2']:g}, "
              f"{probe.fit['seconds']:.0f} s)")
    out.print(f"validation: {best['harmful_flagged']:.1%} of harmful prompts flagged, {best['borderline_flagged']:.1%} of "
              f"borderline ones, AUROC {best['auroc']:.3f}; threshold {probe.threshold:.4f} for "
              f"{rate:.1%} false flags on {probe.calibration['n']} held-out natural and everyday questions")


@app.command("calibrate-safety")
@handle_errors
def calibrate_safety(benign: Path = typer.Option(..., "--benign", help="Benign queries from your domain (.txt, .jsonl or .csv)."),
                     rate: float = RateOpt,
                     out_dir: Optional[Path] = typer.Option(None, "--out", help="Where to write safety-calibration.json: an index "
                                                            "folder or the adapter folder [default: the index]."),
                     index: Optional[Path] = IndexOpt, config: Optional[str] = ConfigOpt, json: bool = JsonOpt):
    """Re-set the filter's threshold on your own benign queries, for a stated false-flag rate.

    Only the threshold changes (the probe is not refitted); it is written atomically to
    safety-calibration.json in the index folder (search with that index uses it) or the adapter
    folder (every search with that adapter uses it, unless the index has its own).

    Examples:
      genretrieve calibrate-safety --benign my_questions.txt
      genretrieve calibrate-safety --benign queries.jsonl --rate 0.005 --index indexes/docs --json
    """
    from ..errors import UsageError
    from ..safety.calibrate import calibrate_safety as calibrate, check_resolvable, file_source
    from ..query_file import read_query_file

    _check_rate(rate)
    texts = [q["text"] for q in read_query_file(benign)]
    check_resolvable(len(texts), rate)
    folder = out_dir or _index_dir(index)
    if not folder.is_dir() or not ((folder / "manifest.json").exists() or (folder / "adapter.json").exists()):
        raise UsageError(f"--out {folder} is neither an index folder nor an adapter folder: search would not read a "
                         "calibration there")
    encoder = _encoder(config)
    record = calibrate(encoder, texts, rate, folder, file_source(benign, texts))
    if json:
        return print_json(record)
    out.print(f"threshold {record['previous_threshold']:.4f} -> [bold]{record['threshold']:.4f}[/bold]: "
              f"{record['false_flag_rate']:.1%} of your {record['n']} queries flagged (target {rate:.1%})")
    out.print(f"written to {record['path']}")
