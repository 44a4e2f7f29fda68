"""The per-step products benchmark runs: smoke mode prints a row per product and dtype."""

from __future__ import annotations

import re

from benchmarks.products import main


def test_smoke_mode_prints_both_products_in_both_dtypes(capsys) -> None:
    main(["--smoke"])
    out = capsys.readouterr().out
    assert out.startswith("CPU ") or out.startswith("CUDA ")
    rows = re.findall(
        r"^\| smoke \| (h·W_hhᵀ|δ·W_hh) \| (fp32|bf16) \| [\d,.]+ \| (.+) \|$", out, re.M
    )
    assert [(r[0], r[1]) for r in rows] == [
        ("h·W_hhᵀ", "fp32"), ("δ·W_hh", "fp32"), ("h·W_hhᵀ", "bf16"), ("δ·W_hh", "bf16"),
    ]  # fmt: skip
    # Where oneDNN has no bf16 kernel the packed cells say n/a with the reason, never a traceback.
    assert all(re.match(r"[\d,.]+ \| [\d.]+× \| [\d.]+ \| (aten|onednn)$|n/a", r[2]) for r in rows)
