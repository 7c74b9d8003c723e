"""One exception type for bad input: the CLI turns it into one line on stderr and exit code 2."""


class UserError(Exception):
    """Something the user can fix (a flag, a file, a camera). Never a bug in the tool."""

    exit_code = 2


class Interrupted(Exception):
    """Ctrl-C, after the command kept what it could: the message says what (exit code 130)."""

    exit_code = 130
