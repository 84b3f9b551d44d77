"""`genretrieve serve`: the models stay loaded behind HTTP, so a question costs a forward pass, not a load.

batching.py  requests that arrive together share one call into the models (one worker thread)
service.py   search and embed over one encoder and one Searcher, through the batcher
app.py       the FastAPI routes: /search, /v1/embeddings (OpenAI schema), /health, /info, the page
page.py      the server-rendered search page at /
server.py    host checks, binding the socket before the load, the uvicorn server
"""
from .app import create_app
from .service import Service

__all__ = ["Service", "create_app"]
