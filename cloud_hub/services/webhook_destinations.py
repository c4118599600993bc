"""Where a webhook may be sent: public addresses only, unless the hub allows private ones.

A webhook URL is chosen by an HQ admin, but the hub is the one that sends the request, from
inside the company's network: without a check, a webhook could reach the hub's own database
port, a cloud metadata service (169.254.169.254) or any internal system (server-side request
forgery). So by default a delivery goes only to addresses that are globally routable
(``ipaddress``'s ``is_global``: no loopback, private, link-local, shared, reserved or
multicast address). ``RETAIL_HUB_WEBHOOK_ALLOW_PRIVATE=true`` lifts that for hubs whose
receivers live on the internal network (POS, ERP on a private address) and for development.

The check is made where it matters, at delivery: the host is resolved once, every address is
checked, and the request goes to that checked address (the URL's host stays in the ``Host``
header and in TLS's server name, so certificates verify as usual). A name that resolves to a
public address when checked and to a private one a moment later (DNS rebinding) therefore
cannot redirect the request. At creation the API refuses what it can tell without DNS: a
private IP literal or ``localhost``.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass

import httpx

ALLOW_HINT = "set RETAIL_HUB_WEBHOOK_ALLOW_PRIVATE=true to allow private addresses"


class DestinationRefused(ValueError):
    """The webhook's host is, or resolves to, an address this hub does not send to."""


@dataclass(frozen=True, slots=True)
class PinnedDestination:
    """A request target whose address was checked: send to ``url`` with these headers and
    request extensions (``sni_hostname`` keeps TLS verifying the original host)."""

    url: str
    headers: dict[str, str]
    extensions: dict[str, str]


def is_public(address: str) -> bool:
    """True for a globally routable unicast IP address (v4 or v6)."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])  # drop an IPv6 zone id
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def check_literal(url: str) -> None:
    """Refuse a URL whose host is, without any DNS lookup, not public: a private or loopback
    IP literal, or ``localhost``.

    Raises:
        DestinationRefused: naming the host.
    """
    host = httpx.URL(url).host
    if host.lower() == "localhost" or host.lower().endswith(".localhost"):
        raise DestinationRefused(f"webhook host {host} is this machine; {ALLOW_HINT}")
    try:
        public = is_public(host)
    except ValueError:
        return  # a name: checked when a delivery resolves it
    if not public:
        raise DestinationRefused(f"webhook host {host} is not a public address; {ALLOW_HINT}")


def pin(url: str, allow_private: bool = False) -> PinnedDestination:
    """Resolve the URL's host once, check every address (unless ``allow_private``), and aim
    the request at one of them (the first IPv4 one, if any).

    Raises:
        DestinationRefused: it does not resolve, or any address is not public.
    """
    parsed = httpx.URL(url)
    host = parsed.host
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise DestinationRefused(f"webhook host {host} does not resolve: {exc}") from exc
    addresses = sorted({str(info[4][0]) for info in infos})
    private = [] if allow_private else [a for a in addresses if not is_public(a)]
    if private or not addresses:
        raise DestinationRefused(
            f"webhook host {host} resolves to {', '.join(private) or 'nothing'}, not a public "
            f"address; {ALLOW_HINT}"
        )
    ipv4 = [str(i[4][0]) for i in infos if i[0] == socket.AF_INET]
    address = ipv4[0] if ipv4 else str(infos[0][4][0])
    headers = {"Host": parsed.netloc.decode("ascii")}
    extensions = {"sni_hostname": host} if parsed.scheme == "https" else {}
    return PinnedDestination(str(parsed.copy_with(host=address)), headers, extensions)
