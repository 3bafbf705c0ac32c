"""The bare app wrapped in the peer composite of benchmarks/peers.py (ProxyFix ->
prometheus_client -> secure -> limits): the stack a user would otherwise assemble, under the
same gunicorn and wrk as ours."""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bare_app import application as bare

from peers import composite

application = composite(bare)
