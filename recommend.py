"""Recommend tracks for one playlist from a finished run (`python run.py` first).

Examples:
  python recommend.py --run runs/default --title "summer road trip"
  python recommend.py --run runs/default --seeds spotify:track:... spotify:track:... -n 30
  python recommend.py --run runs/default --playlist my_playlist.json   (MPD playlist object)
"""
from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

from common.cli import run_cli
from common.errors import PipelineError
from preprocess.slices import load_json
from pipeline.recommend import Recommender, print_table


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", type=Path, default=Path("runs/default"), help="a finished run folder (default: runs/default)")
    ap.add_argument("--title", help="playlist title")
    ap.add_argument("--seeds", nargs="*", default=[], help="seed track uris, in playlist order")
    ap.add_argument("--playlist", type=Path, help="a JSON playlist object with 'name' and 'tracks' (MPD schema)")
    ap.add_argument("-n", type=int, default=20, help="tracks to print (default 20)")
    ap.add_argument("--length", type=int, help="tracks the playlist should reach in all (default: the middle of "
                                               "its category's length window)")
    ap.add_argument("--json", action="store_true", help="print JSON instead of a table")
    ap.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    args = ap.parse_args(argv)
    logging.getLogger().setLevel(logging.WARNING)
    title, seeds = args.title, list(args.seeds)
    if args.playlist is not None:
        pl = load_json(args.playlist)
        try:
            title = title or pl.get("name")
            seeds = seeds or [t["track_uri"] for t in pl.get("tracks", [])]
        except (AttributeError, TypeError, KeyError):
            raise PipelineError(f"{args.playlist}: expected an object with 'name' and 'tracks' of track objects") from None
    if args.n < 1:
        raise PipelineError("-n must be at least 1")
    rec = Recommender.load(args.run, args.device)
    start = time.perf_counter()
    rows, unknown, taken = rec.recommend(title, seeds, args.n, args.length)
    seconds = time.perf_counter() - start
    if args.json:
        print(json.dumps({"final": rec.final, "seconds": seconds, "unknown_seeds": unknown, "taken_as": taken,
                          "tracks": rows}, indent=1))
    else:
        print(print_table(rows, unknown, taken))
        print(f"\nanswered in {seconds * 1000:.0f} ms")
    return 0


if __name__ == "__main__":
    run_cli(main)
