"""Build a tiny random Follow-Your-Pose model folder in the released layout.

    python tools/make_tiny_fyp.py DIR [--seed N]

DIR then holds ``stable-diffusion-v1-4/``, ``pose_encoder.pth`` and
``followyourpose_checkpoint-1000/`` like the released weights, at a tiny width (64×64 frames), so
every ``posestream fyp`` command runs end to end in seconds on a CPU: ``posestream fyp generate
--model DIR --size 64 …``. The command line is stable: tests and independent checks use it.
What the model holds: :mod:`posestream.offline.fyp.tiny`.
"""

import argparse
import sys

from posestream.offline.fyp.tiny import make_tiny_fyp


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", help="new folder to write")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random weights (default 0)")
    args = parser.parse_args(argv)
    try:
        path = make_tiny_fyp(args.out, seed=args.seed)
    except FileExistsError as exc:
        print(f"make_tiny_fyp: error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
