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


class Refusal(UserError):
    """The person running the command said no, or could not be asked: one line, exit code 2. Not
    a problem of any file, so the message stands alone."""

    def __init__(self, message: str) -> None:
        self.file, self.key, self.problem = "", "", message
        Exception.__init__(self, message)


class AwsFailure(Exception):
    """AWS, or the SAM CLI talking to it, reported a failure: printed as one line, exit code 7."""


# --- exit codes: the one table --------------------------------------------------------------------
# The README's table and every command's --help say what this says
# (tests/test_operator_terminal.py holds them to it).

EXIT_OK = 0
EXIT_INTERNAL = 1
EXIT_USER = 2
EXIT_STALE = 3
EXIT_REPLACE = 4
EXIT_BROADENING = 5
EXIT_DRIFTED = 6
EXIT_AWS = 7
EXIT_VERIFY_FAILED = 8
EXIT_UNJUDGED = 9
EXIT_INTERRUPTED = 130

EXIT_CODES: dict[int, str] = {
    EXIT_OK: "ok",
    EXIT_USER: "bad input or a refusal: one line per problem naming the file, the key and the rule; "
               "nothing written, changed or executed",
    EXIT_STALE: "stale output (--check): the files listed differ from what vars/ renders",
    EXIT_REPLACE: "data at risk (diff --fail-on-replace)",
    EXIT_BROADENING: "security widened (diff --fail-on-broadening; deploy with no terminal to ask at)",
    EXIT_DRIFTED: "drift found (drift)",
    EXIT_AWS: "AWS, or the SAM CLI talking to it, reported a failure (the failed resources are listed)",
    EXIT_VERIFY_FAILED: "verify found a failure (the table names it)",
    EXIT_UNJUDGED: "security-bearing changes no rule judges (diff --fail-on-unjudged)",
    EXIT_INTERNAL: "internal error: a bug in tracker-infra (TRACKER_DEBUG=1 shows the traceback)",
    EXIT_INTERRUPTED: "interrupted (Ctrl-C)",
}


def exit_codes_help(details: dict[int, str] | None = None) -> str:
    """The exit codes for --help, one line each: those ``details`` names, each with what it means
    for that command (all of them when None), and always the internal error and Ctrl-C."""
    always = (EXIT_INTERNAL, EXIT_INTERRUPTED)
    chosen = [c for c in EXIT_CODES if details is None or c in details or c in always]
    lines = []
    for code in chosen:
        detail = (details or {}).get(code)
        lines.append(f"  {code:<4}{EXIT_CODES[code]}" + (f": {detail}" if detail else ""))
    return "exit codes:\n" + "\n".join(lines)


# --- a package missing from the install: the user's setup, not a bug ------------------------------
# Imports whose names differ from their distribution's on PyPI.
DISTRIBUTION_OF = {"yaml": "PyYAML", "jinja2": "Jinja2", "markupsafe": "MarkupSafe",
                   "samcli": "aws-sam-cli", "cfnlint": "cfn-lint"}
INSTALLS = (("requirements.txt", "make render", "the runtime install"),
            ("requirements-dev.txt", "make .venv/.dev", "the dev install (AWS, review and test tools)"))


def missing_package(exc: ModuleNotFoundError, root: object) -> str:
    """One line naming the package that is not installed and the command that installs it: the
    runtime install for what rendering needs, else the dev install. ``root`` is the repository
    (where the requirements files are)."""
    from pathlib import Path

    module = (exc.name or "?").split(".")[0]
    distribution = DISTRIBUTION_OF.get(module, module)
    for file, command, what in INSTALLS:
        path = Path(str(root)) / file
        listed = path.read_text(encoding="utf-8").lower() if path.is_file() else ""
        if f"\n{distribution.lower()}==" in f"\n{listed}":
            return (f"the Python package {distribution} is not installed; it comes with {what}: "
                    f"run `{command}` (or `pip install -r {file}`)")
    return (f"the Python package {distribution} (module {module}) is not installed (run `make "
            ".venv/.dev`, or `pip install -r requirements-dev.txt`)")
