class StackError(Exception):
    """A problem the user can fix: the message is one line naming what is wrong and the fix."""
