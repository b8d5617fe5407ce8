"""The storage contract on every backend: atomic writes, listing, confinement."""

from __future__ import annotations

import contextlib
import hashlib
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from loanrisk.errors import NotFound, PathNotAllowed, StorageError
from loanrisk.settings import Settings
from loanrisk.storage import FsspecStorage, MemoryStorage, Storage, open_storage
from loanrisk.storage import fs as fs_module
from loanrisk.storage.base import HASH_CHUNK
from loanrisk.storage.problems import Listing


class Boom(Exception):
    pass


def test_write_read_list_delete(storage: Storage) -> None:
    storage.write_bytes("a/b/one.json", b"1")
    storage.write_bytes("a/two.bin", b"2" * 10)
    assert storage.read_bytes("a/b/one.json") == b"1"
    assert storage.exists("a/two.bin") and not storage.exists("a/b")
    assert storage.list("a") == ["b", "two.bin"]
    assert storage.list("nowhere") == []
    assert list(storage.walk_files("a")) == ["a/b/one.json", "a/two.bin"]
    with storage.open_read("a/two.bin") as stream:
        assert stream.read() == b"2" * 10
    storage.write_bytes("a/two.bin", b"new")
    assert storage.read_bytes("a/two.bin") == b"new"
    storage.delete("a")
    assert storage.list("a") == []
    storage.delete("a")  # absent is fine


def test_a_walk_lists_every_folder_once_and_tells_folders_from_files(storage: Storage) -> None:
    for path in ("a/b/one.json", "a/b/c/two.json", "a/three.bin", "top.txt"):
        storage.write_bytes(path, b"x")
    walked = dict(storage.walk())
    assert list(walked) == ["", "a", "a/b", "a/b/c"]
    assert walked[""].names == ["a", "top.txt"] and walked[""].folders == {"a"}
    assert walked["a/b"].names == ["c", "one.json"] and walked["a/b"].folders == {"c"}
    assert all(not found.links and not found.problems for found in walked.values())
    assert [folder for folder, _ in storage.walk("a/b")] == ["a/b", "a/b/c"]
    assert [folder for folder, _ in storage.walk("nowhere")] == ["nowhere"]


def test_a_digest_is_the_files_sha256_and_size(storage: Storage) -> None:
    data = os.urandom(HASH_CHUNK + 7)  # more than one chunk
    storage.write_bytes("big.bin", data)
    assert storage.digest("big.bin") == (hashlib.sha256(data).hexdigest(), len(data))
    storage.write_bytes("empty.bin", b"")
    assert storage.digest("empty.bin") == (hashlib.sha256(b"").hexdigest(), 0)
    with pytest.raises(NotFound):
        storage.digest("nope.bin")


def test_reading_a_missing_file_is_not_found(storage: Storage) -> None:
    with pytest.raises(NotFound, match=r"no such file: nope\.txt"):
        storage.read_bytes("nope.txt")


def test_a_failed_write_leaves_nothing_and_keeps_the_old_content(storage: Storage) -> None:
    storage.write_bytes("keep.txt", b"old")
    with pytest.raises(Boom), storage.open_write("keep.txt") as stream:
        stream.write(b"half of the new")
        raise Boom
    with pytest.raises(Boom), storage.open_write("fresh.txt") as stream:
        stream.write(b"x" * 1000)
        raise Boom
    assert storage.read_bytes("keep.txt") == b"old"
    assert not storage.exists("fresh.txt")
    assert storage.list() == ["keep.txt"]


def test_a_reader_sees_the_old_content_while_a_write_is_in_progress(storage: Storage) -> None:
    storage.write_bytes("f.txt", b"old")
    with storage.open_write("f.txt") as stream:
        stream.write(b"new content")
        assert storage.read_bytes("f.txt") == b"old"
    assert storage.read_bytes("f.txt") == b"new content"


@pytest.mark.parametrize("path", ["..", "../x", "a/../../x", "/etc/passwd", "a/\x00b", "/a\x00"])
def test_paths_that_leave_the_root_are_refused(storage: Storage, path: str) -> None:
    with pytest.raises(PathNotAllowed):
        storage.resolve(path)


def test_an_absolute_local_path_with_a_nul_byte_is_refused_not_a_crash(tmp_path: Path) -> None:
    storage = FsspecStorage(str(tmp_path))
    with pytest.raises(PathNotAllowed, match="NUL byte"):
        storage.resolve(f"{tmp_path}/models\x00")


def test_harmless_relative_paths_are_normalised(storage: Storage) -> None:
    assert storage.resolve("a/./b/../c") == "a/c"
    assert storage.resolve("") == ""


def test_symlinks_that_escape_the_root_are_refused(tmp_path: Path) -> None:
    root, outside = tmp_path / "root", tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("secret")
    storage = FsspecStorage(str(root))
    (root / "link").symlink_to(outside)
    (root / "inside").mkdir()
    (root / "ok").symlink_to(root / "inside")
    for path in ("link", "link/secret.txt"):
        with pytest.raises(PathNotAllowed, match="outside the storage root"):
            storage.resolve(path)
    with pytest.raises(PathNotAllowed):
        storage.read_bytes("link/secret.txt")
    with pytest.raises(PathNotAllowed):
        storage.write_bytes("link/planted.txt", b"x")
    assert not (outside / "planted.txt").exists()
    assert storage.resolve("ok") == "ok"


def test_a_listing_skips_a_symlink_out_of_the_root_and_names_it(tmp_path: Path) -> None:
    root, outside = tmp_path / "root", tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("secret")
    storage = FsspecStorage(str(root))
    storage.write_bytes("d/a.txt", b"a")
    (root / "d" / "inside").symlink_to(root / "d" / "a.txt")
    (root / "d" / "link").symlink_to(outside)
    (root / "d" / "file-link").symlink_to(outside / "secret.txt")
    (root / "d" / "dangling").symlink_to(tmp_path / "gone")
    assert storage.list("d") == ["a.txt", "inside"]
    listing = storage.listing("d")
    assert listing.names == ["a.txt", "inside"]
    assert [(p.kind, p.path) for p in listing.problems] == [
        ("link", "d/dangling"),
        ("link", "d/file-link"),
        ("link", "d/link"),
    ]
    assert all(str(tmp_path) not in p.message for p in listing.problems)
    assert list(storage.walk_files("")) == ["d/a.txt", "d/inside"]
    with pytest.raises(PathNotAllowed):
        storage.list("d/link")


def test_a_walk_names_links_out_once_and_follows_no_link(tmp_path: Path) -> None:
    root, outside = tmp_path / "root", tmp_path / "outside"
    outside.mkdir()
    storage = FsspecStorage(str(root))
    storage.write_bytes("d/e/a.txt", b"a")
    (root / "d" / "loop").symlink_to(root / "d")  # a folder link inside: listed, not followed
    (root / "d" / "e" / "out").symlink_to(outside)
    walked = dict(storage.walk())
    assert list(walked) == ["", "d", "d/e"]
    assert walked["d"].names == ["e", "loop"]
    assert walked["d"].links == {"loop"} and walked["d"].folders == {"e"}
    assert [p.path for p in walked["d/e"].problems] == ["d/e/out"]
    assert walked["d/e"].names == ["a.txt"]


class UnlistableFolder(MemoryStorage):
    """Memory storage whose folder ``shut`` cannot be listed (permission denied)."""

    def listing(self, path: str = "") -> Listing:
        if path == "shut":
            raise StorageError("permission denied on shut")
        return super().listing(path)


def test_a_folder_a_walk_cannot_list_is_raised_or_handed_to_on_error() -> None:
    storage = UnlistableFolder()
    storage.write_bytes("ok/a.txt", b"a")
    storage.write_bytes("shut/b.txt", b"b")
    with pytest.raises(StorageError, match="permission denied on shut"):
        list(storage.walk())
    failed: list[str] = []
    walked = [f for f, _ in storage.walk(on_error=lambda path, _exc: failed.append(path))]
    assert walked == ["", "ok"] and failed == ["shut"]


def test_memory_storage_listings_name_no_problems() -> None:
    storage = MemoryStorage()
    storage.write_bytes("d/a.txt", b"a")
    assert storage.listing("d") == Listing(["a.txt"], [])


@pytest.mark.parametrize("uri", ["s3://bucket/raw.csv", "az://container/x", "abfs://c/x"])
def test_an_object_store_uri_on_a_local_storage_is_outside_it(tmp_path: Path, uri: str) -> None:
    storage = FsspecStorage(str(tmp_path / "share"))
    with pytest.raises(PathNotAllowed, match="outside the storage root"):
        storage.resolve(uri)


def test_absolute_local_paths_inside_the_root_are_accepted(tmp_path: Path) -> None:
    storage = FsspecStorage(str(tmp_path / "share"))
    assert storage.resolve(str(tmp_path / "share" / "data")) == "data"
    assert storage.resolve(str(tmp_path / "share")) == ""
    with pytest.raises(PathNotAllowed):
        storage.resolve(str(tmp_path / "share-other"))


@pytest.mark.parametrize("backend", ["s3", "azure"])
def test_object_store_uris_outside_the_root_are_refused(
    backend: str, request: pytest.FixtureRequest
) -> None:
    storage = open_storage(request.getfixturevalue(f"{backend}_settings"))
    assert storage.resolve(f"{storage.url}/data/x.csv") == "data/x.csv"
    others = ("s3://other-bucket/x", "az://other-container/x", f"{storage.url}-evil/x")
    for uri in (*others, "file:///etc/passwd", f"{storage.url}/../x"):
        with pytest.raises(PathNotAllowed):
            storage.resolve(uri)


@pytest.mark.parametrize("backend", ["s3", "azure"])
def test_a_failed_large_upload_leaves_no_object(
    backend: str, request: pytest.FixtureRequest
) -> None:
    storage = open_storage(request.getfixturevalue(f"{backend}_settings"))
    chunk = os.urandom(1 << 20)
    with pytest.raises(Boom), storage.open_write("big.bin") as stream:
        for _ in range(12):  # > 5 MiB: larger than one upload part
            stream.write(chunk)
        raise Boom
    assert not storage.exists("big.bin")
    with storage.open_write("big.bin") as stream:
        for _ in range(12):
            stream.write(chunk)
    assert len(storage.read_bytes("big.bin")) == 12 << 20


CRASH = """
import os, sys
from loanrisk.storage import FsspecStorage
storage = FsspecStorage(sys.argv[1])
with storage.open_write("model.bin") as stream:
    stream.write(b"half")
    stream.flush()
    os._exit(3)
"""


def test_a_process_killed_mid_write_leaves_nothing_visible(tmp_path: Path) -> None:
    storage = FsspecStorage(str(tmp_path))
    storage.write_bytes("model.bin", b"complete")
    done = subprocess.run([sys.executable, "-c", CRASH, str(tmp_path)], check=False)
    assert done.returncode == 3
    assert storage.read_bytes("model.bin") == b"complete"
    assert storage.list() == ["model.bin"]


def test_concurrent_writers_never_produce_a_mixed_file(storage: Storage) -> None:
    payloads = [bytes([i]) * 200_000 for i in range(4)]

    def write(data: bytes) -> None:
        for _ in range(3):
            storage.write_bytes("shared.bin", data)

    threads = [threading.Thread(target=write, args=(p,)) for p in payloads]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert storage.read_bytes("shared.bin") in payloads


def test_settings_refuse_unknown_schemes_and_insecure_production() -> None:
    with pytest.raises(ValueError, match="unsupported storage scheme"):
        Settings(storage="ftp://host/x")
    with pytest.raises(ValueError, match="plain-HTTP"):
        Settings(environment="production", s3_endpoint_url="http://s3.local")
    with pytest.raises(ValueError, match="plain-HTTP Azure"):
        Settings(
            environment="production",
            storage="az://c/p",
            azure_connection_string="DefaultEndpointsProtocol=http;AccountName=a;",
        )


def test_exclusive_create_lets_exactly_one_writer_win(storage: Storage) -> None:
    results: list[bool] = []
    lock = threading.Lock()

    def claim(i: int) -> None:
        won = storage.create_exclusive("claims/1", f"writer {i}".encode())
        with lock:
            results.append(won)

    threads = [threading.Thread(target=claim, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [False] * 5 + [True]
    assert storage.read_bytes("claims/1").startswith(b"writer ")
    assert storage.create_exclusive("claims/2", b"x") is True


def test_an_exclusively_created_file_is_never_seen_part_written(tmp_path: Path) -> None:
    """A lock file read while it is being created is absent or whole: an empty one would be
    taken for a dead writer's and taken over (two alias moves at once, one lost)."""
    storage = FsspecStorage(str(tmp_path / "root"))
    seen: dict[str, int] = {"empty": 0, "whole": 0}
    done = threading.Event()

    def read() -> None:
        while not done.is_set():
            with contextlib.suppress(NotFound):
                seen["whole" if storage.read_bytes("locks/a.lock") else "empty"] += 1

    switching = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # the reader runs between any two steps of the creation
    reader = threading.Thread(target=read)
    reader.start()
    try:
        for _ in range(1_500):
            assert storage.create_exclusive("locks/a.lock", b'{"at": 1}')
            assert not storage.create_exclusive("locks/a.lock", b'{"at": 2}')
            storage.delete("locks/a.lock")
    finally:
        done.set()
        reader.join()
        sys.setswitchinterval(switching)
    assert seen["empty"] == 0 and seen["whole"] > 0
    assert [p.name for p in (tmp_path / "root" / "locks").iterdir()] == []  # no temporaries


def test_temporary_files_of_killed_writers_are_collected(tmp_path: Path) -> None:
    storage = FsspecStorage(str(tmp_path / "root"))
    storage.write_bytes("models/m/versions/1/manifest.json", b"{}")
    folder = tmp_path / "root" / "models" / "m" / "versions" / "1"
    abandoned = folder / f".model.ubj.tmp-{'a' * 32}"
    in_flight = folder / f".report.json.tmp-{'b' * 32}"
    lookalike = folder / ".hidden.tmp-notours"
    for path in (abandoned, in_flight, lookalike):
        path.write_bytes(b"partial")
    two_hours_ago = time.time() - 7200
    os.utime(abandoned, (two_hours_ago, two_hours_ago))
    os.utime(lookalike, (two_hours_ago, two_hours_ago))
    assert storage.collect_abandoned_writes() == 1
    assert not abandoned.exists()
    assert in_flight.exists() and lookalike.exists()
    assert storage.read_bytes("models/m/versions/1/manifest.json") == b"{}"


def test_an_exclusive_creation_s_temporary_left_by_a_killed_writer_is_collected(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    storage = FsspecStorage(str(tmp_path / "root"))
    storage.write_bytes("locks/keep.json", b"{}")
    # killed after the link, before the temporary's unlink
    monkeypatch.setattr(fs_module.os, "unlink", lambda path: None)
    assert storage.create_exclusive("locks/a.lock", b'{"at": 1}')
    monkeypatch.undo()
    folder = tmp_path / "root" / "locks"
    (left,) = (p for p in folder.iterdir() if p.name.startswith("."))
    two_hours_ago = time.time() - 7200
    os.utime(left, (two_hours_ago, two_hours_ago))
    assert storage.collect_abandoned_writes() == 1
    assert sorted(p.name for p in folder.iterdir()) == ["a.lock", "keep.json"]


def test_an_error_of_the_writer_is_its_own_not_a_storage_error(storage: Storage) -> None:
    with pytest.raises(ZeroDivisionError), storage.open_write("x/y.bin") as stream:
        stream.write(b"partial")
        _ = 1 / 0
    assert not storage.exists("x/y.bin")
