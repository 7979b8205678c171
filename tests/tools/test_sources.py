"""The one way in for images: paths (confined to roots for remote callers, race-free), base64,
data URLs, artifact ids, bytes and PIL images, and http(s) URLs (off by default; public
addresses only, checked on every redirect, within one deadline)."""

from __future__ import annotations

import base64
import io
import os
import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from PIL import Image

from arpo.config import Settings
from arpo.errors import InvalidImageError
from arpo.tools import sources
from arpo.tools.previews import encode_preview, side_by_side
from arpo.tools.sources import (
    SourcePolicy,
    classify,
    confine_path,
    local_policy,
    names_image,
    open_confined,
    policy_from_settings,
    resolve_image,
)
from arpo.tools.store import ArtifactStore
from arpo.tools.urls import check_public_addresses, fetch_url, is_public_address


def png_bytes(
    size: tuple[int, int] = (32, 24), colour: tuple[int, int, int] = (200, 30, 30)
) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture
def layout(tmp_path: Path) -> dict[str, Path]:
    """An allowed root with an image, a text file and a link out; a secret image outside."""
    root = tmp_path / "allowed"
    (root / "sub").mkdir(parents=True)
    outside = tmp_path / "outside"
    outside.mkdir()
    (root / "sub" / "ok.png").write_bytes(png_bytes())
    (root / "notes.txt").write_text("not an image")
    (outside / "secret.png").write_bytes(png_bytes())
    (root / "link.png").symlink_to(outside / "secret.png")
    (root / "dirlink").symlink_to(outside)
    (root / "inner.png").symlink_to(root / "sub" / "ok.png")
    return {"root": root, "outside": outside}


@pytest.fixture
def policy(layout: dict[str, Path]) -> SourcePolicy:
    return SourcePolicy(roots=[layout["root"]])


@pytest.fixture
def store(tmp_path: Path) -> ArtifactStore:
    return ArtifactStore(tmp_path / "store")


def test_classify() -> None:
    assert classify("a" * 64) == "artifact"
    assert classify("A" * 64) == "artifact"
    assert classify("data:image/png;base64,AAAA") == "data"
    assert classify("https://example.com/a.png") == "url"
    assert classify("HTTP://example.com/a.png") == "url"
    assert classify(base64.b64encode(png_bytes()).decode()) == "base64"
    assert classify("/9j/" + "A" * 80) == "base64"  # JPEG base64 starts with a slash
    assert classify("photos/cat.png") == "path"
    assert classify("/home/me/cat.jpg") == "path"
    long_dir = "/home/me/Pictures/holidays_in_the_mountains/second_week/raw_scans_from_film"
    assert len(long_dir) >= 64 and classify(long_dir) == "path", "no '.', but absolute"
    assert classify("a red fox in snow, watercolour") == "path"  # given as an image: a path
    with pytest.raises(InvalidImageError, match="'file:' URLs are not supported"):
        classify("file:///etc/passwd")


@pytest.mark.parametrize(
    ("text", "image"),
    [
        # artifact ids, data: URLs, URLs of any scheme, base64
        ("a" * 64, True),
        ("data:image/png;base64,AAAA", True),
        ("data:,hello", True),  # names an image; the resolver says it is not one
        ("https://example.com/a.png", True),
        ("HTTP://example.com/page", True),
        ("file:///etc/passwd", True),
        ("file:/etc/passwd", True),
        ("ftp://example.com/a.png", True),
        (base64.b64encode(png_bytes()).decode(), True),
        ("iVBOR" + "A" * 70 + "\n" + "B" * 40, True),
        ("/9j/" + "A" * 80, True),
        # path-like
        ("/home/me/cat.jpg", True),
        ("/no/such/file", True),  # never checked against the filesystem
        ("/imagine a castle", True),  # starts with '/'
        ("~", True),
        ("~/Pictures/cat", True),
        ("~bob/cat.png", True),
        ("./cat", True),
        ("../pics/cat", True),
        (".\\cat", True),
        ("..\\pics\\cat", True),
        ("C:\\Users\\me\\cat.png", True),
        ("d:/pics/cat", True),
        ("photos/cat", True),
        ("photos\\cat", True),
        ("cat.png", True),
        ("IMG_0001.JPEG", True),
        ("scan.TIFF", True),
        ("holiday photo 1.jpg", True),
        ("  cat.webp  ", True),
        # prompts
        ("a red fox in snow, watercolour", False),
        ("a black/white photo of a cat", False),
        ("black and white", False),
        ("cat", False),
        ("notes.txt", False),
        ("a cat, in the style of cat.png", False),
        ("portrait: a woman in red", False),
        ("see https://example.com for more", False),
        ("data: a bar chart of sales", False),
        ("~cute cat~", False),
        ("photos/cat.png\nand a dog", False),
        ("a painting of a quiet harbour at dawn with fishing boats and gulls overhead", False),
        ("", False),
        ("   ", False),
    ],
)
def test_names_image(text: str, image: bool) -> None:
    assert names_image(text) is image


def test_names_image_never_touches_the_filesystem(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "cat").write_bytes(png_bytes())
    monkeypatch.chdir(tmp_path)
    assert names_image("cat") is False, "an existing file named like a word is still a prompt"
    for name in ("exists", "is_file", "is_dir", "stat", "lstat"):
        monkeypatch.setattr(Path, name, lambda *a, **k: pytest.fail("touched the filesystem"))
    monkeypatch.setattr(os, "stat", lambda *a, **k: pytest.fail("touched the filesystem"))
    assert names_image("/etc/shadow") is True
    assert names_image("a cat") is False


def test_names_image_for_non_text_sources(tmp_path: Path) -> None:
    assert names_image(tmp_path / "x.png") is True
    assert names_image(png_bytes()) is True
    assert names_image(Image.new("RGB", (20, 20))) is True
    assert names_image(42) is False


def test_paths_inside_a_root_load(layout, policy, store, monkeypatch) -> None:
    image = resolve_image(str(layout["root"] / "sub" / "ok.png"), policy, store)
    assert image.size == (32, 24)
    monkeypatch.chdir(layout["root"])
    assert resolve_image("sub/ok.png", policy, store).size == (32, 24)
    assert resolve_image("inner.png", policy, store).size == (32, 24), "links within a root"
    assert resolve_image("sub/../sub/ok.png", policy, store).size == (32, 24)


@pytest.mark.parametrize(
    ("relative", "message"),
    [
        ("../outside/secret.png", "'..' components lead outside"),
        ("sub/../../outside/secret.png", "'..' components lead outside"),
        ("link.png", "symbolic link"),
        ("dirlink/secret.png", "symbolic link"),
    ],
)
def test_paths_escaping_a_root_are_refused(layout, policy, store, relative, message) -> None:
    with pytest.raises(InvalidImageError, match=message) as info:
        resolve_image(str(layout["root"] / relative), policy, store)
    assert "ARPO_ALLOWED_ROOTS" in str(info.value)


def test_absolute_path_outside_roots_is_refused(layout, policy, store) -> None:
    with pytest.raises(InvalidImageError, match="outside the allowed folders"):
        resolve_image(str(layout["outside"] / "secret.png"), policy, store)
    with pytest.raises(InvalidImageError, match="outside the allowed folders"):
        resolve_image("/etc/passwd", policy, store)
    with pytest.raises(InvalidImageError, match="outside the allowed folders"):
        resolve_image("~/whatever.png", SourcePolicy(roots=[]), store)


def test_outside_refusal_is_the_same_whether_or_not_the_file_exists(layout, policy, store):
    messages = []
    for name in ("secret.png", "absent.png"):
        with pytest.raises(InvalidImageError) as info:
            resolve_image(str(layout["outside"] / name), policy, store)
        messages.append(str(info.value).replace(name, "NAME"))
    assert messages[0] == messages[1]
    messages = []
    for name in ("secret.png", "absent.png"):  # through a link out of the root
        with pytest.raises(InvalidImageError) as info:
            resolve_image(str(layout["root"] / "dirlink" / name), policy, store)
        messages.append(str(info.value).replace(name, "NAME"))
    assert messages[0] == messages[1]
    assert "symbolic link" in messages[0]


def test_path_objects_are_confined_too(layout, policy, store) -> None:
    assert resolve_image(layout["root"] / "sub" / "ok.png", policy, store).size == (32, 24)
    with pytest.raises(InvalidImageError, match="outside the allowed folders"):
        resolve_image(layout["outside"] / "secret.png", policy, store)
    with pytest.raises(InvalidImageError, match="symbolic link"):
        resolve_image(layout["root"] / "link.png", policy, store)


def test_bytes_and_pil_images_go_to_the_decoder(policy, store) -> None:
    assert resolve_image(png_bytes(), policy, store).size == (32, 24)
    assert resolve_image(bytearray(png_bytes()), policy, store).size == (32, 24)
    rgba = Image.new("RGBA", (20, 20), (0, 0, 0, 0))
    image = resolve_image(rgba, policy, store)
    assert (image.mode, image.getpixel((0, 0))) == ("RGB", (255, 255, 255))
    with pytest.raises(InvalidImageError, match="too large"):
        resolve_image(Image.new("RGB", (100, 100)), SourcePolicy(roots=[], max_pixels=500), store)
    with pytest.raises(InvalidImageError, match="given as int"):
        resolve_image(7, policy, store)


def test_local_policy_reads_any_path_through_the_same_checks(layout, store, tmp_path) -> None:
    local = local_policy(Settings(home=tmp_path / "home", max_image_pixels=500_000))
    assert local.roots is None and local.allow_urls is False
    secret = layout["outside"] / "secret.png"
    assert resolve_image(str(secret), local, store).size == (32, 24)
    assert resolve_image(secret, local, store).size == (32, 24)
    assert resolve_image(str(layout["root"] / "link.png"), local, store).size == (32, 24)
    with pytest.raises(InvalidImageError, match="not a supported image format"):
        resolve_image(str(layout["root"] / "notes.txt"), local, store)
    with pytest.raises(InvalidImageError, match="file not found"):
        resolve_image(str(layout["root"] / "nope.png"), local, store)
    with pytest.raises(InvalidImageError, match="'file:' URLs are not supported"):
        resolve_image("file:///etc/passwd", local, store)
    with pytest.raises(InvalidImageError, match="too large"):
        resolve_image(Image.new("RGB", (1000, 1000)), local, store)


def test_local_policy_expands_the_home_directory(tmp_path, store, monkeypatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "cat.png").write_bytes(png_bytes())
    assert resolve_image("~/cat.png", local_policy(Settings(home=tmp_path)), store).size == (32, 24)


def test_special_files_inside_a_root_are_refused(layout, policy, store) -> None:
    os.mkfifo(layout["root"] / "pipe.png")
    started = time.perf_counter()
    with pytest.raises(InvalidImageError, match="not a regular file"):
        resolve_image(str(layout["root"] / "pipe.png"), policy, store)
    assert time.perf_counter() - started < 1.0, "a FIFO must not block the read"
    with pytest.raises(InvalidImageError, match="it is a directory"):
        resolve_image(str(layout["root"] / "sub"), policy, store)
    with pytest.raises(InvalidImageError, match=r"not a regular file \(a device\)"):
        resolve_image("/dev/null", SourcePolicy(roots=[Path("/dev")]), store)


def test_open_confined_gives_the_handle_and_real_path(layout) -> None:
    handle, real = open_confined(str(layout["root"] / "inner.png"), [layout["root"]])
    with handle:
        assert real == layout["root"] / "sub" / "ok.png"
        assert handle.read() == png_bytes()


# ------------------------------------------------------------------- check-then-open races


@pytest.fixture
def racy(layout, monkeypatch) -> dict[str, Path]:
    """A real folder and a real file inside the root; a different secret image outside.
    ``swap(kind)`` makes the next confined open swap one of them for a link out, right
    between the path check and the open."""
    root, outside = layout["root"], layout["outside"]
    (root / "folder").mkdir()
    (root / "folder" / "secret.png").write_bytes(png_bytes((40, 40), (1, 1, 1)))
    (root / "file.png").write_bytes(png_bytes((40, 40), (1, 1, 1)))
    (outside / "secret.png").write_bytes(png_bytes((48, 48), (9, 9, 9)))
    checked = sources.confine_path

    def check_then_swap(text, roots):
        real = checked(text, roots)
        if (root / "folder").is_dir() and not (root / "folder").is_symlink():
            shutil.rmtree(root / "folder")
            (root / "folder").symlink_to(outside)
        (root / "file.png").unlink(missing_ok=True)
        (root / "file.png").symlink_to(outside / "secret.png")
        return real

    monkeypatch.setattr(sources, "confine_path", check_then_swap)
    return {"root": root, "outside": outside}


def test_a_folder_swapped_for_a_link_between_check_and_open_is_refused(racy, store) -> None:
    policy = SourcePolicy(roots=[racy["root"]])
    with pytest.raises(InvalidImageError, match="changed while being opened") as info:
        resolve_image(str(racy["root"] / "folder" / "secret.png"), policy, store)
    assert str(racy["root"]) in str(info.value)
    # The swap really happened: without confinement the same name now reads the secret.
    name = str(racy["root"] / "folder" / "secret.png")
    assert resolve_image(name, SourcePolicy(None), store).size == (48, 48)


def test_a_file_swapped_for_a_link_between_check_and_open_is_refused(racy, store) -> None:
    policy = SourcePolicy(roots=[racy["root"]])
    with pytest.raises(InvalidImageError, match="symbolic link"):
        resolve_image(str(racy["root"] / "file.png"), policy, store)


def test_the_fallback_check_refuses_the_swap_too(racy, store, monkeypatch) -> None:
    """Where the kernel cannot name an open descriptor, the name must still be its own real
    path and the same file as the descriptor."""
    monkeypatch.setattr(sources, "_descriptor_path", lambda fd: None)
    policy = SourcePolicy(roots=[racy["root"]])
    with pytest.raises(InvalidImageError, match="changed while being opened"):
        resolve_image(str(racy["root"] / "folder" / "secret.png"), policy, store)


def test_the_fallback_check_accepts_an_unchanged_file(layout, policy, store, monkeypatch):
    monkeypatch.setattr(sources, "_descriptor_path", lambda fd: None)
    assert resolve_image(str(layout["root"] / "sub" / "ok.png"), policy, store).size == (32, 24)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc/self/fd is Linux's")
def test_the_kernel_names_the_open_descriptor(layout) -> None:
    with open(layout["root"] / "inner.png", "rb") as handle:
        assert sources._descriptor_path(handle.fileno()) == layout["root"] / "sub" / "ok.png"


def test_missing_files_and_non_images_inside_a_root(layout, policy, store) -> None:
    with pytest.raises(InvalidImageError, match="file not found"):
        resolve_image(str(layout["root"] / "nope.png"), policy, store)
    with pytest.raises(InvalidImageError, match="not a supported image format"):
        resolve_image(str(layout["root"] / "notes.txt"), policy, store)
    with pytest.raises(InvalidImageError, match="NUL"):
        confine_path("a\x00b.png", [layout["root"]])


def test_base64_and_data_urls(policy, store) -> None:
    raw = base64.b64encode(png_bytes()).decode()
    assert resolve_image(raw, policy, store).size == (32, 24)
    assert resolve_image(f"data:image/png;base64,{raw}", policy, store).size == (32, 24)
    with pytest.raises(InvalidImageError, match="not valid base64"):
        resolve_image("data:image/png;base64,@@@not-base64@@@", policy, store)
    with pytest.raises(InvalidImageError, match="not a supported image format"):
        resolve_image(base64.b64encode(b"hello world " * 10).decode(), policy, store)


def test_oversize_images_are_refused(policy, store) -> None:
    small = SourcePolicy(roots=policy.roots, max_pixels=500)
    with pytest.raises(InvalidImageError, match="too large"):
        resolve_image(base64.b64encode(png_bytes((32, 24))).decode(), small, store)


def test_artifact_ids(policy, store) -> None:
    digest = store.put_image(Image.new("RGB", (20, 20), (1, 2, 3)))
    assert resolve_image(digest, policy, store).size == (20, 20)
    assert resolve_image(digest.upper(), policy, store).size == (20, 20)
    with pytest.raises(InvalidImageError, match="not in the store"):
        resolve_image("0" * 64, policy, store)


def test_empty_source(policy, store) -> None:
    with pytest.raises(InvalidImageError, match="no image given"):
        resolve_image("  ", policy, store)


# --------------------------------------------------------------------------- URLs


def test_urls_are_off_by_default(policy, store) -> None:
    with pytest.raises(InvalidImageError, match="ARPO_ALLOW_URLS"):
        resolve_image("https://example.com/cat.png", policy, store)


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("93.184.216.34", True),
        ("2606:2800:220:1:248:1893:25c8:1946", True),
        ("127.0.0.1", False),
        ("10.1.2.3", False),
        ("172.16.0.1", False),
        ("192.168.1.1", False),
        ("169.254.169.254", False),
        ("100.64.0.1", False),
        ("0.0.0.0", False),
        ("::1", False),
        ("fe80::1%eth0", False),
        ("fd00::1", False),
        ("::ffff:127.0.0.1", False),
        ("224.0.0.1", False),
        ("not an ip", False),
        # IPv6 forms that carry an IPv4 address are judged by that address
        ("::ffff:93.184.216.34", True),
        ("64:ff9b::93.184.216.34", True),  # NAT64 (RFC 6052)
        ("64:ff9b::127.0.0.1", False),
        ("64:ff9b::10.0.0.7", False),
        ("64:ff9b::169.254.169.254", False),
        ("64:ff9b:1::93.184.216.34", False),  # local-use NAT64 (RFC 8215)
        ("64:ff9b:1:a00:7::", False),
        ("2002:5db8:d822::1", True),  # 6to4 of 93.184.216.34
        ("2002:7f00:1::1", False),  # 6to4 of 127.0.0.1
        ("2002:a00:7::1", False),  # 6to4 of 10.0.0.7
        ("2002:a9fe:a9fe::1", False),  # 6to4 of 169.254.169.254
        ("2001:0:5db8:d822:0:f5ff:a247:2def", True),  # Teredo: server and client public
        ("2001:0:5db8:d822:0:f5ff:f5ff:fff8", False),  # Teredo client 10.0.0.7
        ("2001:0:a00:7:0:f5ff:a247:2def", False),  # Teredo server 10.0.0.7
        ("::10.0.0.7", False),  # IPv4-compatible (deprecated): reserved
    ],
)
def test_is_public_address(address: str, public: bool) -> None:
    assert is_public_address(address) is public


HOSTS = {
    "img.example": ["93.184.216.34"],
    "cdn.example": ["93.184.216.35"],
    "internal.example": ["10.0.0.7"],
    "localhost": ["127.0.0.1"],
}


def resolver(host: str, port: int) -> list[str]:
    if host in HOSTS:
        return HOSTS[host]
    if host.replace(".", "").isdigit() or ":" in host:
        return [host]
    raise OSError("name does not resolve")


def url_policy(max_bytes: int = 1_000_000) -> SourcePolicy:
    return SourcePolicy(roots=[], allow_urls=True, url_max_bytes=max_bytes)


def transport(routes: dict[str, httpx.Response]) -> httpx.MockTransport:
    """Answers by the URL the client asked for (scheme, Host header, path); records those
    URLs in ``seen`` and the addresses actually connected to in ``connected``."""
    seen: list[str] = []
    connected: list[str] = []

    def handle(request: httpx.Request) -> httpx.Response:
        asked = f"{request.url.scheme}://{request.headers['host']}{request.url.raw_path.decode()}"
        seen.append(asked)
        connected.append(request.url.host)
        if request.url.scheme == "https":
            assert request.extensions["sni_hostname"] == request.headers["host"].split(":")[0]
        return routes[asked]

    mock = httpx.MockTransport(handle)
    mock.seen = seen  # type: ignore[attr-defined]
    mock.connected = connected  # type: ignore[attr-defined]
    return mock


def png_response() -> httpx.Response:
    return httpx.Response(200, headers={"content-type": "image/png"}, content=png_bytes())


def test_public_url_is_fetched_following_redirects(store) -> None:
    routes = {
        "https://img.example/a.png": httpx.Response(302, headers={"location": "/b.png"}),
        "https://img.example/b.png": httpx.Response(
            301, headers={"location": "https://cdn.example/c.png"}
        ),
        "https://cdn.example/c.png": png_response(),
    }
    mock = transport(routes)
    image = resolve_image(
        "https://img.example/a.png", url_policy(), store, resolver=resolver, transport=mock
    )
    assert image.size == (32, 24)
    assert mock.seen == list(routes)
    assert mock.connected == ["93.184.216.34", "93.184.216.34", "93.184.216.35"]


def test_connection_goes_to_the_checked_address_even_if_dns_changes(store) -> None:
    answers = iter([["93.184.216.34"], ["127.0.0.1"]])  # a rebinding DNS server

    def rebinding(host: str, port: int) -> list[str]:
        return next(answers)

    mock = transport({"http://img.example:8080/a.png": png_response()})
    data = fetch_url(
        "http://img.example:8080/a.png", url_policy(), resolver=rebinding, transport=mock
    )
    assert data == png_bytes()
    assert mock.connected == ["93.184.216.34"]


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8000/x.png",
        "http://localhost/x.png",
        "http://[::1]/x.png",
        "http://169.254.169.254/latest/meta-data",
        "http://internal.example/x.png",
        "http://[64:ff9b::7f00:1]/x.png",
        "http://[2002:a9fe:a9fe::1]/latest/meta-data",
        "http://[::ffff:10.0.0.7]/x.png",
    ],
)
def test_non_public_urls_are_refused_before_any_request(store, url: str) -> None:
    mock = transport({})
    with pytest.raises(InvalidImageError, match="loopback, private, link-local"):
        resolve_image(url, url_policy(), store, resolver=resolver, transport=mock)
    assert mock.seen == []


def test_redirect_to_a_private_address_is_refused(store) -> None:
    routes = {
        "https://img.example/a.png": httpx.Response(
            302, headers={"location": "http://internal.example/admin.png"}
        )
    }
    mock = transport(routes)
    with pytest.raises(InvalidImageError, match=r"10\.0\.0\.7"):
        fetch_url("https://img.example/a.png", url_policy(), resolver=resolver, transport=mock)
    assert mock.seen == ["https://img.example/a.png"]


def test_too_many_redirects(store) -> None:
    routes = {
        f"https://img.example/{i}": httpx.Response(302, headers={"location": f"/{i + 1}"})
        for i in range(10)
    }
    with pytest.raises(InvalidImageError, match="redirected more than 3 times"):
        fetch_url(
            "https://img.example/0", url_policy(), resolver=resolver, transport=transport(routes)
        )


@pytest.mark.parametrize(
    ("response", "message"),
    [
        (
            httpx.Response(200, headers={"content-type": "text/html"}, content=b"<html>"),
            "not an image",
        ),
        (httpx.Response(404, headers={"content-type": "image/png"}), "HTTP 404"),
        (
            httpx.Response(200, headers={"content-type": "image/png"}, content=b"x" * 5000),
            "larger than 1,000 bytes",
        ),
    ],
)
def test_bad_responses(response: httpx.Response, message: str) -> None:
    mock = transport({"https://img.example/a.png": response})
    with pytest.raises(InvalidImageError, match=message):
        fetch_url("https://img.example/a.png", url_policy(1000), resolver=resolver, transport=mock)


def test_non_public_address_among_several_is_refused() -> None:
    def mixed(host: str, port: int) -> list[str]:
        return ["93.184.216.34", "64:ff9b::a00:7"]

    with pytest.raises(InvalidImageError, match=r"64:ff9b::a00:7.*private"):
        check_public_addresses("https://img.example/a.png", mixed)
    mock = transport({})
    with pytest.raises(InvalidImageError, match="loopback, private"):
        fetch_url("https://img.example/a.png", url_policy(), resolver=mixed, transport=mock)
    assert mock.seen == []


def test_the_next_address_is_tried_when_one_does_not_connect() -> None:
    attempts: list[str] = []

    def handle(request: httpx.Request) -> httpx.Response:
        attempts.append(request.url.host)
        if request.url.host != "93.184.216.36":
            raise httpx.ConnectError("connection refused", request=request)
        return png_response()

    def three(host: str, port: int) -> list[str]:
        return ["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946", "93.184.216.36"]

    data = fetch_url(
        "https://img.example/a.png",
        url_policy(),
        resolver=three,
        transport=httpx.MockTransport(handle),
    )
    assert data == png_bytes()
    assert attempts == ["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946", "93.184.216.36"]


def test_no_address_connects() -> None:
    def handle(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    def two(host: str, port: int) -> list[str]:
        return ["93.184.216.34", "93.184.216.35"]

    with pytest.raises(InvalidImageError) as info:
        fetch_url(
            "https://img.example/a.png",
            url_policy(),
            resolver=two,
            transport=httpx.MockTransport(handle),
        )
    message = str(info.value)
    assert "no address of its host accepted a connection" in message
    assert "93.184.216.34" in message and "93.184.216.35" in message
    assert "download the image" in message


def slow_body(chunks: int, pause_s: float) -> Iterator[bytes]:
    """A PNG trickled out in ``chunks`` pieces, ``pause_s`` apart."""
    data = png_bytes()
    size = -(-len(data) // chunks)
    for start in range(0, len(data), size):
        time.sleep(pause_s)
        yield data[start : start + size]


def test_a_slow_body_hits_the_deadline() -> None:
    def handle(request: httpx.Request) -> httpx.Response:
        body = slow_body(40, 0.025)  # a second in all, each chunk quick
        return httpx.Response(200, headers={"content-type": "image/png"}, content=body)

    policy = SourcePolicy(roots=[], allow_urls=True, url_timeout_s=0.2)
    started = time.perf_counter()
    with pytest.raises(InvalidImageError, match=r"took longer than 0\.2 s.*pass its path"):
        fetch_url(
            "https://img.example/a.png",
            policy,
            resolver=resolver,
            transport=httpx.MockTransport(handle),
        )
    assert time.perf_counter() - started < 0.6, "stopped while streaming, not at the end"


def test_the_deadline_covers_all_redirects() -> None:
    def handle(request: httpx.Request) -> httpx.Response:
        time.sleep(0.08)
        path = request.url.path
        if path == "/3":
            return png_response()
        return httpx.Response(302, headers={"location": f"/{int(path[1:]) + 1}"})

    mock = httpx.MockTransport(handle)
    roomy = SourcePolicy(roots=[], allow_urls=True, url_timeout_s=5)
    assert fetch_url("https://img.example/0", roomy, resolver=resolver, transport=mock)
    tight = SourcePolicy(roots=[], allow_urls=True, url_timeout_s=0.2)
    with pytest.raises(InvalidImageError, match=r"took longer than 0\.2 s"):
        fetch_url("https://img.example/0", tight, resolver=resolver, transport=mock)


def test_a_transport_timeout_reads_as_the_deadline() -> None:
    def handle(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    with pytest.raises(InvalidImageError, match="took longer than"):
        fetch_url(
            "https://img.example/a.png",
            url_policy(),
            resolver=resolver,
            transport=httpx.MockTransport(handle),
        )


def test_unresolvable_host() -> None:
    with pytest.raises(InvalidImageError, match="does not resolve"):
        fetch_url("https://nowhere.example/a.png", url_policy(), resolver=resolver)


def test_policy_from_settings(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    settings = Settings(home=tmp_path / "home", max_image_pixels=1234)
    policy = policy_from_settings(settings)
    assert policy.roots == [Path(os.path.realpath(tmp_path / "home" / "inbox"))]
    assert (policy.allow_urls, policy.max_pixels) == (False, 1234)
    monkeypatch.setenv("ARPO_ALLOWED_ROOTS", f"{tmp_path / 'a'}:{tmp_path / 'b'}")
    monkeypatch.setenv("ARPO_ALLOW_URLS", "true")
    policy = policy_from_settings(Settings(home=tmp_path / "home"))
    assert policy.roots == [Path(os.path.realpath(tmp_path / n)) for n in ("a", "b")]
    assert policy.allow_urls is True
    monkeypatch.setenv("ARPO_ALLOWED_ROOTS", '["~/pics"]')
    monkeypatch.setenv("HOME", str(tmp_path))
    assert Settings(home=tmp_path).image_roots == [tmp_path / "pics"]


# --------------------------------------------------------------------------- previews


def test_side_by_side_keeps_aspect() -> None:
    pair = side_by_side(Image.new("RGB", (400, 200), "red"), Image.new("RGB", (300, 300), "blue"))
    assert pair.size == (512 + 8 + 256, 256)
    assert pair.getpixel((10, 10)) == (255, 0, 0)
    assert pair.getpixel((600, 10)) == (0, 0, 255)
    small = side_by_side(Image.new("RGB", (64, 64)), Image.new("RGB", (48, 32)))
    assert small.size == (64 + 8 + 96, 64), "small images are not enlarged"


def test_previews_fit_their_budget() -> None:
    noise = Image.effect_noise((1500, 1000), 80).convert("RGB")
    preview = encode_preview(noise, max_side=512, max_bytes=60_000)
    assert len(preview.data) <= 60_000
    assert max(preview.width, preview.height) <= 512
    assert preview.mime_type in ("image/png", "image/webp", "image/jpeg")
    flat = encode_preview(Image.new("RGB", (64, 64), "white"))
    assert flat.mime_type == "image/png" and (flat.width, flat.height) == (64, 64)
    decoded = Image.open(io.BytesIO(preview.data))
    assert decoded.size == (preview.width, preview.height)
