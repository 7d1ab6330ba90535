"""The ``avcmr`` command: ``avcmr query`` (retrieval on your own clip) and ``avcmr methods``.

    avcmr query my_clip.mp4                                        # the only results/<dataset> with models
    avcmr query my_clip.mp4 --results results/synthetic            # best trained model, test clips
    avcmr query dog.wav --model results/vegas/models/ours_seed0.joblib --candidates all -k 20 --json
    avcmr methods

Exit codes: 0 success; 2 bad input (not a media file, no audio track, too short, missing or
incompatible model file, bad arguments), with one line on stderr saying why; 1 anything else.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import sys
import threading
import warnings
from collections.abc import Sequence
from contextlib import contextmanager, nullcontext
from pathlib import Path

EXIT_BAD_INPUT = 2


def _query_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "query", help="rank a dataset's clips of the other modality against your own audio or video file",
        description="Which clips match this sound? Decodes MEDIA, computes its features as the workflow does "
                    "(VGGish for audio, InceptionV3 + the dataset's PCA for pictures), embeds them with a trained "
                    "model and prints the top-k clips of the other modality.")
    parser.add_argument("media", metavar="MEDIA", help="an audio or video file (anything ffmpeg reads)")
    source = parser.add_argument_group("model (one of)")
    source.add_argument("--model", help="a model file results/<dataset>/models/<method>_seed<n>.joblib")
    source.add_argument("--results", metavar="DIR", help="a dataset's results folder (results/<dataset>): picks "
                        "its model of --method/--seed (default: ours, else the best trained method by MAP). "
                        "Default: the only folder results/<dataset> of the current directory with trained models")
    parser.add_argument("--method", help="with --results: the method's model to use")
    parser.add_argument("--seed", type=int, help="with --results: the training seed (default: the smallest)")
    parser.add_argument("--features", help="candidate features table (default: features.parquet of the model's "
                        "dataset folder)")
    parser.add_argument("--candidates", choices=["test", "all"], default="test",
                        help="rank the test clips (default) or all clips of the dataset")
    parser.add_argument("--by", choices=["audio", "visual"], default="audio", dest="query_modality",
                        help="query with the file's sound (default; ranks visual items) or its pictures (ranks "
                             "audio items)")
    parser.add_argument("-k", "--top", type=int, default=10, dest="k", help="how many clips to list (default 10)")
    parser.add_argument("--json", action="store_true", help="print JSON (query facts + results) instead of a table")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="show progress (timings of each step) and TensorFlow's own start-up messages")
    parser.set_defaults(handler=_run_query)


def _methods_parser(subparsers) -> None:
    parser = subparsers.add_parser("methods", help="list the registered retrieval methods",
                                   description="The method names accepted by the config's evaluation.methods.")
    parser.set_defaults(handler=_run_methods)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="avcmr", description="Audio-visual cross-modal retrieval (avcmr).")
    from avcmr import __version__

    parser.add_argument("--version", action="version", version=f"avcmr {__version__}")
    subparsers = parser.add_subparsers(title="commands", metavar="COMMAND")
    _query_parser(subparsers)
    _methods_parser(subparsers)
    return parser


def _fail(command: str, message: str) -> int:
    print(f"avcmr {command}: error: {message}", file=sys.stderr)
    return EXIT_BAD_INPUT


def quiet_backends(verbose: bool) -> None:
    """Silence TensorFlow's and absl's start-up lines (they would bury the answer) unless ``verbose``.

    Must run before TensorFlow is imported: its C++ logging reads TF_CPP_MIN_LOG_LEVEL once, at load.
    A value the user set in the environment is kept.
    """
    if verbose:
        logging.basicConfig(level=logging.INFO, format="# %(asctime)s %(name)s: %(message)s", stream=sys.stderr)
        return
    # TF's C++ (absl) INFO and WARNING lines, "All log messages before absl::InitializeLog()" and
    # the CPU-feature note included; errors still show.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    # Python-side: TF's and absl's loggers and the Keras/TF deprecation warnings.
    for name in ("tensorflow", "absl", "keras", "h5py"):
        logging.getLogger(name).setLevel(logging.ERROR)
    for module in ("tensorflow", "keras", "absl", "google.protobuf"):
        warnings.filterwarnings("ignore", module=rf"{re.escape(module)}(\.|$)")


# absl's lines written before its logging is initialised ("I0000 00:00:1796103640.317601   29017
# port.cc:153] oneDNN custom operations are on…", and the notice that precedes them): TF_CPP_MIN_LOG_LEVEL does
# not reach them. Only INFO (I) and WARNING (W) lines match; errors pass.
ABSL_EARLY_LINE = re.compile(
    r"WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    r"|[IW]\d{4} \d\d:\d\d:\d+\.\d+ +\d+ \S+:\d+\] .*")


@contextmanager
def absl_early_lines_dropped():
    """While TensorFlow loads, file descriptor 2 goes through a pipe that drops absl's early INFO and
    WARNING lines and passes every other line on (TensorFlow prints the oneDNN line on some CPUs
    and not on others, whatever TF_CPP_MIN_LOG_LEVEL says)."""
    sys.stderr.flush()
    original = os.dup(2)
    read_end, write_end = os.pipe()
    os.dup2(write_end, 2)
    os.close(write_end)

    def forward():
        with os.fdopen(read_end, "rb") as pipe:
            for line in pipe:
                if not ABSL_EARLY_LINE.fullmatch(line.decode(errors="replace").rstrip("\r\n")):
                    os.write(original, line)

    forwarder = threading.Thread(target=forward, name="stderr-filter", daemon=True)
    forwarder.start()
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(original, 2)  # the pipe's last write end closes: the forwarder reads to its end
        forwarder.join(timeout=5)
        os.close(original)


def _run_query(args) -> int:
    quiet_backends(args.verbose)
    from avcmr.query import QueryInputError, default_results_dir, run_query

    if args.model and args.results:
        return _fail("query", "give either --model or --results, not both")
    try:
        if args.model is None and args.results is None:
            args.results = default_results_dir(Path.cwd())
            print(f"# results: {args.results} (the only results folder here with trained models; choose "
                  "another with --results)", file=sys.stderr)
        with nullcontext() if args.verbose else absl_early_lines_dropped():
            result = run_query(args.media, model_path=args.model, results_dir=args.results, method=args.method,
                               seed=args.seed, features_path=args.features, candidates=args.candidates,
                               query_modality=args.query_modality, k=args.k)
    except QueryInputError as error:
        return _fail("query", str(error))
    if args.json:
        print(json.dumps(result.to_json_dict(), indent=2, default=str))
        return 0
    info = result.info
    print(f"# query: {info['query']} ({info['query_modality']}, {info['duration_s']:.2f} s) → "
          f"{info['candidates']} of {info['dataset']} ({info['n_candidates']} clips)", file=sys.stderr)
    print(f"# model: {info['model']} ({info['method']}, seed {info['seed']}); score = {info['similarity']}",
          file=sys.stderr)
    if info["random_weights"]:
        print("# WARNING: the model's features come from RANDOM backbone weights (pipeline check, not real "
              "retrieval)", file=sys.stderr)
    print(result.table.to_string(index=False, float_format=lambda value: f"{value:.4f}"))
    return 0


def _run_methods(args) -> int:
    import inspect

    from avcmr.methods import available_methods, method_class
    from avcmr.reporting.tables import ABLATION_ONLY, SANITY_METHODS, TABLE2_METHODS, TABLE4_METHODS

    rows = []
    for name in available_methods():
        cls = method_class(name)
        # The class's own docstring (not the base class's), else its module's.
        doc = inspect.cleandoc(cls.__dict__.get("__doc__") or sys.modules[cls.__module__].__doc__ or "")
        tables = [t for t, members in (("Table 2", TABLE2_METHODS), ("Table 4", TABLE4_METHODS)) if name in members
                  and not (t == "Table 2" and name in ABLATION_ONLY)]
        if name in SANITY_METHODS:  # printed below the paper's rows, never among them
            tables = ["Table 2 (sanity)"]
        rows.append((name, ", ".join(tables) or "—", _first_sentence(doc)))
    width = max(len(name) for name, _, _ in rows)
    for name, tables, summary in rows:
        print(f"{name:<{width}}  {tables:<17}  {summary}")
    return 0


def _first_sentence(doc: str, limit: int = 100) -> str:
    paragraph = " ".join(doc.split("\n\n")[0].split())
    sentence = paragraph.split(". ")[0].rstrip(".")
    return sentence if len(sentence) <= limit else sentence[: limit - 1] + "…"


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "handler"):
        parser.print_help(sys.stderr)
        return EXIT_BAD_INPUT
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
