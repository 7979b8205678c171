"""The content-addressed artifact store and its record index."""

from __future__ import annotations

import hashlib
import os

import numpy as np
import pytest
from PIL import Image

from arpo.errors import InvalidImageError
from arpo.tools.images import encode_png
from arpo.tools.store import ArtifactStore, atomic_write


def picture(colour=(200, 30, 30)) -> Image.Image:
    pixels = np.zeros((24, 32, 3), dtype=np.uint8)
    pixels[:] = colour
    pixels[4:12, 4:20] = (0, 0, 0)
    return Image.fromarray(pixels)


def all_files(root) -> list:
    return sorted(p for p in root.rglob("*") if p.is_file())


def test_image_round_trip(tmp_path):
    store = ArtifactStore(tmp_path)
    image = picture()
    digest = store.put_image(image)
    assert len(digest) == 64
    assert digest == hashlib.sha256(encode_png(image)).hexdigest()
    assert store.has(digest)
    path = store.path(digest)
    assert path == tmp_path / "images" / digest[:2] / f"{digest}.png"
    back = store.get_image(digest)
    assert back.mode == "RGB"
    assert back.size == (32, 24)
    assert np.array_equal(np.asarray(back), np.asarray(image))


def test_same_pixels_give_the_same_hash_and_one_file(tmp_path):
    store = ArtifactStore(tmp_path)
    first = store.put_image(picture())
    copy = picture()
    copy.info["comment"] = "metadata is not part of the artifact"
    assert store.put_image(copy) == first
    assert store.put_image(picture()) == first
    assert all_files(tmp_path) == [store.path(first)]
    other = store.put_image(picture((10, 200, 10)))
    assert other != first
    assert len(all_files(tmp_path)) == 2


def test_put_image_does_not_rewrite_an_existing_artifact(tmp_path):
    store = ArtifactStore(tmp_path)
    digest = store.put_image(picture())
    path = store.path(digest)
    os.utime(path, (1_000_000, 1_000_000))
    store.put_image(picture())
    assert path.stat().st_mtime == 1_000_000


@pytest.mark.parametrize(
    "digest",
    [
        "",
        "abc",
        "0" * 63,
        "0" * 65,
        "A" * 64,
        "g" * 64,
        "../" + "0" * 61,
        "0" * 32 + "/" + "0" * 31,
    ],
)
def test_invalid_ids_are_rejected(tmp_path, digest):
    store = ArtifactStore(tmp_path)
    for call in (store.path, store.has, store.get_image):
        with pytest.raises(InvalidImageError, match="is not an artifact id"):
            call(digest)


def test_id_with_trailing_newline_is_rejected(tmp_path):
    store = ArtifactStore(tmp_path)
    with pytest.raises(InvalidImageError, match="is not an artifact id"):
        store.path("0" * 64 + "\n")


def test_missing_artifact_message(tmp_path):
    store = ArtifactStore(tmp_path / "store")
    digest = "ab" * 32
    assert not store.has(digest)
    with pytest.raises(InvalidImageError) as info:
        store.get_image(digest)
    message = str(info.value)
    assert digest in message
    assert "not in the store" in message
    assert str(tmp_path / "store") in message
    assert "ARPO_HOME" in message


def test_records_round_trip(tmp_path):
    store = ArtifactStore(tmp_path)
    assert store.get_record("some key") is None
    store.put_record("some key", {"image": "ab" * 32, "n": 3})
    store.put_record('{"json": "as a key"}', {"other": True})
    assert store.get_record("some key") == {"image": "ab" * 32, "n": 3}
    assert store.get_record('{"json": "as a key"}') == {"other": True}
    store.put_record("some key", {"image": "cd" * 32})
    assert store.get_record("some key") == {"image": "cd" * 32}
    assert ArtifactStore(tmp_path).get_record("some key") == {"image": "cd" * 32}


def test_corrupt_record_reads_as_missing(tmp_path):
    store = ArtifactStore(tmp_path)
    store.put_record("k", {"a": 1})
    [path] = all_files(tmp_path / "index")
    path.write_text("{truncated")
    assert store.get_record("k") is None


def test_writes_leave_no_temp_files(tmp_path):
    store = ArtifactStore(tmp_path)
    for colour in ((1, 2, 3), (4, 5, 6)):
        store.put_image(picture(colour))
    store.put_record("a", {"x": 1})
    store.put_record("a", {"x": 2})
    names = [p.name for p in tmp_path.rglob("*")]
    assert not [n for n in names if n.startswith(".tmp-")]
    assert len(all_files(tmp_path)) == 3


def test_failed_atomic_write_leaves_nothing(tmp_path, monkeypatch):
    target = tmp_path / "sub" / "file.bin"
    atomic_write(target, b"old")

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        atomic_write(target, b"new")
    assert target.read_bytes() == b"old"
    assert [p.name for p in target.parent.iterdir()] == ["file.bin"]
