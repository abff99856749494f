from __future__ import annotations


class ConfigurationError(Exception):
    """The health configuration of an app is wrong.

    Raised at ``init_app``, at registration or at the first run, whichever
    sees the mistake first. The message names the bad key or name and says
    what would be valid, so the fix is in the message.

    .. versionadded:: 0.1.0
    """
