import torch

from sparsest.efficiency import compare_dense_pruned, count_flops, count_parameters, measure_latency_ms, peak_memory_mib


def test_flops_and_params_of_a_linear_layer():
    layer = torch.nn.Linear(64, 32)
    x = torch.randn(10, 64)
    assert count_parameters(layer) == 64 * 32 + 32
    assert count_flops(lambda: layer(x)) == 2 * 10 * 64 * 32


def test_latency_is_interleaved_and_ordered():
    big = torch.nn.Linear(512, 512)
    small = torch.nn.Linear(512, 64)
    x = torch.randn(256, 512)
    out = measure_latency_ms({"big": lambda: big(x), "small": lambda: small(x)}, warmup=2, repeats=15)
    assert set(out) == {"big", "small"}
    assert out["big"]["p10_ms"] <= out["big"]["median_ms"] <= out["big"]["p90_ms"]
    assert out["small"]["median_ms"] < out["big"]["median_ms"]


def test_peak_memory_counts_live_intermediates():
    m = torch.nn.Sequential(torch.nn.Linear(256, 1024), torch.nn.ReLU(), torch.nn.Linear(1024, 256))
    x = torch.randn(64, 256)
    peak = peak_memory_mib(lambda: m(x))
    assert 0.4 <= peak <= 1.0  # two live [64, 1024] float tensors = 0.5 MiB


def test_compare_dense_pruned_ratios():
    dense = torch.nn.Linear(256, 256)
    x_dense, x_half = torch.randn(512, 256), torch.randn(256, 256)
    c = compare_dense_pruned(lambda: dense(x_dense), lambda: dense(x_half), batch=512, repeats=10)
    assert abs(c.flops_ratio - 2.0) < 1e-9
    assert c.speedup > 1.0
