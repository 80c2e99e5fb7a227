"""The one exception type the CLI turns into a clean one-line error (exit code 2).

Library code raises `UserError` (or a subclass) for problems a user can fix;
the message must say what was wrong, where (file, row, key) and what to do.
"""


class UserError(Exception):
    """A problem in the user's input or environment, with a message that says how to fix it."""
