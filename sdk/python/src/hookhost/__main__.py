"""``python -m hookhost build PROJECT_DIR --wit WIT_DIR -o OUT.wasm``; see ``hookhost._build``."""

import sys

from ._build import main

sys.exit(main())
