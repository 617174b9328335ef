#!/usr/bin/env python3
"""Prints fluxion / hand-written time ratios from criterion's last `cargo bench` run."""
import json
import pathlib

root = pathlib.Path(__file__).resolve().parent.parent / "target" / "criterion"
rows = []
for group in sorted(p for p in root.iterdir() if p.is_dir() and (p / "fluxion").is_dir() and (p / "hand").is_dir()):
    est = {}
    for who in ("fluxion", "hand"):
        data = json.loads((group / who / "new" / "estimates.json").read_text())
        est[who] = data["median"]["point_estimate"]
    rows.append((group.name, est["fluxion"], est["hand"], est["fluxion"] / est["hand"]))
print(f"{'benchmark':<22} {'fluxion':>12} {'hand':>12} {'ratio':>7}")
for name, f, h, r in rows:
    print(f"{name:<22} {f:>10.2f}ns {h:>10.2f}ns {r:>7.2f}")
