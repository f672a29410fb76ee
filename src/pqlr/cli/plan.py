"""`pqlr plan MODEL.bin [--ram BYTES]`: the RAM breakdown of a model file (arena, scratch, tile
buffers, total) and whether it fits; with --ram, also the tiling that would fit that budget."""
from __future__ import annotations

import argparse
import json

from ..errors import BudgetError
from ..io import parse_bytes


def add_parser(sub) -> None:
    p = sub.add_parser("plan", help="print the RAM a model file needs (arena, scratch, tiles) and whether it fits",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", help="model file written by pqlr (.bin)")
    p.add_argument("--ram", type=parse_bytes, default=None, help="RAM budget, e.g. 35KB or 36000")
    p.add_argument("--double-buffer", action="store_true", help="with --ram: plan two tile buffers")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=run)


def _table(ram: dict) -> str:
    rows = [("activations (peak live)", ram["activations"]), ("scratch (largest)", ram["scratch"]),
            ("arena (planned)", ram["arena"]),
            (f"tile buffers ({ram['tile_buffer_count']} x {ram['tile_buffer_bytes']} B, "
             f"{ram['n_tiles']} tiles)" if ram["streamed"] else "tile buffers (weights are const arrays)",
             ram["tile_buffers"]),
            ("total", ram["total"])]
    lines = [f"{name:<44} {value:>10} B" for name, value in rows]
    if ram["budget"] is not None:
        lines.append(f"{'budget':<44} {ram['budget']:>10} B")
        lines.append(f"{'fits':<44} {'yes' if ram['fits'] else 'no':>12}")
    return "\n".join(lines)


def run(args) -> int:
    from ..deploy.binfmt import read_bin
    from ..deploy.package import ram_breakdown
    from ..deploy.plan import plan_graph, split_layers
    from ..deploy.tiles import plan_with_tiles

    graph, tiles, _ = read_bin(args.model)
    arena = plan_graph(graph, split=split_layers(tiles))
    ram = ram_breakdown(arena, tiles, args.ram)
    out = {"file": ram}
    if args.ram is not None:
        try:
            fit_arena, fit = plan_with_tiles(graph, ram_budget=args.ram, double_buffer=args.double_buffer)
            out["for_budget"] = ram_breakdown(fit_arena, fit, args.ram)
        except BudgetError as e:
            out["for_budget"] = {"error": str(e)}
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        print(f"{args.model}: {len(graph.nodes)} layers")
        print(_table(ram))
        fb = out.get("for_budget")
        if fb is not None and not ram["fits"]:
            print("\nre-tiled for this budget:" if "error" not in fb else f"\n{fb['error']}")
            if "error" not in fb:
                print(_table(fb))
    return 0 if ram["fits"] in (None, True) else 1
