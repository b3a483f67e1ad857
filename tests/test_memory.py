"""groupconv._memory: the up-front memory check behind 'needs at least ... bytes'."""

from __future__ import annotations

import os

import pytest

from groupconv._memory import check_fits, device_memory_bytes, format_bytes
from groupconv.errors import GroupConvError


def test_format_bytes_in_binary_units():
    assert format_bytes(512) == "512 B"
    assert format_bytes(3 * 2**40) == "3 TiB"
    assert format_bytes(1.5 * 2**30) == "1.5 GiB"
    assert format_bytes(1023) == "1023 B" and format_bytes(1024) == "1 KiB"
    assert format_bytes(123.4 * 2**20) == "123 MiB"
    # 256 samples x 1e9 channels x 32 points x 8 bytes (numpy's "59.6 TiB" for the same array)
    assert format_bytes(256 * 10**9 * 32 * 8) == "59.6 TiB"


def test_cpu_memory_is_the_physical_memory():
    total = device_memory_bytes("cpu")
    assert total == os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") and total > 2**28


def test_check_fits_raises_one_line_with_the_bytes():
    check_fits("a run", 1000, available=1000)  # equal fits
    with pytest.raises(GroupConvError) as info:
        check_fits("a run", 1001, available=1000)
    message = str(info.value)
    assert message == "a run needs at least 1001 B (1,001 bytes), more than the 1000 B of cpu memory; use smaller sizes"
    assert "\n" not in message
