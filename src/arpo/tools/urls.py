"""Fetching an image URL for a remote caller: public addresses only, checked on every hop,
within one deadline and a byte cap (see :func:`fetch_url`). :mod:`arpo.tools.sources` calls it
when a policy allows URLs."""

from __future__ import annotations

import ipaddress
import logging
import socket
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin, urlsplit, urlunsplit

from arpo.errors import InvalidImageError

if TYPE_CHECKING:
    import httpx

    from arpo.tools.sources import SourcePolicy

logger = logging.getLogger(__name__)

URL_MAX_BYTES = 20 * 1024 * 1024
URL_TIMEOUT_S = 15.0
URL_MAX_REDIRECTS = 3

Resolver = Callable[[str, int], Sequence[str]]


def fetch_url(
    url: str,
    policy: SourcePolicy,
    *,
    resolver: Resolver | None = None,
    transport: httpx.BaseTransport | None = None,
) -> bytes:
    """GET an image URL: public addresses only (checked on every hop), at most
    ``URL_MAX_REDIRECTS`` redirects, an image content type, at most ``url_max_bytes``, and
    ``url_timeout_s`` for the whole fetch (every hop and the body read, checked while reading).

    Each hop connects to an address that was checked (the Host header and TLS name stay the
    URL's), so a DNS answer that changes after the check (DNS rebinding) cannot redirect the
    connection to a private address. Every address the host resolves to must be public; they
    are tried in turn until one connects. (The DNS lookup itself is the system's and is not
    cut short by the deadline; the time it takes counts against it.)
    """
    import httpx

    resolve = resolver or _system_resolver
    deadline = _Deadline(policy.url_timeout_s)
    with httpx.Client(transport=transport, follow_redirects=False) as client:
        for _ in range(URL_MAX_REDIRECTS + 1):
            addresses = check_public_addresses(url, resolve)
            response = _connect(client, url, addresses, deadline)
            try:
                if response.is_redirect:
                    location = response.headers.get("location", "")
                    logger.debug("image URL %s redirects to %s", url, location)
                    url = urljoin(url, location)
                    continue
                return _read_image_body(url, response, policy.url_max_bytes, deadline)
            except httpx.TimeoutException:
                raise deadline.exceeded(url) from None
            except httpx.HTTPError as error:
                raise _fetch_error(url, error) from None
            finally:
                response.close()
    raise InvalidImageError(
        f"image URL redirected more than {URL_MAX_REDIRECTS} times; pass the final URL or "
        "download the image."
    )


class _Deadline:
    """One time limit over a whole fetch."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.end = time.monotonic() + seconds

    def remaining(self, url: str) -> float:
        """Seconds left, or the deadline's error when none are."""
        left = self.end - time.monotonic()
        if left <= 0:
            raise self.exceeded(url)
        return left

    def exceeded(self, url: str) -> InvalidImageError:
        return InvalidImageError(
            f"fetching image {url} took longer than {self.seconds:g} s (redirects and download "
            "together), so it was stopped. Download the image and pass its path or base64 data."
        )


def _connect(
    client: httpx.Client, url: str, addresses: Sequence[str], deadline: _Deadline
) -> httpx.Response:
    """Send the GET to each address in turn until one connects; the response streams."""
    import httpx

    failures = []
    for index, address in enumerate(addresses):
        left = deadline.remaining(url)
        # Share what is left between the addresses not yet tried, so one that never answers
        # cannot use up the time of the others.
        timeout = httpx.Timeout(left, connect=left / (len(addresses) - index))
        request = client.build_request("GET", timeout=timeout, **_pinned_request(url, address))
        try:
            return client.send(request, stream=True)
        except (httpx.ConnectError, httpx.ConnectTimeout) as error:
            logger.info("image URL %s: cannot connect to %s (%s)", url, address, error)
            failures.append(f"{address}: {type(error).__name__}: {error}")
        except httpx.TimeoutException:
            raise deadline.exceeded(url) from None
        except httpx.HTTPError as error:
            raise _fetch_error(url, error) from None
    raise InvalidImageError(
        f"cannot fetch image {url}: no address of its host accepted a connection "
        f"({'; '.join(failures)}). Check the URL, or download the image and pass its path."
    )


def _fetch_error(url: str, error: Exception) -> InvalidImageError:
    return InvalidImageError(
        f"cannot fetch image {url}: {type(error).__name__}: {error}. Check the URL, "
        "or download the image and pass its path."
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
    returns the first address to connect to (see :func:`check_public_addresses`)."""
    return check_public_addresses(url, resolve)[0]


def check_public_addresses(url: str, resolve: Resolver) -> list[str]:
    """Refuse URLs that are not http(s) or whose host resolves to any non-public address;
    returns all the addresses, in the order to try them."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidImageError(f"cannot fetch {url!r}: only http(s) URLs with a host are allowed.")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise InvalidImageError(f"cannot fetch {url!r}: the port is not a number.") from None
    try:
        addresses = list(dict.fromkeys(resolve(parts.hostname, port)))
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
    return addresses


_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")  # RFC 6052 well-known prefix
_NAT64_LOCAL = ipaddress.IPv6Network("64:ff9b:1::/48")  # RFC 8215: a local network's NAT64


def is_public_address(address: str) -> bool:
    """True only for globally routable unicast addresses.

    IPv6 forms that carry an IPv4 address are judged by that address: IPv4-mapped
    (``::ffff:a.b.c.d``), NAT64 (``64:ff9b::/96``), 6to4 (``2002::/16``) and Teredo (both its
    server and client addresses). The local-use NAT64 prefix ``64:ff9b:1::/48`` translates into
    a local network, so it is never public.
    """
    try:
        ip: Any = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address):
        if ip in _NAT64_LOCAL:
            return False
        embedded = _embedded_ipv4(ip)
        if embedded:
            return all(_is_global_unicast(v4) for v4 in embedded)
    return _is_global_unicast(ip)


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    if ip.ipv4_mapped is not None:
        return [ip.ipv4_mapped]
    if ip in _NAT64:
        return [ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)]
    if ip.sixtofour is not None:
        return [ip.sixtofour]
    if ip.teredo is not None:
        return list(ip.teredo)
    return []


def _is_global_unicast(ip: Any) -> bool:
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
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def _read_image_body(
    url: str, response: httpx.Response, max_bytes: int, deadline: _Deadline
) -> bytes:
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
        deadline.remaining(url)
        size += len(chunk)
        if size > max_bytes:
            raise _too_big(url, max_bytes)
        chunks.append(chunk)
    deadline.remaining(url)
    return b"".join(chunks)


def _too_big(url: str, max_bytes: int) -> InvalidImageError:
    return InvalidImageError(
        f"the image at {url} is larger than {max_bytes:,} bytes; download and downscale it, "
        "then pass its path."
    )
