"""``python -m posestream.stream.graph NAME`` (spec JSON on stdin): run one stage of the live graph (the supervisor does this)."""

import sys

from posestream.stream.graph.stages import main

sys.exit(main())
