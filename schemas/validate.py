#!/usr/bin/python3
"""Validates JSON documents against a Flurry message schema.

Usage: validate.py SCHEMA.json DOC.json [DOC.json ...]
Exit 0 when every document is valid, 1 otherwise (errors on stderr).
"""
import json
import sys

import jsonschema


def main() -> int:
    if len(sys.argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    with open(sys.argv[1], encoding="utf-8") as f:
        schema = json.load(f)
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    failed = False
    for path in sys.argv[2:]:
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
        for err in validator.iter_errors(doc):
            print(f"{path}: {err.json_path}: {err.message}", file=sys.stderr)
            failed = True
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
