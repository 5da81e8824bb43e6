#!/usr/bin/env python
"""Start the nodeflow HTTP API: `python server.py [--host H] [--port P] [--data-dir D] ...`.

The same as `nodeflow serve`, with the same options (nodeflow/server/command.py). Binds
127.0.0.1:8188 by default. Beyond loopback a bearer token is required (--token or
$NODEFLOW_TOKEN). Extra node modules are imported at start-up from $NODEFLOW_PLUGINS
(comma-separated module names) or --plugins.
"""

from __future__ import annotations

import sys

from nodeflow.server.command import main

if __name__ == "__main__":
    sys.exit(main(prog="server.py"))
