"""Hostile input for tests to reuse: values a sender may send to make Herald do harm.

``SSRF_HOSTS`` are ways to write a host that is this machine, its network or a cloud's metadata
service (169.254.169.254) so that a naive check lets them through; ``SSRF_URLS`` are URLs that
must be refused wherever Herald takes a URL to call (webhook recipients, web push endpoints,
callback URLs), at accept time and again at send time.
"""

from __future__ import annotations

#: Hosts (a URL's host part, IPv6 in brackets) naming a private, loopback or link-local
#: address, or a name that never leaves the machine.
SSRF_HOSTS = [
    "127.0.0.1",
    "2130706433",  # 127.0.0.1 as one decimal number (inet_aton, browsers)
    "0x7f000001",  # … in hex
    "0x7f.0.0.1",
    "127.1",  # … short form
    "127.0.1",
    "0177.0.0.1",  # … first part in octal
    "127.000.000.001",
    "0",  # 0.0.0.0: this host
    "0.0.0.0",
    "10.0.0.1",
    "192.168.1.10",
    "100.64.0.1",  # carrier-grade NAT
    "169.254.169.254",  # cloud metadata
    "0xa9fea9fe",  # … as one hex number
    "224.0.0.1",  # multicast
    "255.255.255.255",
    "localhost",
    "LOCALHOST",
    "localhost.",
    "foo.localhost",
    "foo.localhost.",
    "printer.local",
    "metadata.google.internal",
    "router.home.arpa",
    "intranet",  # one label: the resolver's search domains decide
    "[::1]",
    "[::]",
    "[::127.0.0.1]",  # IPv4-compatible
    "[::ffff:127.0.0.1]",  # IPv4-mapped
    "[::ffff:a9fe:a9fe]",
    "[0:0:0:0:0:ffff:7f00:1]",
    "[64:ff9b::a9fe:a9fe]",  # NAT64 of 169.254.169.254
    "[64:ff9b::127.0.0.1]",
    "[64:ff9b:1::7f00:1]",  # local-use NAT64
    "[2002:7f00:1::]",  # 6to4 of 127.0.0.1
    "[2002:a9fe:a9fe::1]",
    "[2001:0:4136:e378:8000:63bf:80ff:fffe]",  # Teredo, client 127.0.0.1
    "[fe80::1]",
    "[fe80::1%25eth0]",  # zone id
    "[fc00::1]",
    "[fec0::1]",
    "[ff02::1]",
]

#: URLs to refuse: each host above, and URLs that read one way to a checker and another to the
#: HTTP library (the first one passed a urllib.parse check and urllib3 connected to 127.0.0.1).
SSRF_URLS = [f"https://{host}/hook" for host in SSRF_HOSTS] + [
    "https://127.0.0.1\\.x.attacker.test/",
    "https://hooks.example.md\\@127.0.0.1/",
    "https://hooks.example.md@127.0.0.1/",
    "https://user:password@hooks.example.md/",
    "https://127.0.0.1#@hooks.example.md/",
    "https://127.0.0.1%2f@hooks.example.md/",
    "https://%31%32%37.0.0.1/",
    "https://\uff11\uff12\uff17.0.0.1/",  # fullwidth digits: IDNA maps them to 127
    "https://hooks.example.md\t@127.0.0.1/",
    "https://hooks.example.md:0443/",
    "https://hooks.example.md:0/",
    "https://hooks.example.md:65536/",
    "https://hooks.example.md:/",
    "https://hooks.example.md:+443/",
    "https://hooks.example.md:443:80/",
    "https://[::1]:443@hooks.example.md/",
    "https:/hooks.example.md/",
    "https:///127.0.0.1/",
    "http://hooks.example.md/",
    "ftp://hooks.example.md/",
    "file:///etc/passwd",
    "gopher://127.0.0.1:6379/_INFO",
    "not a url",
]


def with_port(host: str, port: int) -> str:
    """An https URL to ``host`` (an :data:`SSRF_HOSTS` entry) on ``port``: were it called, the
    connection would reach a local server listening there."""
    return f"https://{host}:{port}/hook"
