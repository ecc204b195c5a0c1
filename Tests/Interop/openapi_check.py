#!/usr/bin/env python3
"""Checks Sigillo's OpenAPI documents, and what a live server answered against them (OpenAPITests runs it).

  openapi_check.py --document public=public.json --document admin=admin.json [--exchanges traffic.jsonl]

Each document is validated with openapi-spec-validator (OpenAPI 3.1). Each exchange (one JSON object per line:
listener, method, path, status, contentType, body) must match a documented operation of its listener's document, with
a documented status and content type, and a JSON body valid against the documented schema. Every operation must be
exercised. Prints `VALID <listener> <n> operations`, `PROBLEM <text>` (exit status 1 if any) and
`SUCCESS-MISSING <listener> <METHOD> <path>` for operations never answered with a 2xx (the test compares that list
with what it expects).
"""
import argparse
import json
import re
import sys

from jsonschema import Draft202012Validator
from openapi_spec_validator import validate

METHODS = ("get", "put", "post", "delete", "patch", "head", "options")


def operations(document):
    """(METHOD, template, operation, regex) for every operation, literal templates first."""
    found = []
    for template, item in document.get("paths", {}).items():
        pattern = "^" + "/".join("[^/]+" if re.fullmatch(r"\{[^}]+\}", s) else re.escape(s) for s in template.split("/")) + "$"
        for method in METHODS:
            if method in item:
                found.append((method.upper(), template, item[method], re.compile(pattern)))
    found.sort(key=lambda o: (o[1].count("{"), o[1]))
    return found


def media_type(value):
    return (value or "").split(";")[0].strip().lower()


def check_exchange(listener, document, ops, exchange, problems):
    method, path, status = exchange["method"], exchange["path"].split("?")[0], exchange["status"]
    where = f"{listener}: {method} {exchange['path']} -> {status}"
    match = next((o for o in ops if o[0] == method and o[3].match(path)), None)
    if match is None:
        problems.append(f"{where}: no documented operation")
        return None
    _, template, operation, _ = match
    responses = operation.get("responses", {})
    response = responses.get(str(status)) or responses.get(f"{str(status)[0]}XX") or responses.get("default")
    if response is None:
        problems.append(f"{where}: status {status} is not documented for {method} {template} (documented: {', '.join(sorted(responses))})")
        return (method, template)
    content = response.get("content")
    body = exchange.get("body") or ""
    if not content:
        if body:
            problems.append(f"{where}: documented without a body, answered {len(body)} characters")
        return (method, template)
    kind = media_type(exchange.get("contentType"))
    if kind not in content:
        problems.append(f"{where}: content type {kind!r} is not documented (documented: {', '.join(sorted(content))})")
        return (method, template)
    if kind == "application/json":
        schema = content[kind].get("schema")
        try:
            value = json.loads(body)
        except ValueError as error:
            problems.append(f"{where}: the body is not JSON: {error}")
            return (method, template)
        if schema is not None:
            # The schema's $refs point into the document: resolve them against a copy holding its components.
            wrapped = dict(schema)
            wrapped["components"] = document.get("components", {})
            validator = Draft202012Validator(wrapped, format_checker=Draft202012Validator.FORMAT_CHECKER)
            for error in validator.iter_errors(value):
                problems.append(f"{where}: the body does not match the schema at {'/'.join(map(str, error.absolute_path)) or '(root)'}: {error.message}")
    return (method, template)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--document", action="append", default=[], metavar="LISTENER=FILE")
    parser.add_argument("--exchanges")
    args = parser.parse_args()
    problems = []
    documents = {}
    for item in args.document:
        listener, file = item.split("=", 1)
        with open(file) as handle:
            document = json.load(handle)
        if document.get("openapi") != "3.1.0":
            problems.append(f"{listener}: openapi is {document.get('openapi')!r}, not 3.1.0")
        try:
            validate(document)
        except Exception as error:  # the validator's errors have several types
            problems.append(f"{listener}: not a valid OpenAPI document: {error}")
        documents[listener] = (document, operations(document))
        print(f"VALID {listener} {len(documents[listener][1])} operations")

    if args.exchanges:
        exercised, succeeded = set(), set()
        with open(args.exchanges) as handle:
            for line in handle:
                if not line.strip():
                    continue
                exchange = json.loads(line)
                listener = exchange["listener"]
                if listener not in documents:
                    problems.append(f"no document for listener {listener}")
                    continue
                document, ops = documents[listener]
                key = check_exchange(listener, document, ops, exchange, problems)
                if key:
                    exercised.add((listener,) + key)
                    if 200 <= exchange["status"] < 300:
                        succeeded.add((listener,) + key)
        for listener, (document, ops) in sorted(documents.items()):
            for method, template, _, _ in ops:
                if (listener, method, template) not in exercised:
                    problems.append(f"{listener}: {method} {template} was never exercised")
                elif (listener, method, template) not in succeeded:
                    print(f"SUCCESS-MISSING {listener} {method} {template}")

    for problem in problems:
        print(f"PROBLEM {problem}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
