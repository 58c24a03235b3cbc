"""``sketchstory bench``: time and memory against story length, plain ControlNet against MAGA's modes."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from sketchstory.commands.args import bounded, int_list


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("bench", help="time and memory vs number of panels: plain ControlNet vs MAGA modes/policies")
    p.add_argument("--arch", choices=["sd15", "sdxl", "demo", "tiny", "tiny-sdxl"],
                   help="sd15: the full SD1.5 + ControlNet architecture with random weights (default); sdxl: SDXL + "
                        "its Canny ControlNet, likewise (bfloat16 on CPU: about 10 GB); demo: the bundled demo model "
                        "(--quick's default); tiny, tiny-sdxl: the tiny test models")
    p.add_argument("--size", type=bounded(int, 8, 4096),
                   help="image size, 8..4096 (default: 512 on a GPU, 128 on CPU; --quick: 64)")
    p.add_argument("--steps", type=bounded(int, 1, 1000),
                   help="denoising steps, 1..1000 (default: 30 on a GPU, 4 on CPU; --quick: 8)")
    p.add_argument("--panels", type=int_list, metavar="N,M",
                   help="story lengths to measure (default 1,2,4,8; --quick: 8,16)")
    p.add_argument("--long", action="store_true", help="also measure 16 panels")
    p.add_argument("--quick", action="store_true",
                   help="the demo model at 64 px, 8 steps, 8 and 16 panels, the defaults against plain and both "
                        "explicit modes, and (on CPU) the defaults in the other dtype: under a minute on 2 CPU cores")
    p.add_argument("--scenarios", type=lambda t: t.split(","), metavar="A,B",
                   help="only these scenarios (default: all; --quick: the defaults, plain and both explicit modes)")
    p.add_argument("--dtype", choices=["auto", "fp32", "bf16", "fp16"], default="auto",
                   help="the models' dtype (auto: as generate chooses it)")
    p.add_argument("--json", action="store_true",
                   help="print a JSON summary (the ratios and pass/fail against the targets) on stdout, the log on stderr")
    p.add_argument("--device")
    p.add_argument("-o", "--out", type=Path, default=Path("out/bench"))
    p.set_defaults(func=cmd_bench)


def cmd_bench(args: argparse.Namespace) -> int:
    import torch

    from sketchstory.bench.scaling import QUICK, SCENARIOS, run_bench, summary, table, write_results
    from sketchstory.models import default_device
    from sketchstory.outputs import check_output

    check_output(args.out)  # refused now, not after minutes of benchmarking
    device, _ = default_device(args.device, args.dtype)
    gpu = device.type == "cuda"  # the issue's GPU setting: SD1.5's own size and a real step count, fp16
    arch = args.arch or ("demo" if args.quick else "sd15")
    size = args.size or (64 if args.quick else 512 if gpu else 128)
    steps = args.steps or (8 if args.quick else 30 if gpu else 4)
    panels = args.panels or ([8, 16] if args.quick else [1, 2, 4, 8])
    panels = sorted(set(panels + ([16] if args.long else [])))
    names = args.scenarios or [s.name for s in SCENARIOS if not args.quick or s.name in QUICK]
    unknown = sorted(set(names) - {s.name for s in SCENARIOS})
    if unknown:
        raise ValueError(f"--scenarios {','.join(unknown)}: choose from {', '.join(s.name for s in SCENARIOS)}")
    scenarios = tuple(s for s in SCENARIOS if s.name in names)
    log = (lambda line: print(line, file=sys.stderr, flush=True)) if args.json else print
    log(f"building {arch} on {device} ...")
    components = _components(arch, args.device, args.dtype)
    other = None
    if args.quick and not gpu:  # the dtype question of issue 21: bf16 against fp32 on the CPU
        other = _components(arch, args.device, "fp32" if components.dtype == torch.bfloat16 else "bf16")
    with torch.inference_mode():
        result = run_bench(components, panels, size, steps, scenarios, log=log, other_dtype=other)
    result["summary"] = summary(result)
    write_results(result, args.out)
    log(table(result))
    log(f"written: {args.out / 'bench.json'}, {args.out / 'bench.md'}")
    if args.json:
        print(json.dumps(result["summary"], indent=2))
    return 0


def _components(arch: str, device: str | None, dtype: str):
    """The benchmark's models in ``dtype`` (auto: as ``generate`` would load them)."""
    import torch

    from sketchstory.models import REGISTRY, default_device, load, place, resolve_spec
    from sketchstory.models.device import prefers_bf16

    if arch == "demo":
        return load(resolve_spec("demo", None), device, dtype_name=dtype)
    if arch in ("tiny", "tiny-sdxl"):
        return load(REGISTRY[arch], device, dtype_name=dtype)
    dev, torch_dtype = default_device(device, dtype)
    if arch == "sdxl":
        from sketchstory.bench.architectures_sdxl import sdxl_components

        return sdxl_components(dev, torch_dtype if dev.type == "cuda" else torch.bfloat16)
    from sketchstory.bench.architectures import sd15_components

    components = sd15_components(dev, torch_dtype)
    if prefers_bf16(dev, dtype, components.unet):
        place((components.text_encoder, components.controlnet, components.unet, components.vae), dev, torch.bfloat16)
        components.dtype = torch.bfloat16
    return components
