"""``merc serve``: the REST API and the page for a model, on 127.0.0.1 unless told otherwise."""

from __future__ import annotations

import argparse

from merc.cli import add_command


def _run(args: argparse.Namespace) -> int:
    from merc.errors import ConfigError
    from merc.serve import load_predictor

    for flag in ("max_body_bytes", "max_utterances", "max_text_chars", "max_batch_utterances", "batch_size"):
        if getattr(args, flag) < 1:
            raise ConfigError(f"--{flag.replace('_', '-')} must be ≥ 1, got {getattr(args, flag)}")
    if args.max_wait_ms < 0:
        raise ConfigError(f"--max-wait-ms must be ≥ 0, got {args.max_wait_ms}")
    if not 0 <= args.port <= 65535:
        raise ConfigError(f"--port must be in 0-65535, got {args.port}")
    try:
        import uvicorn

        from merc.serve.app import Limits, create_app
    except ImportError:
        raise ConfigError("merc serve needs the serve extra: pip install 'merc[serve]'") from None
    predictor, name = load_predictor(args.model, batch_size=args.batch_size, cache_dir=args.cache_dir)
    limits = Limits(max_body_bytes=args.max_body_bytes, max_utterances=args.max_utterances,
                    max_text_chars=args.max_text_chars, max_batch_utterances=args.max_batch_utterances,
                    max_wait_ms=args.max_wait_ms)
    app = create_app(predictor, name, limits)
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print(f"[merc] warning: listening on {args.host}: the API has no authentication")
    print(f"[merc] serving {name} on http://{args.host}:{args.port}/ (API docs at /docs); Ctrl-C stops")
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level, access_log=args.access_log)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = add_command(sub, "serve", "serve a model: REST API (POST /predict) and a web page", _run,
                    description="Serve MODEL (a model directory written by merc train, or a ready model name) "
                                "over HTTP: POST /predict labels a conversation (JSON) with emotions, class scores "
                                "and explanations; GET /health, GET /model, GET /docs (OpenAPI); GET / is a page "
                                "to paste or upload conversations. Offline; binds 127.0.0.1 by default "
                                "(see docs/serve.md).")
    p.add_argument("model", metavar="MODEL", help="model directory (e.g. runs/meld/seed_0) or ready model name")
    p.add_argument("--host", default="127.0.0.1", help="interface to bind (0.0.0.0 exposes it to the network)")
    p.add_argument("--port", type=int, default=8000, help="TCP port (0 picks a free one)")
    p.add_argument("--max-body-bytes", dest="max_body_bytes", type=int, default=1 << 20, help="request body limit")
    p.add_argument("--max-utterances", dest="max_utterances", type=int, default=256, help="utterances per request")
    p.add_argument("--max-text-chars", dest="max_text_chars", type=int, default=2000, help="characters per text")
    p.add_argument("--max-batch-utterances", dest="max_batch_utterances", type=int, default=1024,
                   help="utterances per micro-batch of concurrent requests")
    p.add_argument("--max-wait-ms", dest="max_wait_ms", type=float, default=5.0,
                   help="how long a request waits for others to share its forward pass")
    p.add_argument("--batch-size", dest="batch_size", type=int, default=16, help="dialogues per forward pass")
    p.add_argument("--cache-dir", dest="cache_dir", metavar="DIR", help="feature cache (default: none, in memory)")
    p.add_argument("--log-level", dest="log_level", default="warning",
                   choices=("critical", "error", "warning", "info", "debug"), help="server log level")
    p.add_argument("--access-log", dest="access_log", action="store_true", help="log every request")
