"""Where an image given by a remote caller (the MCP server) may come from, checked.

A caller names an image as text: a local path, base64 or a ``data:`` URL, an artifact id
(64 hex characters from an earlier call), or an http(s) URL. Paths are confined to allowed
roots (their real paths, so symlinks and ``..`` cannot leave them); URLs are off unless
enabled, and then only public addresses are fetched, checked again after every redirect.
No mcp imports: the server is a thin adapter over these functions.
"""

from __future__ import annotations

import ipaddress
import os
import re
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin, urlsplit, urlunsplit

from arpo.errors import InvalidImageError

if TYPE_CHECKING:
    import httpx
    from PIL import Image

    from arpo.tools.store import ArtifactStore

ARTIFACT_ID = re.compile(r"[0-9a-f]{64}")
_BASE64ISH = re.compile(r"[A-Za-z0-9+/_\-=\s]+")
MAX_INLINE_CHARS = 40_000_000  # base64 text larger than this is refused before decoding
URL_MAX_BYTES = 20 * 1024 * 1024
URL_TIMEOUT_S = 15.0
URL_MAX_REDIRECTS = 3

Resolver = Callable[[str, int], Sequence[str]]


@dataclass(frozen=True)
class SourcePolicy:
    """What a caller may point at: path roots, whether URLs are fetched, the pixel limit."""

    roots: Sequence[Path]
    allow_urls: bool = False
    max_pixels: int = 40_000_000
    url_max_bytes: int = URL_MAX_BYTES
    url_timeout_s: float = URL_TIMEOUT_S


def resolve_image(
    source: str,
    policy: SourcePolicy,
    store: ArtifactStore,
    *,
    resolver: Resolver | None = None,
    transport: httpx.BaseTransport | None = None,
) -> Image.Image:
    """The RGB image ``source`` names, or :class:`InvalidImageError` saying what to pass."""
    from arpo.tools.images import decode_base64_image, load_image

    text = source.strip() if isinstance(source, str) else ""
    if not text:
        raise InvalidImageError(
            "no image given: pass a file path, base64 image data, a data: URL or an artifact id."
        )
    kind = classify(text)
    if kind == "artifact":
        return store.get_image(text.lower())
    if kind == "url":
        if not policy.allow_urls:
            raise InvalidImageError(
                "image URLs are turned off on this server (ARPO_ALLOW_URLS=false): download the "
                "image and pass its path or base64 data, or ask the operator to enable URLs."
            )
        data = fetch_url(text, policy, resolver=resolver, transport=transport)
        return load_image(data, max_pixels=policy.max_pixels)
    if kind in ("base64", "data"):
        if len(text) > MAX_INLINE_CHARS:
            raise InvalidImageError(
                f"the inline image is {len(text):,} characters, over the limit of "
                f"{MAX_INLINE_CHARS:,}; pass a file path instead, or downscale the image."
            )
        return decode_base64_image(text, max_pixels=policy.max_pixels)
    return load_image(confine_path(text, policy.roots), max_pixels=policy.max_pixels)


def classify(text: str) -> str:
    """``artifact``, ``data``, ``url``, ``base64`` or ``path``: what kind of image source."""
    lowered = text.lower()
    if ARTIFACT_ID.fullmatch(lowered):
        return "artifact"
    if lowered.startswith("data:"):
        return "data"
    if re.match(r"[a-z][a-z0-9+.-]*://", lowered):
        scheme = lowered.split(":", 1)[0]
        if scheme in ("http", "https"):
            return "url"
        raise InvalidImageError(
            f"'{scheme}:' URLs are not supported: pass a file path, base64 image data, a data: "
            "URL, an artifact id or an http(s) URL."
        )
    # Base64 has no '.', and image paths nearly always do (the extension): a long run of base64
    # letters is data; '/9j/...' (JPEG) and 'iVBOR...' (PNG) start with such letters too.
    if len(text) >= 64 and "." not in text and _BASE64ISH.fullmatch(text):
        return "base64"
    return "path"


def confine_path(text: str, roots: Sequence[Path]) -> Path:
    """The real path of ``text`` when it lies inside one of ``roots`` (real paths compared).

    Relative paths are taken from the working directory. Symlinks are followed and the target
    checked, so neither a link nor ``..`` can reach outside a root.
    """
    if "\x00" in text:
        raise InvalidImageError("the image path contains a NUL character; pass a plain path.")
    given = Path(text).expanduser()
    absolute = given if given.is_absolute() else Path.cwd() / given
    real = Path(os.path.realpath(absolute))
    real_roots = [Path(os.path.realpath(root.expanduser())) for root in roots]
    if any(_inside(real, root) for root in real_roots):
        return real
    listing = ", ".join(str(root) for root in real_roots) or "(none)"
    lexical = Path(os.path.normpath(absolute))
    if any(_inside(lexical, root) for root in real_roots) and ".." not in given.parts:
        why = "it is a symbolic link (or inside one) that leads outside the allowed folders"
    elif ".." in given.parts:
        why = "its '..' components lead outside the allowed folders"
    else:
        why = "it is outside the allowed folders"
    raise InvalidImageError(
        f"cannot read image {text!r}: {why} ({listing}). Copy the image into one of them, pass "
        "it as base64 or a data: URL, or add its folder to ARPO_ALLOWED_ROOTS."
    )


def _inside(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


# --------------------------------------------------------------------------- URLs


def fetch_url(
    url: str,
    policy: SourcePolicy,
    *,
    resolver: Resolver | None = None,
    transport: httpx.BaseTransport | None = None,
) -> bytes:
    """GET an image URL: public addresses only (checked on every hop), at most
    ``URL_MAX_REDIRECTS`` redirects, an image content type, and at most ``url_max_bytes``.

    Each hop connects to the address that was checked (the Host header and TLS name stay the
    URL's), so a DNS answer that changes after the check (DNS rebinding) cannot redirect the
    connection to a private address.
    """
    import httpx

    resolve = resolver or _system_resolver
    timeout = httpx.Timeout(policy.url_timeout_s)
    with httpx.Client(transport=transport, timeout=timeout, follow_redirects=False) as client:
        for _ in range(URL_MAX_REDIRECTS + 1):
            address = check_public_url(url, resolve)
            try:
                with client.stream("GET", **_pinned_request(url, address)) as response:
                    if response.is_redirect:
                        url = urljoin(url, response.headers.get("location", ""))
                        continue
                    return _read_image_body(url, response, policy.url_max_bytes)
            except httpx.HTTPError as error:
                raise InvalidImageError(
                    f"cannot fetch image {url}: {type(error).__name__}: {error}. Check the URL, "
                    "or download the image and pass its path."
                ) from None
    raise InvalidImageError(
        f"image URL redirected more than {URL_MAX_REDIRECTS} times; pass the final URL or "
        "download the image."
    )


def _pinned_request(url: str, address: str) -> dict[str, Any]:
    """Arguments for a GET of ``url`` sent to ``address``."""
    parts = urlsplit(url)
    host = f"[{address}]" if ":" in address else address
    netloc = f"{host}:{parts.port}" if parts.port else host
    return {
        "url": urlunsplit(parts._replace(netloc=netloc)),
        "headers": {"Accept": "image/*", "Host": parts.netloc.rsplit("@", 1)[-1]},
        "extensions": {"sni_hostname": parts.hostname} if parts.scheme == "https" else {},
    }


def check_public_url(url: str, resolve: Resolver) -> str:
    """Refuse URLs that are not http(s) or whose host resolves to a non-public address;
    returns the address to connect to."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidImageError(f"cannot fetch {url!r}: only http(s) URLs with a host are allowed.")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise InvalidImageError(f"cannot fetch {url!r}: the port is not a number.") from None
    try:
        addresses = list(resolve(parts.hostname, port))
    except OSError as error:
        raise InvalidImageError(
            f"cannot fetch {url}: the host does not resolve ({error})."
        ) from None
    if not addresses:
        raise InvalidImageError(f"cannot fetch {url}: the host does not resolve.")
    for address in addresses:
        if not is_public_address(address):
            raise InvalidImageError(
                f"refusing to fetch {url}: {parts.hostname} resolves to {address}, a loopback, "
                "private, link-local or reserved address. Only public addresses are fetched; "
                "pass the image as a path or base64 instead."
            )
    return addresses[0]


def is_public_address(address: str) -> bool:
    """True only for globally routable unicast addresses (IPv4-mapped IPv6 unwrapped)."""
    try:
        ip: Any = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    blocked = (
        ip.is_private,
        ip.is_loopback,
        ip.is_link_local,
        ip.is_multicast,
        ip.is_reserved,
        ip.is_unspecified,
    )
    return ip.is_global and not any(blocked)


def _system_resolver(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return sorted({str(info[4][0]) for info in infos})


def _read_image_body(url: str, response: httpx.Response, max_bytes: int) -> bytes:
    if response.status_code != 200:
        raise InvalidImageError(
            f"cannot fetch image {url}: HTTP {response.status_code}. Check the URL."
        )
    kind = response.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if not kind.startswith("image/"):
        raise InvalidImageError(
            f"{url} is not an image (content type {kind or 'missing'!r}); pass the URL of the "
            "image itself, not of a web page."
        )
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise _too_big(url, max_bytes)
    chunks, size = [], 0
    for chunk in response.iter_bytes():
        size += len(chunk)
        if size > max_bytes:
            raise _too_big(url, max_bytes)
        chunks.append(chunk)
    return b"".join(chunks)


def _too_big(url: str, max_bytes: int) -> InvalidImageError:
    return InvalidImageError(
        f"the image at {url} is larger than {max_bytes:,} bytes; download and downscale it, "
        "then pass its path."
    )


def policy_from_settings(settings: Any) -> SourcePolicy:
    """The source policy of :class:`~arpo.config.Settings`."""
    return SourcePolicy(
        roots=settings.image_roots,
        allow_urls=settings.allow_urls,
        max_pixels=settings.max_image_pixels,
    )
