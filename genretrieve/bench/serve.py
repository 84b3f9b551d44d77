"""`bench serve`: a load test of `genretrieve serve` on loopback, against one client at a time in the same run.

A real server process (`genretrieve serve`, as a user starts it) serves a temp index of ~N
stdlib-docstring chunks. For each mode: R requests of distinct queries from 1 client, then the
same R from C concurrent clients (keep-alive HTTP, one connection each): latency p50/p99,
requests/s, errors. Also measured: start to first answer (process spawn to the first /search
200) against the cold `genretrieve search` wall time, the server's memory after the load,
Searcher.search in the benchmark's own process on the same queries (the cost without HTTP), and
GET /health (HTTP and thread scheduling alone, which a busy machine inflates).
"""
from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import tempfile
import threading
import time
import urllib.parse
from pathlib import Path

import numpy as np

TARGETS = {"teacher_p50_ms": 20.0, "gen_p50_ms": 80.0, "speedup": 3.0}


def _ms(values: list[float]) -> dict:
    return {"p50_ms": float(np.percentile(values, 50)), "p99_ms": float(np.percentile(values, 99))}


def start_server(index_dir: Path, config_arg, timeout: float = 600.0) -> tuple[subprocess.Popen, str, float]:
    """Spawn `genretrieve serve --port 0`; returns the process, its URL, and seconds to the first answer."""
    from .speed_index import genretrieve_command

    args = [*genretrieve_command(), "serve", "--index", str(index_dir), "--port", "0"]
    args += ["--config", str(config_arg)] if config_arg else []
    start = time.perf_counter()
    process = subprocess.Popen(args, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    url, lines = None, []
    for line in process.stderr:  # "serving http://127.0.0.1:PORT/ ..." once the models are warm
        lines.append(line)
        if line.startswith("serving "):
            url = line.split()[1].rstrip("/")
            break
    if url is None:
        process.wait(10)
        raise RuntimeError("genretrieve serve did not start:\n" + "".join(lines[-30:]))
    threading.Thread(target=lambda: [None for _ in process.stderr], daemon=True).start()  # keep the pipe drained
    status, _ = request(url, "/search", {"q": "warm-up", "k": 1})
    if status != 200:
        stop_server(process)
        raise RuntimeError(f"the first /search answered {status}")
    return process, url, time.perf_counter() - start


def stop_server(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGINT)
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def request(url: str, path: str, params: dict, connection: http.client.HTTPConnection | None = None) -> tuple[int, bytes]:
    parsed = urllib.parse.urlsplit(url)
    conn = connection or http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=120)
    try:
        conn.request("GET", f"{path}?{urllib.parse.urlencode(params)}")
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        if connection is None:
            conn.close()


def load(url: str, queries: list[str], clients: int, params: dict) -> dict:
    """Every query once, spread over `clients` threads with one keep-alive connection each."""
    parsed = urllib.parse.urlsplit(url)
    latencies, errors, lock = [], [], threading.Lock()
    shares = [queries[i::clients] for i in range(clients)]
    barrier = threading.Barrier(clients + 1)

    def client(share):
        conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=120)
        barrier.wait()
        for q in share:
            begin = time.perf_counter()
            try:
                status, body = request(url, "/search", {**params, "q": q}, conn)
                ok = status == 200 and "hits" in json.loads(body)
            except (OSError, http.client.HTTPException, ValueError) as exc:
                ok, status = False, repr(exc)
                conn.close()
                conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=120)
            with lock:
                (latencies if ok else errors).append((time.perf_counter() - begin) * 1000 if ok else status)
        conn.close()

    threads = [threading.Thread(target=client, args=(share,)) for share in shares]
    for t in threads:
        t.start()
    barrier.wait()
    start = time.perf_counter()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - start
    return {"clients": clients, "requests": len(queries), "errors": len(errors), "error_samples": errors[:3],
            "seconds": seconds, "requests_per_s": len(queries) / seconds, **(_ms(latencies) if latencies else {})}


def in_process_latency(encoder, cfg, index_dir: Path, queries: list[str], modes, k: int) -> dict:
    """p50/p99 of Searcher.search in this process: what a request costs without HTTP and batching (the
    config's safety level, as the server applies it)."""
    from ..search import Searcher

    searcher, report = Searcher(index_dir, encoder, cfg), {}
    try:
        for mode in modes:
            searcher.search(queries[:1], k, mode, safety=cfg.search.safety)  # warm-up
            times = []
            for q in queries:
                begin = time.perf_counter()
                searcher.search([q], k, mode, safety=cfg.search.safety)
                times.append((time.perf_counter() - begin) * 1000)
            report[mode] = {**_ms(times), "queries": len(queries)}
    finally:
        searcher.folder.close()
    return report


def health_latency(url: str, n: int = 100) -> dict:
    """GET /health over one keep-alive connection: HTTP and scheduling alone, no model, no worker thread."""
    parsed = urllib.parse.urlsplit(url)
    conn, times = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=60), []
    try:
        for _ in range(n):
            begin = time.perf_counter()
            request(url, "/health", {}, conn)
            times.append((time.perf_counter() - begin) * 1000)
    finally:
        conn.close()
    return _ms(times)


def memory_mib(pid: int) -> dict:
    """Resident and peak resident memory of a process (Linux /proc; empty elsewhere)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return {}
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    return {name: int(fields[key].split()[0]) / 1024 for name, key in (("rss_mib", "VmRSS"), ("peak_rss_mib", "VmHWM"))
            if key in fields}


def run_serve_bench(config=None, n_chunks: int = 300, clients: int = 8, requests: int = 200, modes=("teacher", "gen"),
                    k: int = 10, cold_runs: int = 1, log=None) -> dict:
    from ..config import load_config
    from ..errors import UsageError
    from ..index.build import build_index
    from ..models.load import load_encoder
    from ..search import MODES
    from .speed_index import cold_search, write_corpus
    from .texts import queries as make_queries

    log = log or (lambda msg: None)
    unknown = [m for m in modes if m not in MODES]
    if unknown or not modes:
        raise UsageError(f"--modes takes a comma-separated subset of {','.join(MODES)}, not {','.join(modes)!r}")
    if clients < 2 or requests < clients:
        raise UsageError("--clients must be at least 2 and --requests at least --clients")
    cfg = load_config(config)
    pool = make_queries(requests)
    qs = [pool[i % len(pool)] + ("" if i < len(pool) else f" ({i // len(pool)})") for i in range(requests)]
    report = {"machine": {"cpus": os.cpu_count()}, "clients": clients, "requests": requests, "k": k, "safety": cfg.search.safety,
              "targets": TARGETS, "modes": {}}
    with tempfile.TemporaryDirectory(prefix="genretrieve-serve-bench-") as tmp:
        work = Path(tmp)
        log(f"serve: indexing ~{n_chunks} chunks")
        encoder = load_encoder(cfg)
        _, report["corpus"] = write_corpus(work / "docs", n_chunks, encoder.backbone.tokenizer, cfg)
        build_index(work / "docs", work / "index", encoder, cfg)
        report["dtype"] = str(encoder.backbone.dtype).removeprefix("torch.")
        report["in_process"] = in_process_latency(encoder, cfg, work / "index", qs[:50], modes, k)
        del encoder  # the server holds the models from here on
        log("serve: cold CLI search, for comparison")
        report["cold_cli"] = cold_search(work / "index", qs[0], config, cold_runs, ())
        log("serve: starting genretrieve serve")
        process, url, first = start_server(work / "index", config)
        try:
            report["start_to_first_answer_s"] = first
            report["memory_after_start"] = memory_mib(process.pid)
            report["health"] = health_latency(url)
            for mode in modes:
                params = {"mode": mode, "k": k}
                for q in qs[:5]:
                    request(url, "/search", {**params, "q": q + " warm-up"})
                log(f"serve: {mode}, {requests} requests from 1 client")
                one = load(url, qs, 1, params)
                log(f"serve: {mode}, {requests} requests from {clients} clients")
                many = load(url, qs, clients, params)
                target = TARGETS.get(f"{mode}_p50_ms")
                report["modes"][mode] = {
                    "one": one, "many": many, "speedup": many["requests_per_s"] / one["requests_per_s"],
                    "target_p50_ms": target, "p50_pass": None if target is None else one.get("p50_ms", 1e9) <= target}
            status, body = request(url, "/info", {})
            report["batching"] = json.loads(body)["batching"] if status == 200 else None
            report["memory_after_load"] = memory_mib(process.pid)
        finally:
            stop_server(process)
    report["start_pass"] = report["start_to_first_answer_s"] <= report["cold_cli"]["median_s"]
    return report


def serve_table(report: dict):
    from rich.table import Table

    def verdict(ok):
        return "" if ok is None else ("[green]pass[/green]" if ok else "[red]miss[/red]")

    table = Table(title=f"genretrieve bench serve: {report['requests']} /search requests per row, k={report['k']}, "
                        f"{report['corpus']['chunks']}-chunk index, safety {report.get('safety', 'off')}, {report['dtype']}, "
                        f"{report['machine']['cpus']} CPUs")
    for column in ("mode", "clients", "p50 ms", "p99 ms", "in-process p50", "req/s", "errors", "vs 1 client", "target"):
        table.add_column(column, justify="left" if column == "mode" else "right")
    for mode, row in report["modes"].items():
        for key in ("one", "many"):
            r = row[key]
            if key == "one":
                target = f"p50 ≤{row['target_p50_ms']:.0f} {verdict(row['p50_pass'])}" if row["target_p50_ms"] else ""
                ratio = ""
            else:
                ok = row["speedup"] >= TARGETS["speedup"] and r["errors"] == 0
                target, ratio = f"≥{TARGETS['speedup']:.0f}x, 0 errors {verdict(ok)}", f"{row['speedup']:.2f}x"
            inner = f"{report['in_process'][mode]['p50_ms']:.1f}" if key == "one" else ""
            table.add_row(mode, str(r["clients"]), f"{r.get('p50_ms', float('nan')):.1f}",
                          f"{r.get('p99_ms', float('nan')):.1f}", inner, f"{r['requests_per_s']:.1f}", str(r["errors"]),
                          ratio, target)
    cold, mem, batching = report["cold_cli"], report.get("memory_after_load", {}), report.get("batching") or {}
    mean_batch = batching.get("items", 0) / max(batching.get("calls", 0), 1)
    table.caption = (f"GET /health p50 {report['health']['p50_ms']:.1f} ms (HTTP alone); start to first answer "
                     f"{report['start_to_first_answer_s']:.2f} s vs cold `genretrieve search` "
                     f"{cold['median_s']:.2f} s {verdict(report['start_pass'])}; server RSS after the load "
                     f"{mem.get('rss_mib', float('nan')):.0f} MiB (peak {mem.get('peak_rss_mib', float('nan')):.0f}), "
                     f"cold CLI peak {cold['peak_rss_mib']:.0f} MiB; batches: {batching.get('calls', 0)} model calls, "
                     f"mean {mean_batch:.1f} queries, largest {batching.get('largest_batch', 0)}")
    return table


def write_report(report: dict, out_dir) -> list:
    from rich.console import Console

    from .report import write_report as report_files

    console = Console(record=True, width=140, file=open(os.devnull, "w"))
    console.print(serve_table(report))
    markdown = "# genretrieve bench serve\n\n```\n" + console.export_text() + "```\n"
    bars = {f"{mode}, {row[key]['clients']} client{'s' if key == 'many' else ''}": row[key]["requests_per_s"]
            for mode, row in report["modes"].items() for key in ("one", "many")}
    return report_files(out_dir, report, markdown, "throughput.png", bars, "requests/s", "/search requests/s", ylim=None)


