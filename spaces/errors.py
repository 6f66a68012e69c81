"""The one base class of the errors a user can fix by asking differently.

Every error about the user's input (flags, configs, data, sweep directories) derives from
`UserError`, so an entry point can tell them from bugs and failures of the libraries beneath:
it prints a `UserError` on one line, and lets anything else propagate with its traceback.
"""

from __future__ import annotations


class UserError(Exception):
    """The user asked for something that cannot be done; the CLI prints the message on one
    line and exits 2."""
