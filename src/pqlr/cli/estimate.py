"""`pqlr estimate`: latency, energy and average power of a model on a hardware profile."""
from __future__ import annotations

from ..errors import PqlrError


def rate(text: str) -> float:
    """'2', '2/s', '0.5Hz' -> inferences per second."""
    t = text.strip().lower().removesuffix("/s").removesuffix("hz").strip()
    try:
        value = float(t)
    except ValueError:
        raise PqlrError(f"--rate {text!r}: give inferences per second, e.g. 1/s or 0.5") from None
    if value <= 0:
        raise PqlrError(f"--rate must be positive, got {text!r}")
    return value


def add_parser(sub) -> None:
    p = sub.add_parser(
        "estimate", help="latency, energy and power of a model on a hardware profile",
        description="Estimate one inference on a chip: latency (measured instruction counts or the "
                    "profile's analytic cost model), energy (active power x time; arithmetic vs memory "
                    "access from the pJ table), average power at a rate, and whether it fits a budget.")
    p.add_argument("model", nargs="?", default=None, metavar="MODEL.bin",
                   help="model file (or give --macs/--weight-bytes/--activation-bytes)")
    p.add_argument("--target", default=None, metavar="NAME|FILE.json", help="hardware profile")
    p.add_argument("--list-targets", action="store_true", help="list the shipped profiles and exit")
    p.add_argument("--macs", type=int, default=None, help="multiply-accumulates per inference")
    p.add_argument("--weight-bytes", type=int, default=None)
    p.add_argument("--activation-bytes", type=int, default=None)
    p.add_argument("--tile-bytes", type=int, default=None,
                   help="weight bytes streamed from flash per inference (default: from the .bin, else 0)")
    p.add_argument("--instructions", type=int, default=None,
                   help="measured instructions per inference (e.g. from `pqlr verify`)")
    p.add_argument("--instructions-source", default=None, help="what measured them (e.g. rv32imac)")
    p.add_argument("--rate", type=str, default="1/s", metavar="N/s", help="inferences per second (default 1/s)")
    p.add_argument("--budget-mw", type=float, default=None, help="average power budget, mW")
    p.add_argument("--accuracy", type=float, default=None, help="top-1 accuracy as a fraction, for accuracy/mW")
    p.add_argument("--json", default=None, metavar="FILE", help="write the estimate here")
    p.set_defaults(func=run)


def figures_from_bin(path) -> dict:
    """MACs, weight bytes, activation (arena) bytes and streamed tile bytes of a .bin model."""
    from ..deploy.binfmt import read_bin
    from ..deploy.plan import plan_graph
    from ..ir.ops import OPS

    graph, tiles, _ = read_bin(path)
    unknown = sorted({n.op for n in graph.nodes if n.op not in OPS})
    if unknown:
        raise PqlrError(f"{path}: unknown op {unknown[0]!r}")
    return dict(macs=int(sum(OPS[n.op].macs(n, graph) for n in graph.nodes)),
                weight_bytes=int(graph.weight_bytes()),
                activation_bytes=int(plan_graph(graph).arena_bytes),
                tile_bytes_streamed=int(sum(tiles.tile_sizes)) if tiles.streamed else 0)


def _figures(args) -> dict:
    given = dict(macs=args.macs, weight_bytes=args.weight_bytes, activation_bytes=args.activation_bytes)
    figs = figures_from_bin(args.model) if args.model else {}
    for key, value in given.items():
        if value is not None:
            figs[key] = value
        elif key not in figs:
            raise PqlrError(f"give MODEL.bin or --{key.replace('_', '-')}")
    if args.tile_bytes is not None:
        figs["tile_bytes_streamed"] = args.tile_bytes
    return figs


def _summary(est: dict) -> str:
    mw = est["average_power_mw"]
    lines = [f"{est['target']}: latency {est['latency_s'] * 1e3:.3f} ms ({est['latency_source']}: {est['latency_how']})"]
    if est["flash_stream_s"]:
        lines.append(f"  flash streaming {est['flash_stream_s'] * 1e3:.3f} ms (included)")
    e = est["energy_per_inference_j"]
    lines.append(f"  energy/inference {'unknown' if e is None else f'{e * 1e3:.4f} mJ'}; "
                 f"arithmetic {est['energy_breakdown_pj']['arithmetic'] / 1e6:.3f} uJ vs memory "
                 f"{est['energy_breakdown_pj']['memory'] / 1e6:.3f} uJ (pJ table)")
    lines.append(f"  average power at {est['rate_hz']:g}/s: {'unknown' if mw is None else f'{mw:.3f} mW'}"
                 + ("" if est["fits_budget"] is None else
                    f" -> {'fits' if est['fits_budget'] else 'exceeds'} {est['budget_mw']:g} mW"))
    lines += [f"  note: {n}" for n in est["notes"]]
    return "\n".join(lines)


def run(args) -> int:
    from ..hw.estimate import estimate
    from ..hw.profiles import load_profile, profile_names
    from ..io import write_json

    if args.list_targets:
        for name in profile_names():
            p = load_profile(name)
            print(f"{name:12s} {p.kind:4s} {p.isa:12s} verify={p.verify_target or '-':10s} {p.description}")
        return 0
    if not args.target:
        raise PqlrError("--target is required (see --list-targets)")
    est = estimate(load_profile(args.target), **_figures(args), instructions=args.instructions,
                   instructions_source=args.instructions_source, rate_hz=rate(args.rate),
                   budget_mw=args.budget_mw, accuracy=args.accuracy)
    print(_summary(est))
    if args.json:
        write_json(args.json, est)
    return 0
