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


class UserErrors(UserError):
    """Every problem found in one go (a render reports them all at once): one line each."""

    def __init__(self, errors: list[UserError]) -> None:
        unique = list({str(e): e for e in errors}.values())  # defaults' problems, once
        self.errors = unique
        Exception.__init__(self, "\n".join(str(e) for e in unique))
        self.file, self.key, self.problem = unique[0].file, unique[0].key, unique[0].problem

    @staticmethod
    def of(errors: list[UserError]) -> UserError:
        return errors[0] if len(errors) == 1 else UserErrors(errors)


class AwsFailure(Exception):
    """AWS, or the SAM CLI talking to it, reported a failure: printed as one line, exit code 7."""
