"""Which keys name a secret: one list of words for every part of the
package that masks a value by its key (a ``key=value`` in text, a config
key, a section's name, a query key the probe prints).

The standard library alone: ``python -m flask_healthcheck.probe`` imports
this and must not pay for Flask, which :mod:`~flask_healthcheck.app_secrets`
imports.
"""

from __future__ import annotations

import re

#: Word parts of a key that make its value a secret (``DB_PASS``,
#: ``X-Amz-Signature``, ``AccountKey``, ``client_secret``). Compared whole,
#: so ``author`` and ``tokenizer`` are not secrets.
SECRET_PARTS = frozenset(
    {
        "pass", "passwd", "password", "passwords", "passphrase", "pwd", "pw",
        "secret", "secrets", "token", "tokens", "key", "keys", "apikey",
        "credential", "credentials", "private", "privatekey", "webhook",
        "webhooks", "dsn", "auth", "authorization", "cookie", "cookies",
        "signature", "sig", "sas", "jwt", "otp", "pin",
    }
)  # fmt: skip
#: Endings of a one-part key that make it a secret (``dbpassword``,
#: ``authtoken``, ``accesskey``).
SECRET_SUFFIXES = (
    "password", "passwd", "secret", "token", "apikey", "accesskey",
    "secretkey", "privatekey", "credential", "credentials", "signature",
)  # fmt: skip
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_PARTS = re.compile(r"[^A-Za-z0-9]+")


def key_parts(key: str) -> list[str]:
    """``"X-Amz-Signature"`` -> ``["x", "amz", "signature"]``; camel case,
    ``_``, ``-`` and ``.`` separate parts."""
    return [part for part in _PARTS.split(_CAMEL.sub("_", key).lower()) if part]


def is_secret_part(part: str) -> bool:
    """Whether one part of a key (:func:`key_parts`) names a secret."""
    return part in SECRET_PARTS or part.endswith(SECRET_SUFFIXES)


def is_secret_key(key: str) -> bool:
    """Whether the value of ``key`` is a secret: a word part of it names one.

    ``DB_PASS``, ``MYSQL_PWD``, ``apiKey``, ``X-Amz-Signature``, ``Cookie``
    and ``auth`` are; ``author``, ``authority`` and ``tokenizer`` are not.
    """
    return any(is_secret_part(part) for part in key_parts(key))
