"""WSGI entry point of the dev server (settings.dev's WSGI_APPLICATION, which runserver loads).

With DEBUGPY=true (`nox -s debug`) the process that serves listens for a debugger first.
runserver loads the application in the process that serves (the only Django process:
watchfiles, its parent, restarts it on an edit), so reload keeps working: each reload is a
fresh process that listens again (attach again after a reload). debugpy is a dev dependency:
this module is never used in production.
"""

import os

if os.environ.get("DEBUGPY", "").lower() in {"1", "true", "yes", "on"}:
    # Frozen modules are the standard library's only: not worth a warning on every start.
    os.environ.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")
    import debugpy

    # All interfaces inside the container; compose publishes the port on 127.0.0.1 only.
    # In-process adapter: debugpy's default, an adapter process of its own, stops taking
    # clients for good (until the app restarts) once a connection closes before it has
    # written its greeting, or a client comes while the previous session is still closing
    # (a quick re-attach): the error ends its only accepting thread. The in-process one
    # takes the next client after each detach and ends with its process. Its cost, no
    # automatic debugging of subprocesses, is moot: the dev server starts none.
    debugpy.listen(("0.0.0.0", 5678), in_process_debug_adapter=True)

from config.wsgi import application  # noqa: E402

__all__ = ["application"]
