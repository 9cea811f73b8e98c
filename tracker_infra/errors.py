"""The one exception type for problems the user can fix (bad vars, a stale file, a bad folder)."""

from __future__ import annotations


class UserError(Exception):
    """An error meant for the person running the tool: printed as one line, exit code 2.

    The message names the file, the key path, what is wrong and what is allowed.
    """

    def __init__(self, file: str, key: str, problem: str) -> None:
        self.file = file
        self.key = key
        self.problem = problem
        where = f"{file}: {key}" if key else file
        super().__init__(f"{where}: {problem}")


class AwsFailure(Exception):
    """AWS, or the SAM CLI talking to it, reported a failure: printed as one line, exit code 5."""
