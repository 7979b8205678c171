"""Image sources named by remote callers: paths confined to roots, base64, data URLs, artifact
ids, and http(s) URLs (off by default; public addresses only, checked on every redirect)."""

from __future__ import annotations

import base64
import io
from pathlib import Path

import httpx
import pytest
from PIL import Image

from arpo.config import Settings
from arpo.errors import InvalidImageError
from arpo.tools.previews import encode_preview, side_by_side
from arpo.tools.sources import (
    SourcePolicy,
    classify,
    confine_path,
    fetch_url,
    is_public_address,
    policy_from_settings,
    resolve_image,
)
from arpo.tools.store import ArtifactStore


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
    with pytest.raises(InvalidImageError, match="'file:' URLs are not supported"):
        classify("file:///etc/passwd")


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


def test_unresolvable_host() -> None:
    with pytest.raises(InvalidImageError, match="does not resolve"):
        fetch_url("https://nowhere.example/a.png", url_policy(), resolver=resolver)


def test_policy_from_settings(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    settings = Settings(home=tmp_path / "home", max_image_pixels=1234)
    policy = policy_from_settings(settings)
    assert policy.roots == [tmp_path, tmp_path / "home"]
    assert (policy.allow_urls, policy.max_pixels) == (False, 1234)
    monkeypatch.setenv("ARPO_ALLOWED_ROOTS", f"{tmp_path / 'a'}:{tmp_path / 'b'}")
    monkeypatch.setenv("ARPO_ALLOW_URLS", "true")
    policy = policy_from_settings(Settings(home=tmp_path / "home"))
    assert policy.roots == [tmp_path / "a", tmp_path / "b"]
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
