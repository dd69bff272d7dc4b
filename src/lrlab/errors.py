"""Errors that end in one clear line for the user (the CLI prints them and exits 2)."""


class LrlabError(Exception):
    """Bad input from the user: a spec, a config, a file, a flag.

    The message is one line that names what is wrong and how to fix it.
    """


class ScheduleError(LrlabError, ValueError):
    """A schedule argument is invalid (the message names the argument)."""


class SpecError(LrlabError, ValueError):
    """A spec string does not parse; the message shows the spec with a caret."""
