"""The asgi-ws-deny conformance suite: real ASGI servers, a raw wire client, a support matrix.

``conformance.servers`` starts each server variant on 127.0.0.1 and stops it by its pid;
``conformance.client`` speaks the WebSocket opening handshake over a blocking socket (HTTP/1.1),
``conformance.client_h2`` as an RFC 8441 extended CONNECT (HTTP/2); both return the bytes the
server wrote;
``conformance.cases`` is the catalogue the pytest run (``make conformance``) checks against
``conformance/expectations.toml``. See ``conformance/README.md``.
"""
