"""Reading ahead: the next chunk of a file is parsed by a thread while the caller scores (or
validates) the current one.

The CSV parser's tokenizer, Arrow and oneDAL release the GIL for most of their work, so on
two cores the parsing of chunk k + 1 overlaps the validation, transform and prediction of
chunk k. One chunk ahead, never more: memory holds the chunk being worked on and the next.
"""

from __future__ import annotations

import threading
from collections.abc import Generator, Iterator
from typing import Any, TypeVar

T = TypeVar("T")

_END = object()


def read_ahead(items: Iterator[T], *, name: str = "read-ahead") -> Generator[T, None, None]:
    """``items``, each produced by a thread (``name``) while the caller works on the one
    before it. An exception raised producing an item is raised here, in its place.
    Closing this generator (or its end) stops the thread once its current item is made and
    closes ``items`` (in the thread that ran it); the caller may then close what ``items``
    reads."""
    wanted = threading.Semaphore(0)  # one release: produce one more item
    ready = threading.Semaphore(0)
    box: list[Any] = []
    stop = threading.Event()

    def produce() -> None:
        try:
            while True:
                wanted.acquire()
                if stop.is_set():
                    return
                try:
                    box.append(next(items))
                except StopIteration:
                    box.append(_END)
                    return
                except BaseException as exc:  # raised in the caller, where it belongs
                    box.append(exc)
                    return
                finally:
                    ready.release()
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()

    thread = threading.Thread(target=produce, name=name, daemon=True)
    thread.start()
    wanted.release()
    try:
        while True:
            ready.acquire()
            item = box.pop()
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            wanted.release()  # the next one is parsed while the caller has this one
            yield item
    finally:
        stop.set()
        wanted.release()
        thread.join()
