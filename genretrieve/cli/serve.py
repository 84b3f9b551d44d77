"""The serve command: load the models once, then answer /search, /v1/embeddings and the page over HTTP."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from ..ui import err, handle_errors
from . import ConfigOpt, IndexOpt, _encoder, _index_dir, app


@app.command()
@handle_errors
def serve(index: Optional[Path] = IndexOpt,
          host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on; non-loopback needs --allow-remote."),
          port: int = typer.Option(8765, "--port", "-p", min=0, max=65535, help="Port (0: any free port)."),
          allow_remote: bool = typer.Option(False, "--allow-remote", help="Allow a non-loopback --host (there is no authentication)."),
          batch_window_ms: float = typer.Option(2.0, "--batch-window-ms", min=0.0, max=1000.0,
                                                help="How long an idle server waits to batch requests that arrive together."),
          max_batch: int = typer.Option(64, "--max-batch", min=1, help="Most texts in one batched forward pass."),
          config: Optional[str] = ConfigOpt):
    """Serve search and embeddings over HTTP with the models kept warm, and a search page at /.

    Endpoints: GET /search?q=&k=&mode=&path=&safety= (the JSON of search --json), POST /v1/embeddings
    (OpenAI schema; model gen, teacher or gen-document), GET /health, GET /info, and the page at /.

    Examples:
      genretrieve serve --index indexes/default
      genretrieve serve --port 9000 --config qwen2.5-coder-1.5b
      curl 'http://127.0.0.1:8765/search?q=how+do+I+reset+my+password&k=3'
      genretrieve serve --host 0.0.0.0 --allow-remote     # reachable from the network: no authentication!
    """
    from ..config import load_config
    from ..serve import Service, create_app
    from ..serve.server import bind, check_host, make_server

    remote = check_host(host, allow_remote)
    cfg = load_config(config)  # named configs and bad keys fail here, before the socket and the models
    index_dir = _index_dir(index)
    if not (index_dir / "manifest.json").exists():
        err.print(f"[yellow]warning:[/yellow] no index at {index_dir} yet: /search answers 503 until one is built "
                  f"(genretrieve index PATH --index {index_dir}); /v1/embeddings works")
    sock = bind(host, port)
    if remote:
        err.print(f"[red]warning:[/red] listening on {host}, reachable from other machines, with no authentication")
    encoder = _encoder(cfg)
    bound_host, bound_port = sock.getsockname()[:2]
    url = f"http://{f'[{bound_host}]' if ':' in bound_host else bound_host}:{bound_port}"

    def ready():
        err.print(f"serving {url}/ (search page), /search, /v1/embeddings, /health, /info; Ctrl-C stops", highlight=False)

    service = Service(encoder, index_dir, cfg, window=batch_window_ms / 1000, max_items=max_batch, on_ready=ready)
    try:
        make_server(create_app(service), sock).run(sockets=[sock])
    except KeyboardInterrupt:  # uvicorn re-raises the Ctrl-C it handled: stopping a server is a normal end
        pass
    err.print("stopped")
