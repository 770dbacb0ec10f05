"""``merc features``: extract text/audio/visual features for a dataset and write it in the user format."""

from __future__ import annotations

import argparse
from typing import Any

from merc.cli import add_command

_MODALITY_FLAGS = {"t": "text", "a": "audio", "v": "visual"}
_ALIASES = {"t": "t", "text": "t", "a": "a", "audio": "a", "v": "v", "visual": "v", "video": "v"}


def parse_extractor_options(items: list[str]) -> dict[str, dict[str, Any]]:
    """``["t.model=all-mpnet-base-v2", "a.n_mfcc=13"]`` → ``{"t": {"model": ...}, "a": {"n_mfcc": 13}}``."""
    import yaml

    from merc.errors import ConfigError

    out: dict[str, dict[str, Any]] = {}
    for item in items:
        key, sep, value = item.partition("=")
        modality, dot, name = key.partition(".")
        if not sep or not dot or modality not in _ALIASES or not name:
            raise ConfigError(f"extractor option '{item}' must look like t.KEY=VALUE (modality t, a or v)")
        try:
            parsed = yaml.safe_load(value) if value.strip() else ""
        except yaml.YAMLError:
            parsed = value
        out.setdefault(_ALIASES[modality], {})[name] = parsed
    return out


def _run(args: argparse.Namespace) -> int:
    from merc.data.formats.user_format import save_user_dataset
    from merc.data.loading import open_dataset
    from merc.errors import ConfigError
    from merc.features import DEFAULT_EXTRACTORS, FeatureCache, build_extractors, extract_features

    names = {m: getattr(args, flag) for m, flag in _MODALITY_FLAGS.items() if getattr(args, flag)}
    names = {m: DEFAULT_EXTRACTORS[m] if name == "default" else name for m, name in names.items()}
    if not names:
        raise ConfigError("choose at least one extractor: --text minilm, --audio librosa or --visual image-stats")
    options = parse_extractor_options(args.extractor_options)
    stray = sorted(set(options) - set(names))
    if stray:
        raise ConfigError(f"extractor options given for modality {', '.join(stray)} without an extractor for it")
    levels = {"t": args.text_level, "a": args.audio_level, "v": args.visual_level}
    specs = {m: {"name": name, "options": {**({"level": levels[m]} if levels[m] else {}), **options.get(m, {})}}
             for m, name in names.items()}
    extractors = build_extractors(specs)
    dataset = open_dataset(args.data, args.data_path, args.format)
    cache = None if args.no_cache else FeatureCache(args.cache_dir, chunk_size=args.chunk_size,
                                                   progress=not args.no_progress)
    result = extract_features(dataset, extractors, cache, use_cache=not args.no_cache, chunk_size=args.chunk_size,
                              progress=not args.no_progress)
    table, npz = save_user_dataset(result, args.out)
    dims = ", ".join(f"{m}: {d}" for m, d in result.dims.items())
    print(f"[merc] {result.name}: {len(result)} dialogues, {result.num_utterances} utterances; features {dims}")
    if cache is not None:
        s = cache.stats
        print(f"[merc] cache {cache.root}: {s.hits} chunk(s) reused, {s.computed} extracted, {s.rebuilt} rebuilt")
    print(f"[merc] wrote {table} and {npz}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = add_command(sub, "features", "extract text/audio/visual features and write a dataset in the user format", _run,
                    description="Extract features for DATA (a catalog name such as meld, or a data file/folder, "
                                "e.g. a conversations.csv with text/audio/video columns) and write it as an "
                                "utterance table plus .npz features (see docs/features.md). Extraction is cached "
                                "and resumable.")
    p.add_argument("data", metavar="DATA", help="catalog name (merc datasets) or path to a data file/folder")
    p.add_argument("--data-path", dest="data_path", metavar="PATH", help="local files for a catalog dataset")
    p.add_argument("--format", help="force the input file format instead of auto-detection")
    p.add_argument("--text", metavar="EXTRACTOR", help="text extractor: minilm, sentence-transformers, wordllama")
    p.add_argument("--audio", metavar="EXTRACTOR", help="audio extractor: librosa, opensmile")
    p.add_argument("--visual", metavar="EXTRACTOR",
                   help="visual extractor: fer (facial expressions; needs merc[visual] and fer), image-stats; "
                        "'default' picks fer when installed, else image-stats")
    p.add_argument("--text-level", choices=("utterance", "frame"), help="token-level output (frame) for DRKF")
    p.add_argument("--audio-level", choices=("utterance", "frame"), help="frame-level descriptors for DRKF")
    p.add_argument("--visual-level", choices=("utterance", "frame"), help="per-frame descriptors")
    p.add_argument("-O", "--extractor-option", dest="extractor_options", action="append", default=[],
                   metavar="M.KEY=VALUE", help="extractor option, e.g. -O t.model=all-mpnet-base-v2 -O a.n_mfcc=13 "
                                               "(repeatable; M is t, a or v)")
    p.add_argument("--out", required=True, metavar="FILE", help="output table (.csv or .jsonl); features go to .npz")
    p.add_argument("--cache-dir", dest="cache_dir", metavar="DIR",
                   help="feature cache (default $MERC_CACHE_DIR/features or ~/.cache/merc/features)")
    p.add_argument("--no-cache", dest="no_cache", action="store_true", help="extract without reading/writing the cache")
    p.add_argument("--chunk-size", dest="chunk_size", type=int, default=256, help="utterances per cache chunk")
    p.add_argument("--no-progress", dest="no_progress", action="store_true", help="hide progress bars")
