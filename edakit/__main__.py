"""`python -m edakit <command>`: the kit's command line."""

from __future__ import annotations

import sys

USAGE = """usage: python -m edakit <command>

commands:
  demo    run the finished system's main scenario on the local cloud
  verify  the offline verification chain on a stage (default: sam-app/)
  bench   how fast the local cloud runs the finished system (build/bench.md)
  cost    what the finished shop costs on AWS, idle and per 1,000 orders
  capacity  one million orders in an hour, through chapter 10's capacity model (--write)
  spike   chapter 10's Black-Friday spikes on the local cloud (--write: chapters/10-scale/spike.json)
  aws     commands for the shop deployed on AWS (preflight, stack-exists, smoke,
          record, leftovers); `python -m edakit aws --help` says more
  workshop  the workshop's exercises: start CH, check, hint EX, solution EX, list
"""


def main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE)
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    if command == "demo":
        from .demo import main as demo

        return demo(rest)
    if command == "verify":
        from .verify import main as verify

        return verify(rest)
    if command == "bench":
        from .bench import main as bench

        return bench(rest)
    if command == "cost":
        from .cost import main as cost

        return cost(rest)
    if command == "capacity":
        from .capacity import main as capacity

        return capacity(rest)
    if command == "spike":
        from .spike import main as spike

        return spike(rest)
    if command == "aws":
        from .aws import main as aws

        return aws(rest)
    if command == "workshop":
        from .workshop import main as workshop

        return workshop(rest)
    print(f"error: unknown command {command!r}\n\n{USAGE}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
