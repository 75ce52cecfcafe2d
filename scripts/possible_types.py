"""Generate web/graphql/possibleTypes.json from schema.graphql.

Apollo Client (``possibleTypes``) and urql Graphcache (``schema``-less ``possibleTypes``)
need to know which object types each union and interface can resolve to, to match
fragments like ``... on UserError``. Run after ``make schema``:

    ./scripts/uv run python scripts/possible_types.py          # write the file
    ./scripts/uv run python scripts/possible_types.py --check  # exit 1 when it is stale
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from graphql import GraphQLInterfaceType, GraphQLUnionType, build_schema

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = ROOT / "schema.graphql"
OUTPUT = ROOT / "web" / "graphql" / "possibleTypes.json"


def possible_types(sdl: str) -> dict[str, list[str]]:
    """Every union and interface, mapped to its object types, in schema order."""
    schema = build_schema(sdl)
    return {
        name: [t.name for t in schema.get_possible_types(gtype)]
        for name, gtype in sorted(schema.type_map.items())
        if isinstance(gtype, GraphQLUnionType | GraphQLInterfaceType) and not name.startswith("__")
    }


def render(sdl: str) -> str:
    return json.dumps(possible_types(sdl), indent=2) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if the file is stale")
    args = parser.parse_args(argv)
    expected = render(SCHEMA.read_text())
    if args.check:
        if not OUTPUT.exists() or OUTPUT.read_text() != expected:
            print(f"{OUTPUT.relative_to(ROOT)} is stale: run scripts/possible_types.py")
            return 1
        return 0
    OUTPUT.write_text(expected)
    return 0


if __name__ == "__main__":
    sys.exit(main())
