"""Device specs: Table 4 of PPoPP 2019 and public datasheets."""

import pytest

from distsim import units
from distsim.device import Device, get_device, load_devices
from distsim.errors import ConfigError


def test_paper_v100_is_table4():
    d = get_device("paper-v100")
    assert d.flop_per_s == 15.67e12
    assert d.memory_bandwidth_bytes_per_s == 898e9
    assert d.cache_bytes == 6 * units.MiB  # Table 4's "6 MB" L2: 6,144 KiB (binary, as NVIDIA's)
    assert d.memory_bytes == 32 * units.GiB
    assert (d.compute_efficiency, d.bandwidth_efficiency) == (0.8, 0.7)


@pytest.mark.parametrize("name, cache_mib", [("v100-sxm2-32gb", 6), ("a100-sxm4-80gb", 40), ("h100-sxm5-80gb", 50)])
def test_real_parts_cache_is_binary(name, cache_mib):
    """Vendors' L2 "MB" are MiB (V100 6,144 KiB; A100 40 MiB; H100 50 MiB)."""
    assert get_device(name).cache_bytes == cache_mib * units.MiB


@pytest.mark.parametrize("name", ["v100-sxm2-32gb", "a100-sxm4-80gb", "h100-sxm5-80gb"])
def test_real_parts_name_their_source(name):
    d = get_device(name)
    assert "datasheet" in d.source
    assert d.flop_per_s > 0 and d.memory_bytes > 0


def test_unknown_device_lists_accepted():
    with pytest.raises(ConfigError, match="accepted: .*paper-v100"):
        get_device("tpu-v9")


def test_user_yaml(tmp_path):
    f = tmp_path / "mine.yaml"
    f.write_text("devices:\n  mine:\n    peak_TFLOPS: {fp32: 10}\n    memory_bandwidth_GBps: 500\n"
                 "    cache_MiB: 4\n    memory_GiB: 16\n")
    d = get_device(str(f))
    assert d.name == "mine" and d.flop_per_s == 10e12 and d.cache_bytes == 4 * 2**20


@pytest.mark.parametrize("body,match", [
    ("devices:\n  x:\n    peak_TFLOPS: {fp32: 10}\n    memory_bandwidth_GBps: 5\n    cache_MiB: 4\n    memory_GiB: 1\n    colour: red\n", "unknown key 'colour'"),
    ("devices:\n  x:\n    peak_TFLOPS: {fp32: -1}\n    memory_bandwidth_GBps: 5\n    cache_MiB: 4\n    memory_GiB: 1\n", "positive"),
    ("devices:\n  x:\n    peak_TFLOPS: {fp32: 1}\n    cache_MiB: 4\n    memory_GiB: 1\n", "missing key 'memory_bandwidth_GBps'"),
    ("devices: [1, 2\n", "not valid YAML"),
    ("devices:\n  x:\n    peak_TFLOPS: {fp32: 1}\n    memory_bandwidth_GBps: 5\n    cache_MB: 4\n    memory_GiB: 1\n",
     "key 'cache_MB' was replaced by 'cache_MiB'"),
])
def test_bad_yaml(tmp_path, body, match):
    f = tmp_path / "bad.yaml"
    f.write_text(body)
    with pytest.raises(ConfigError, match=match):
        load_devices(f)


def test_unreadable_file():
    with pytest.raises(ConfigError, match="cannot read device file"):
        load_devices("/nonexistent/devices.yaml")


def test_efficiency_range():
    with pytest.raises(ConfigError, match="compute_efficiency"):
        get_device("paper-v100").with_(compute_efficiency=1.5)
