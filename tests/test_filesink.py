"""FileWriter writes exactly the bytes it is given, in order, whether O_DIRECT is possible or not."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipelines.ingest.filewriter import ALIGN, FileWriter

TWO_BLOCKS = 2 * ALIGN  # a tiny staging buffer: every few bytes cross a block boundary


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(pieces=st.lists(st.binary(min_size=0, max_size=3 * ALIGN + 17), max_size=12), direct=st.booleans())
def test_the_file_holds_exactly_the_pieces_in_order(tmp_path, pieces, direct):
    path = tmp_path / f"out-{direct}.bin"
    sink = FileWriter(path, direct=direct, stage_bytes=TWO_BLOCKS)
    for piece in pieces:
        sink.write(piece)
    sink.close()
    assert path.read_bytes() == b"".join(pieces)


def test_a_large_file_through_the_default_stage(tmp_path):
    data = os.urandom(1 << 20) * 20 + b"tail that is not a whole block"
    sink = FileWriter(tmp_path / "big.bin")
    for start in range(0, len(data), 3_000_001):  # pieces that never line up with a block
        sink.write(data[start : start + 3_000_001])
    sink.close()
    assert (tmp_path / "big.bin").read_bytes() == data


@pytest.mark.skipif(not Path("/dev/shm").is_dir(), reason="no tmpfs mounted at /dev/shm")
def test_a_filesystem_without_o_direct_still_gets_the_file():
    # tmpfs refused O_DIRECT before Linux 6.6: the sink falls back to a buffered file there
    path = Path("/dev/shm") / f"filesink-{os.getpid()}.bin"
    try:
        sink = FileWriter(path, stage_bytes=TWO_BLOCKS)
        sink.write(b"x" * (ALIGN + 5))
        sink.close()
        assert path.read_bytes() == b"x" * (ALIGN + 5)
    finally:
        path.unlink(missing_ok=True)


def test_abandon_removes_the_file(tmp_path):
    path = tmp_path / "gone.bin"
    sink = FileWriter(path, stage_bytes=TWO_BLOCKS)
    sink.write(b"y" * (5 * ALIGN))
    sink.abandon()
    assert not path.exists()
