#!/usr/bin/env python3
"""The tables of bench/mixed_precision_front.sh: per budget of bits per Linear weight, the best
uniform recipe that fits against each allocation's (mean KL and ΔPPL on the evaluation text), the
predicted-versus-measured KL of the allocations, the proxies' rank correlations, and the
bit-switching widths against direct quantization. Reads <out>/{kl,hessian,proxy,bitswitch}/results.json
and <out>/sens.json."""
import json
import os
import sys

out = sys.argv[1]


def results(name):
    path = os.path.join(out, name, "results.json")
    return json.load(open(path))["results"] if os.path.exists(path) else []


def is_mixed(r):
    return any(o.get("weights") is not None for o in r["recipe"]["overrides"])


series = {}  # label -> {budget: result}
uniform = []
for folder in ("kl", "hessian", "proxy"):
    for r in results(folder):
        if is_mixed(r):
            solver, score, budget = r["name"].split(" ")
            series.setdefault(f"{solver} {score}", {})[float(budget)] = r
        elif not any(u["hash"] == r["hash"] for u in uniform):
            uniform.append(r)


def allocation(label, budget):
    """The allocation of `label` at `budget`, and whether the sweep kept it under another solver's
    name (it evaluates a recipe two solvers agree on once, named after the first)."""
    own = series.get(label, {}).get(budget)
    if own:
        return own, False
    score = label.split(" ")[1]
    for other, rs in series.items():
        if other.split(" ")[1] == score and budget in rs:
            return rs[budget], True
    return None, False


def best(rs, budget, key):
    fit = [r for r in rs if r["bits_per_linear_weight"] <= budget + 1e-9]
    return min(fit, key=key) if fit else None


labels = [l for l in ("ilp kl", "greedy kl", "ilp hessian", "ilp proxy") if l in series]
budgets = [4.25, 4.5, 5, 5.5, 6, 6.5, 7, 7.5, 8]  # the kl allocations' (the script's)
kl = lambda r: r["kld"]["mean"]
for metric, key, fmt in (("mean KL divergence", kl, "{:.4f}"),
                         ("ΔPPL", lambda r: r["delta_ppl"], "{:+.3f}")):
    print(f"\n{metric} on the evaluation text, best recipe within each budget (bits per Linear weight)\n")
    print("| budget | uniform | " + " | ".join(labels) + " |")
    print("| ---: | --- | " + " | ".join("---:" for _ in labels) + " |")
    for b in budgets:
        u = best(uniform, b, key)
        cells = [f"{fmt.format(key(u))} ({u['short'].split()[0][2:]})" if u else "—"]
        for l in labels:
            r, shared = allocation(l, b)
            cells.append((fmt.format(key(r)) + (" (same recipe)" if shared else "")) if r else "—")
        print(f"| {b:.2f} | " + " | ".join(cells) + " |")

sens_path = os.path.join(out, "sens.json")
if os.path.exists(sens_path):
    sens = json.load(open(sens_path))
    c = sens["rank_correlation_with_kl"]
    print(f"\nsensitivity: {len(sens['sites'])} sites x {len(sens['candidates'])} candidates on "
          f"{sens['text']}; kl {sens['seconds']['kl']:.0f} s, Hessian traces "
          f"{sens['seconds']['hessian']:.0f} s ({sens['hutchinson_samples']} samples of "
          f"{sens['hessian_tokens']} tokens), proxy {sens['seconds']['proxy']:.0f} s; Spearman "
          f"rank correlation with the measured kl: hessian {c['hessian']:+.3f}, proxy {c['proxy']:+.3f}")
    # Additivity: the sum of the per-site kl the ilp kl allocation chose, against its measured kl.
    names = sens["candidates"]
    by_site = {s["site"]: s for s in sens["sites"]}
    print("\n| allocation | predicted KL (Σ sites, sensitivity text) | measured KL (evaluation text) |")
    print("| --- | ---: | ---: |")
    for r in sorted(series.get("ilp kl", {}).values(), key=lambda r: r["bits_per_linear_weight"]):
        rec = r["recipe"]
        chosen = {o["match"]: o["weights"] for o in rec["overrides"] if o.get("weights") is not None}
        total = 0.0
        for site, s in by_site.items():
            scheme = chosen.get(site, rec["weights"] or "fp")
            total += s["kl"][names.index(scheme)]
        print(f"| {r['name']} ({r['bits_per_linear_weight']:.3f} b) | {total:.4f} | {kl(r):.4f} |")

bs = results("bitswitch")
if bs:
    print("\nbit switching: widths derived from stored 8-bit codes against direct quantization\n")
    print("| recipe | bits per Linear weight | mean KL | ΔPPL |")
    print("| --- | ---: | ---: | ---: |")
    for r in bs:
        print(f"| {r['name']} | {r['bits_per_linear_weight']:.3f} | {kl(r):.4f} | {r['delta_ppl']:+.3f} |")
