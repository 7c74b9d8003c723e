"""One exception type for bad input: the CLI turns it into one line on stderr and exit code 2.

Library errors name parameters; the CLI maps them to flags (blocks/exits.py). The rule for every
string the library shows a user (errors, and the lines records print):
- a setting of the command being run is named as the library knows it, the settings field
  (`size_mm must be > 0`, `its mean, std, colormap`), listed in UserError.param; where it comes with
  a value or shares its word with plain text, write it `name=VALUE` (`give weights=FILE or
  model=digits`). The CLI shows `--size-mm must be > 0`, `give --weights FILE or --model digits`.
- advice to run another command (or the one that made a file) is a whole command line, flags and
  all, as the user would type it: `blocks print --no-markers`, `blocks generate --max-seconds`.
- a file's own keys (a --models file's input_size) are named as the file spells them.
tests/test_shape.py scans library strings for `--flag` and holds the few exceptions, with reasons."""


class UserError(Exception):
    """Something the user can fix (a flag, a file, a camera). Never a bug in the tool.

    param: the setting the message names, in the library's words (`size_mm must be > 0`); the CLI
    puts its flag there (`--size-mm must be > 0`). A tuple when the message names several."""

    exit_code = 2

    def __init__(self, message: str = "", param: str | tuple[str, ...] | None = None):
        super().__init__(message)
        self.param = param


class Interrupted(Exception):
    """Ctrl-C, after the command kept what it could: the message says what (exit code 130)."""

    exit_code = 130


def first_line(e: BaseException, limit: int = 160) -> str:
    """A library exception as one short clause for a one-line error: its first line, or its type."""
    text = str(e).strip()
    return (text.splitlines()[0] if text else type(e).__name__)[:limit]


def shown(text: str) -> str:
    """Text from a file (a class name, a path, a member name) as a terminal should print it:
    control and other invisible characters escaped as repr writes them (\\x1b, \\n, \\u202e), so
    a name can neither drive the terminal nor break a one-line message. Data keeps the text as is."""
    text = str(text)
    return text if text.isprintable() else "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
