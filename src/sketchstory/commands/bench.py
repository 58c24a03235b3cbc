"""``sketchstory bench``: time and memory against story length, plain ControlNet against MAGA's modes."""

from __future__ import annotations

import argparse
from pathlib import Path

from sketchstory.commands.args import bounded, int_list


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("bench", help="time and memory vs number of panels: plain ControlNet vs MAGA modes/policies")
    p.add_argument("--arch", choices=["sd15", "sdxl", "tiny", "tiny-sdxl"], default="sd15",
                   help="sd15: the full SD1.5 + ControlNet architecture with random weights (default); sdxl: SDXL + "
                        "its Canny ControlNet, likewise (bfloat16 on CPU: about 10 GB)")
    p.add_argument("--size", type=bounded(int, 8, 4096), help="image size, 8..4096 (default: 512 on a GPU, 128 on CPU)")
    p.add_argument("--steps", type=bounded(int, 1, 1000), help="denoising steps, 1..1000 (default: 30 on a GPU, 4 on CPU)")
    p.add_argument("--panels", type=int_list, default=[1, 2, 4, 8], metavar="N,M",
                   help="story lengths to measure (default 1,2,4,8)")
    p.add_argument("--long", action="store_true", help="also measure 16 panels")
    p.add_argument("--quick", action="store_true",
                   help="64 px, 2 steps, 1/2/4 panels, 3 scenarios: about 2.5 minutes on 2 CPU cores")
    p.add_argument("--scenarios", type=lambda t: t.split(","), metavar="A,B",
                   help="only these scenarios (default all: plain, maga, maga-batched, maga-budget, maga-all)")
    p.add_argument("--device")
    p.add_argument("-o", "--out", type=Path, default=Path("out/bench"))
    p.set_defaults(func=cmd_bench)


def cmd_bench(args: argparse.Namespace) -> int:
    import torch

    from sketchstory.bench.scaling import SCENARIOS, run_bench, table, write_results
    from sketchstory.models import default_device
    from sketchstory.outputs import check_output

    check_output(args.out)  # refused now, not after minutes of benchmarking
    device, dtype = default_device(args.device)
    if args.quick:
        args.size, args.steps, args.panels = 64, 2, [1, 2, 4]
    gpu = device.type == "cuda"  # the issue's GPU setting: SD1.5's own size and a real step count, fp16
    args.size = args.size or (512 if gpu else 128)
    args.steps = args.steps or (30 if gpu else 4)
    panels = args.panels + ([16] if args.long else [])
    names = args.scenarios or (("plain", "maga", "maga-all") if args.quick else [s.name for s in SCENARIOS])
    unknown = sorted(set(names) - {s.name for s in SCENARIOS})
    if unknown:
        raise ValueError(f"--scenarios {','.join(unknown)}: choose from {', '.join(s.name for s in SCENARIOS)}")
    scenarios = tuple(s for s in SCENARIOS if s.name in names)
    print(f"building {args.arch} with random weights on {device} ...", flush=True)
    if args.arch == "sd15":
        from sketchstory.bench.architectures import sd15_components

        components = sd15_components(device, dtype)
    elif args.arch == "sdxl":
        from sketchstory.bench.architectures_sdxl import sdxl_components

        components = sdxl_components(device, dtype if gpu else torch.bfloat16)
    else:
        from sketchstory.models import REGISTRY, load

        components = load(REGISTRY[args.arch], str(device))
    with torch.inference_mode():
        result = run_bench(components, panels, args.size, args.steps, scenarios)
    write_results(result, args.out)
    print(table(result))
    print(f"written: {args.out / 'bench.json'}, {args.out / 'bench.md'}")
    return 0
