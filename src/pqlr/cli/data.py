"""`pqlr data`: fetch public KWS datasets, generate the synthetic sets, summarise any dataset spec."""
from __future__ import annotations

import argparse


def add_parser(sub) -> None:
    p = sub.add_parser("data", help="fetch, synthesize or inspect keyword-spotting datasets",
                       description="Fetch Speech Commands / FSDD, generate kws_english / kws_chinese, "
                                   "or print a dataset's classes and split sizes.")
    verbs = p.add_subparsers(dest="verb", metavar="VERB", required=True)
    f = verbs.add_parser("fetch", help="download and unpack a public dataset")
    f.add_argument("name", choices=("speech_commands", "fsdd"))
    f.add_argument("--dest", required=True, help="folder to unpack into")
    f.add_argument("--keep-archive", action="store_true", help="keep the downloaded archive")
    s = verbs.add_parser("synth", help="generate (and cache) a synthetic keyword set")
    s.add_argument("name", choices=("kws_english", "kws_chinese"))
    s.add_argument("--per-class", type=int, default=None, help="clips per class (default 400)")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--cache-dir", default=None, help="cache folder (default $PQLR_CACHE or ~/.cache/pqlr)")
    i = verbs.add_parser("info", help="load a dataset spec and print its classes and splits")
    i.add_argument("spec", help="speech_commands:PATH | fsdd:PATH | kws_english[:N] | kws_chinese[:N]")
    i.add_argument("--words", default=None, help="comma-separated keywords (speech_commands)")
    i.add_argument("--holdout-speaker", default=None, help="speaker held out as the test set (fsdd)")
    i.add_argument("--seed", type=int, default=0)
    i.add_argument("--cache-dir", default=None)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..errors import PqlrError

    if args.verb == "fetch":
        from ..data.download import fetch_fsdd, fetch_speech_commands

        fetch = fetch_speech_commands if args.name == "speech_commands" else fetch_fsdd
        path = fetch(args.dest, keep_archive=args.keep_archive)
        prefix = "speech_commands" if args.name == "speech_commands" else "fsdd"
        print(f"{args.name}: ready at {path}  (use --dataset {prefix}:{path})")
        return 0
    from ..data import load_dataset

    if args.verb == "synth":
        if args.per_class is not None and args.per_class <= 0:
            raise PqlrError(f"--per-class must be positive, got {args.per_class}")
        data = load_dataset(args.name, per_class=args.per_class, seed=args.seed, cache_dir=args.cache_dir)
    else:
        words = [w.strip() for w in args.words.split(",") if w.strip()] if args.words else None
        data = load_dataset(args.spec, words=words, holdout_speaker=args.holdout_speaker, seed=args.seed,
                            cache_dir=args.cache_dir)
    print(data.summary())
    print(f"source: {data.info.get('source')}")
    return 0
