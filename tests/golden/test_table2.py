"""Table 2 (PPoPP 2019): asymptotic FLOPs/param, bytes = lambda p + mu b sqrt(p), footprint/param.

Paper constants from Hestness et al., PPoPP 2019, Table 2 (facts file).  The
full sweep is ``distsim experiment table2``; here: the fit on synthetic data,
the quick run, and the full-size fits of the cheaper domains against the
paper with the 15% tolerance (residuals beyond it are asserted as documented
in docs/reproduction_domains.md).
"""


import numpy as np
import pandas as pd
import pytest

from distsim.experiments import table2
from distsim.experiments._domains import DOMAINS

PAPER = {  # Table 2 as printed
    "wordlm": (481, 1755, 30784, 11.94),
    "charlm": (900, 3510, 102980, 12.47),
    "nmt": (149, 533, 22653, 10.32),
    "speech": (775, 3100, 162750, 32.94),
    "resnet": (1111, 66.7, 268862, 42.57),
}


def test_paper_constants_match_the_facts():
    for name, (g, lam, mu, delta) in PAPER.items():
        assert DOMAINS[name].paper2 == dict(flops_per_param=g, bytes_lambda=lam, bytes_mu=mu, footprint_per_param=delta)


def test_fit_recovers_exact_forms():
    gamma, lam, mu, delta, s = 300.0, 1200.0, 5e4, 11.0, 64
    p = np.array([1e8, 1e9, 1e10])
    points = pd.DataFrame(dict(params=p, subbatch=s, flops_b1=gamma * p + 7 * p, flops_bs=gamma * s * p + 7 * p,
                               bytes_b1=lam * p + mu * np.sqrt(p), bytes_bs=lam * p + mu * s * np.sqrt(p),
                               footprint_min_bs=delta * p))
    got = table2.fit(points)
    for key, want in (("flops_per_param", gamma), ("bytes_lambda", lam), ("bytes_mu", mu), ("footprint_per_param", delta)):
        assert got[key] == pytest.approx(want, rel=1e-9)
    assert got["intensity_a"] == pytest.approx(lam / gamma)


def test_quick_run_has_every_domain_and_paper_twins():
    df = table2.run(quick=True)
    assert list(df["domain"]) == ["wordlm", "charlm", "nmt", "speech", "resnet"]
    for key in table2.COMPARED:
        assert (df[key] > 0).all() and (df[f"paper_{key}"] > 0).all()
        assert np.isfinite(df[f"{key}_rel_diff"]).all()
    assert df.attrs["notes"]


@pytest.mark.parametrize("name", ["nmt", "speech", "resnet"])
def test_full_size_fits_against_paper(name):
    sizes = (3288,) if name == "speech" else None  # the Table 3 size only (time)
    got = table2.fit(table2.measure(name, sizes=sizes))
    for key, paper in zip(table2.COMPARED, PAPER[name]):
        rel = got[key] / paper - 1
        if (name, key) == ("resnet", "bytes_lambda"):
            # documented residual: our weight traffic is 56 B/param (momentum, weight decay); paper 66.7
            assert -0.20 < rel < -0.10
        else:
            assert abs(rel) <= table2.TOLERANCE, (name, key, got[key], paper)


def test_charlm_flops_and_bytes_against_paper():
    """Char LM at Table 3's subbatch and size, 81,459 wide (footprint skipped for speed)."""
    got = table2.fit(table2.measure("charlm", sizes=(81459,), footprint=False))
    assert got["flops_per_param"] == pytest.approx(900, rel=0.02)  # 6 x 150 steps
    assert got["bytes_lambda"] == pytest.approx(3510, rel=0.15)
    assert got["bytes_mu"] == pytest.approx(102980, rel=0.15)
