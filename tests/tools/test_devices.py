"""torch's CPU threads: ARPO_THREADS when set; else left to OMP_NUM_THREADS / MKL_NUM_THREADS
when the user set one; else the cores no other work keeps busy, once per process."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch

from arpo.config import Settings
from arpo.tools import devices


@pytest.fixture(autouse=True)
def fresh_process(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """As in a new process: arpo has set no thread count; torch's is restored afterwards."""
    before = torch.get_num_threads()
    monkeypatch.setattr(devices, "_threads_set", [])
    for variable in devices.THREAD_VARIABLES:
        monkeypatch.delenv(variable, raising=False)
    yield
    torch.set_num_threads(before)


def busy(monkeypatch: pytest.MonkeyPatch, cores: int, load: float) -> None:
    monkeypatch.setattr(devices, "usable_cores", lambda: cores)
    monkeypatch.setattr(devices, "_load", lambda: load)


def test_a_user_set_omp_num_threads_is_left_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    busy(monkeypatch, cores=8, load=7.0)
    torch.set_num_threads(3)
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert devices.use_threads(None) is None
    assert torch.get_num_threads() == 3


def test_arpo_threads_wins_over_everything(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    assert devices.use_threads(1) == 1
    assert torch.get_num_threads() == 1
    assert Settings(threads=1).threads == 1


def test_a_busy_machine_gets_one_thread_an_idle_one_its_cores(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    busy(monkeypatch, cores=2, load=4.3)  # three other processes on two cores
    assert devices.free_cores() == 1
    busy(monkeypatch, cores=8, load=2.2)
    assert devices.free_cores() == 6
    busy(monkeypatch, cores=2, load=0.1)
    assert devices.free_cores() == 2

    torch.set_num_threads(2)  # torch's own default on a 2-core machine
    busy(monkeypatch, cores=2, load=4.3)
    assert devices.use_threads(None) == 1
    assert torch.get_num_threads() == 1


def test_the_default_is_chosen_once_and_never_above_torchs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    torch.set_num_threads(2)
    busy(monkeypatch, cores=16, load=0.0)
    assert devices.use_threads(None) == 2  # not more than torch would use
    busy(monkeypatch, cores=16, load=15.0)
    assert devices.use_threads(None) is None  # chosen already in this process
    assert torch.get_num_threads() == 2


def test_a_thread_count_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="threads"):
        Settings(threads=0)
