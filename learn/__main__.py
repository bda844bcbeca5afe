"""Command line: ``python -m learn {all,minilm,smollm2,vit,memn2n,sample} --out build/learn``.

Every workload (``vit``, ``memn2n``, ``minilm``, ``smollm2``) runs the two-stage recipe
of :mod:`learn.recipe` (baseline, pruned run, control run, paired report) in stages
cached under ``OUT/ckpt/<workload>/``:
``--stage base|prune|control|report`` runs one of them (``all``, the default, runs what is
missing, then the report). The report updates that workload's entry in
``results/learn/results.json``, regenerates ``results/learn/results.md`` and re-exports its
traces under ``traces/``. ``table`` only regenerates results.md from results.json.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "results" / "learn"
WORKLOADS = ("vit", "memn2n", "minilm", "smollm2")
RECIPE_WORKLOADS = WORKLOADS


def _workload(name: str, args: argparse.Namespace, data: Path) -> Any:
    if name == "minilm":
        from learn.workloads.minilm import MiniLMWorkload
        return MiniLMWorkload(data, base_steps=args.base_steps or 400, seed=args.seed)
    if name == "vit":
        from learn.workloads.vit import VitWorkload
        return VitWorkload(epochs=args.epochs or 8, seed=args.seed)
    if name == "memn2n":
        from learn.workloads.memn2n import MemN2NWorkload
        return MemN2NWorkload(base_steps=args.base_steps or 4000, seed=args.seed,
                              cache=data)
    if name == "smollm2":
        from learn.workloads.smollm import SmolLMWorkload
        return SmolLMWorkload(data, seq=args.seq or 256, n_test=args.test_blocks or 64,
                              seed=args.seed)
    raise ValueError(name)


def _recipe(name: str, args: argparse.Namespace) -> Any:
    from learn.recipe import Recipe

    rc = Recipe(**DEFAULT_RECIPES[name])
    for key in ("target", "soft_steps", "hard_steps", "lam0", "lam_gain", "lam_kp", "theta_lr",
                "soft_forward", "kd_alpha"):
        v = getattr(args, key)
        if v is not None:
            setattr(rc, key, v)
    rc.seed = args.seed
    return rc


#: The reported recipe per workload (learn/recipe.py defaults, overridden here).
DEFAULT_RECIPES: dict[str, dict[str, Any]] = {
    "vit": {"target": 0.85, "soft_steps": 400, "hard_steps": 400, "batch": 128,
            "weight_lr": 3e-4},
    "memn2n": {"target": 0.85, "soft_steps": 1000, "hard_steps": 1000, "batch": 64,
               "weight_lr": 2e-3, "weight_decay": 0.0, "clip": 40.0},
    "minilm": {"target": 0.85, "soft_steps": 200, "hard_steps": 200, "batch": 32,
               "weight_lr": 2e-5},
    # batch = 1 block of 256 tokens; q/k projections only; no distillation (a teacher
    # forward per step does not fit the CPU budget; the control gets the same loss); the
    # thresholds start at each head's 0.7 quantile, near the target, as 20 soft steps
    # cannot move them far
    "smollm2": {"target": 0.85, "soft_steps": 20, "hard_steps": 20, "batch": 1,
                "weight_lr": 1e-4, "weight_decay": 0.0, "kd_alpha": 0.0, "theta_lr": 0.1,
                "lam0": 0.1, "lam_gain": 0.05, "init_quantile": 0.7},
}


def _fmt_metric(res: dict[str, Any], key: str) -> str:
    v = res[key]
    return f"{100 * v:.2f} %" if res["metric"] == "accuracy" else f"{v:.2f}"


def _fmt_ci(c: dict[str, Any], acc: bool) -> str:
    if acc:
        lo, hi = c["ci95_bootstrap"]
        return f"{100 * c['diff']:+.2f} pp [{100 * lo:+.2f}, {100 * hi:+.2f}]"
    lo, hi = c["ci95_bootstrap"]
    return f"{100 * c['rel_change']:+.2f} % [{100 * lo:+.2f}, {100 * hi:+.2f}]"


_VERDICT = {"within": "loss within 0.2 % (95 % sure)",
            "beyond": "loss beyond 0.2 % (95 % sure)",
            "undecided": "undecided at 95 %"}


def _recipe_rows(results: dict[str, Any]) -> list[str]:
    lines = [
        "| workload | model / data | metric | baseline | control | learned (hard mask) | "
        "pruned - control, 95 % CI (test) | McNemar p | pruned (test) | verdict | run time |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name in WORKLOADS:
        r = results.get(name)
        if not r or r.get("protocol") != "issue16-v2":
            continue
        acc = r["metric"] == "accuracy"
        c = r["paired"]["test"]["pruned_vs_control"]
        ctl = ("not run (baseline used)" if r.get("control_missing")
               else _fmt_metric(r, "metric_no_pruning"))
        mcn = f"{c['mcnemar_p']:.3g}" if acc else "n/a (perplexity)"
        secs = r["seconds"]
        total = ((secs.get("base") or 0) + sum(secs["prune"].values())
                 + sum(secs["control"].values()) + secs.get("report", 0))
        lines.append(
            f"| {name} | {r['model']}; {r['data']} | {r['metric']} | "
            f"{_fmt_metric(r, 'metric_base')} | "
            f"{ctl} | "
            f"{_fmt_metric(r, 'metric_learned')} | {_fmt_ci(c, acc)} | "
            f"{mcn} | "
            f"{100 * r['pruned_fraction_total']:.1f} % | {_VERDICT[r['verdict']]} | "
            f"{total / 60:.0f} min |")
    return lines


def _recipe_details(results: dict[str, Any]) -> list[str]:
    lines: list[str] = []
    for name in WORKLOADS:
        r = results.get(name)
        if not r or r.get("protocol") != "issue16-v2":
            continue
        acc = r["metric"] == "accuracy"
        rc = r["recipe"]
        per = ", ".join(f"{100 * f:.0f}" for f in r["pruned_fraction_layers"])
        lines += ["", f"### {name}", "",
                  f"Recipe: target {rc['target']}, soft stage {rc['soft_steps']} steps "
                  f"({rc['soft_forward']} forward, T {rc['T0']} -> {rc['T1']} over the first "
                  f"{rc['anneal_frac']:.0%}, theta lr {rc['theta_lr']}, lambda steered from "
                  f"{rc['lam0']}, final {r['lambda_final']:.3g}), hard stage "
                  f"{rc['hard_steps']} steps (thresholds frozen); batch {rc['batch']}, weight "
                  f"lr {rc['weight_lr']} (cosine per stage), distillation alpha "
                  f"{rc['kd_alpha']} at T {rc['kd_T']}; seed {rc['seed']}. The control ran "
                  "the same steps, batches, loss and optimizer without a mask.", "",
                  f"Pruned per layer (test, %): {per}; validation: "
                  f"{100 * r['pruned_fraction_val']:.1f} % pruned.", "",
                  "| split | comparison | n | difference [95 % bootstrap CI] | "
                  "normal-approx. CI | discordant | McNemar p |",
                  "|---|---|---|---|---|---|---|"]
        for split in ("val", "test"):
            for comp, c in r["paired"][split].items():
                if acc:
                    lo, hi = c["ci95_normal"]
                    lines.append(
                        f"| {split} | {comp.replace('_', ' ')} | {c['n']} | {_fmt_ci(c, True)}"
                        f" | [{100 * lo:+.2f}, {100 * hi:+.2f}] | "
                        f"{100 * c['discordant_share']:.1f} % | {c['mcnemar_p']:.3g} |")
                else:
                    lines.append(f"| {split} | {comp.replace('_', ' ')} | {c['tokens']} tok |"
                                 f" {_fmt_ci(c, False)} | | | |")
        secs = r["seconds"]
        lines += ["", f"Run times: baseline {secs.get('base')} s, pruned run "
                      f"{secs['prune']} s, control {secs['control']} s, report "
                      f"{secs.get('report')} s (wall clock, 1 torch thread, shared 2-core "
                      "machine)."]
        if r.get("per_task"):
            lines += ["", "| task | baseline | control | learned |", "|---|---|---|---|"]
            for t, v in r["per_task"]["base"].items():
                lines.append(f"| {t} | {100 * v:.2f} % | {100 * r['per_task']['control'][t]:.2f}"
                             f" % | {100 * r['per_task']['pruned'][t]:.2f} % |")
    return lines


def write_table(results: dict[str, Any], path: Path) -> None:
    """Write ``results.md`` from the results dict."""
    lines = [
        "# Learned runtime pruning: results",
        "",
        "Generated by `python -m learn <workload>` (see docs/LEARNING.md). Machine: 2 shared "
        "CPU cores, torch 2.13.0 CPU. Pruned fraction = share of visible scores (after "
        "padding/causal masking) with z < theta under the hard mask, on the test set.",
        "",
        "## Two-stage recipe with control and paired measurement (issue 16)",
        "",
        "Baseline = the converged model before any pruning (the distillation teacher). "
        "Control = the baseline trained for the same extra steps, batches and loss without a "
        "mask. Learned = two-stage recipe, evaluated with the hard mask (what the hardware "
        "computes). The interval is the paired 95 % bootstrap interval of learned - control on "
        "the same test items; verdict: within 0.2 % if the whole interval is above -0.2 pp, "
        "beyond if the whole interval is below, else undecided. Perplexity (smollm2): the "
        "interval is that of the relative change ppl(pruned) / ppl(control) - 1, bootstrapped "
        "over the test blocks; within if the whole interval is below +0.2 %.",
        "",
    ]
    lines += _recipe_rows(results)
    lines += _recipe_details(results)
    legacy = [n for n in WORKLOADS if n in results and results[n].get("protocol") != "issue16-v2"]
    if legacy:
        lines += ["", "## Not yet re-run with the recipe (earlier one-stage procedure)", "",
                  "These rows come from the earlier procedure (short co-training, fixed lambda, "
                  "no hard stage, small test sets, no paired interval); see docs/LEARNING.md.",
                  "",
                  "| workload | model / data | metric | no pruning | learned thresholds | delta | "
                  "pruned per layer | pruned total | lambda | trained | run time |",
                  "|---|---|---|---|---|---|---|---|---|---|---|"]
        for name in legacy:
            r = results[name]
            delta = r["metric_learned"] - r["metric_no_pruning"]
            dstr = (f"{100 * delta:+.2f} pp" if r["metric"] == "accuracy" else f"{delta:+.2f}")
            per = ", ".join(f"{100 * f:.0f}" for f in r["pruned_fraction_layers"])
            lines.append(
                f"| {name} | {r['model']}; {r['data']} | {r['metric']} | "
                f"{_fmt_metric(r, 'metric_no_pruning')} | {_fmt_metric(r, 'metric_learned')} | "
                f"{dstr} | {per} (%) | {100 * r['pruned_fraction_total']:.1f} % | "
                f"{r['lambda']} | {r['trained']} | {r['wall_seconds']:.0f} s |")
    lines += ["", "## Traces", "", "| file | bytes | pruned fraction per head (%) |",
              "|---|---|---|"]
    for name in WORKLOADS:
        for f in results.get(name, {}).get("files", []):
            if "bytes" in f:
                ph = ", ".join(f"{100 * x:.0f}" for x in f["pruned_fraction_heads"])
                lines.append(f"| {f['path']} | {f['bytes']} | {ph} |")
    if results.get("notes"):
        lines += ["", "## Notes", ""] + [f"- {n}" for n in results["notes"]]
    lines.append("")
    path.write_text("\n".join(lines))


def main(argv: list[str] | None = None) -> int:
    """Run the requested workloads and write results, table and traces."""
    from learn.recipe import STAGES

    ap = argparse.ArgumentParser(prog="python -m learn", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("what", choices=("all", "sample", "table", *WORKLOADS))
    ap.add_argument("--out", type=Path, default=ROOT / "build" / "learn",
                    help="work folder (data in OUT/data, checkpoints in OUT/ckpt)")
    ap.add_argument("--stage", choices=("all", *STAGES), default="all",
                    help="recipe workloads: run one stage (default: all missing, then report)")
    ap.add_argument("--force", action="store_true", help="re-run stages even if cached")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--epochs", type=int, default=None, help="ViT baseline epochs (8)")
    ap.add_argument("--base-steps", type=int, default=None,
                    help="baseline steps (MemN2N 4000, MiniLM 400)")
    ap.add_argument("--seq", type=int, default=None, help="SmolLM2 block length (256)")
    ap.add_argument("--test-blocks", type=int, default=None, help="SmolLM2 test blocks (64)")
    ap.add_argument("--target", type=float, default=None, help="target pruned fraction")
    ap.add_argument("--soft-steps", type=int, default=None)
    ap.add_argument("--hard-steps", type=int, default=None)
    ap.add_argument("--lam0", type=float, default=None)
    ap.add_argument("--lam-gain", type=float, default=None)
    ap.add_argument("--lam-kp", type=float, default=None)
    ap.add_argument("--theta-lr", type=float, default=None)
    ap.add_argument("--kd-alpha", type=float, default=None)
    ap.add_argument("--soft-forward", choices=("soft", "ste"), default=None)
    args = ap.parse_args(argv)
    out = args.out.resolve()
    data = out / "data"
    data.mkdir(parents=True, exist_ok=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    rpath = RESULTS / "results.json"
    results: dict[str, Any] = json.loads(rpath.read_text()) if rpath.is_file() else {}
    if args.what == "sample":
        from learn.workloads import minilm
        print(json.dumps(minilm.export_sample(data), indent=1))
        return 0
    names = WORKLOADS if args.what == "all" else (() if args.what == "table" else (args.what,))
    for name in names:
        print(f"== {name}", flush=True)
        if name in RECIPE_WORKLOADS:
            from learn.recipe import run_stages

            stages = STAGES if args.stage == "all" else (args.stage,)
            res = run_stages(_workload(name, args, data), _recipe(name, args), out, stages,
                             args.force)
            if res is None:
                continue
        else:
            raise ValueError(name)
        results = json.loads(rpath.read_text()) if rpath.is_file() else {}
        results[name] = res
        print(json.dumps({k: res[k] for k in ("metric", "metric_no_pruning", "metric_learned",
                                              "pruned_fraction_total")}), flush=True)
        rpath.write_text(json.dumps(results, indent=1, sort_keys=True) + "\n")
    write_table(results, RESULTS / "results.md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
