"""Reading ahead: the next item is made in a thread while the caller has the current one,
one ahead at most, with the producer's errors raised in place and nothing left running."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from loanrisk.data.readahead import read_ahead


def _threads() -> set[str]:
    return {t.name for t in threading.enumerate() if t.name.startswith("read-ahead")}


def test_the_items_in_order_and_the_thread_gone_at_the_end() -> None:
    assert list(read_ahead(iter(range(100)))) == list(range(100))
    assert list(read_ahead(iter([]))) == []
    assert not _threads()


def test_the_next_item_is_made_while_the_caller_has_this_one_and_never_more() -> None:
    made: list[int] = []
    started = [threading.Event() for _ in range(4)]

    def items() -> Iterator[int]:
        for i in range(4):
            started[i].set()
            made.append(i)
            yield i

    for item in read_ahead(items()):
        if item < 3:  # while the caller works on this item, the next one is made
            assert started[item + 1].wait(10), f"item {item + 1} was not read ahead"
        assert made == list(range(min(item + 2, 4)))  # and none after it


def test_an_error_making_an_item_is_raised_in_its_place() -> None:
    def items() -> Iterator[int]:
        yield 1
        yield 2
        raise ValueError("malformed CSV: line 7")

    seen = []
    with pytest.raises(ValueError, match="line 7"):
        for item in read_ahead(items()):
            seen.append(item)
    assert seen == [1, 2]
    assert not _threads()


def test_closing_early_stops_the_thread_and_closes_the_items() -> None:
    closed = threading.Event()
    made: list[int] = []

    def items() -> Iterator[int]:
        try:
            for i in range(1_000):
                made.append(i)
                yield i
        finally:
            closed.set()

    ahead = read_ahead(items())
    assert next(ahead) == 0
    ahead.close()
    assert closed.is_set()  # closed before close() returned: the caller may close the file
    assert len(made) <= 2
    assert not _threads()
