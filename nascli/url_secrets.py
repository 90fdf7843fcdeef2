"""The one home for database-URL passwords: find them, mask them for printing, drop them for storing.

URLs are taken apart by SQLAlchemy's own parser (the one that connects), so a password holding `/`,
`@`, `:` or `%`, or given as `?password=` in the query string (libpq accepts both), is found exactly
where the driver would find it. Nothing here is a regular expression.
"""

from __future__ import annotations

# libpq connection parameters that carry a secret when written in the query string
SECRET_QUERY_KEYS = frozenset({"password", "sslpassword"})
MASK = "***"


def _parse(text: str):
    from sqlalchemy.engine import make_url

    try:
        return make_url(text)
    except Exception:  # ArgumentError, ValueError, ...: not a URL SQLAlchemy can read
        return None


def _secret_keys(url) -> list[str]:
    return [key for key in url.query if key.lower() in SECRET_QUERY_KEYS]


def _unparsable(text: str) -> str:
    """What may be shown of a string that is not a URL: no query string, nothing before an `@`."""
    return text.split("?", 1)[0].rsplit("@", 1)[-1]


def has_password(text: str) -> bool:
    url = _parse(text)
    if url is None:
        return "@" in text or "?" in text  # cannot tell: treat as secret
    return url.password is not None or bool(_secret_keys(url))


def without_password(text: str) -> str:
    """The URL as it connects, minus every password: safe to store in a run row or nascli.toml (libpq
    then finds the password in PGPASSFILE / ~/.pgpass)."""
    url = _parse(text)
    if url is None:
        return _unparsable(text)
    if not has_password(text):
        return text
    url = url._replace(password=None).difference_update_query(_secret_keys(url))
    return url.render_as_string(hide_password=False)


def redact(text: str) -> str:
    """The URL for printing: every password replaced by ***; a string that is not a URL loses its
    user part and query string."""
    url = _parse(text)
    if url is None:
        return _unparsable(text)
    secrets = _secret_keys(url)
    if url.password is None and not secrets:
        return text
    shown = url.difference_update_query(secrets).render_as_string(hide_password=True)
    if secrets:
        shown += ("&" if "?" in shown else "?") + "&".join(f"{key}={MASK}" for key in secrets)
    return shown
