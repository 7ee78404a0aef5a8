"""The API's JSON parser: DRF's, plus the bodies that made it raise instead of answering 400.

DRF already refuses NaN/Infinity and integers over Python's digit limit (a ParseError). It does not catch a body
nested deeply enough to exhaust the recursion limit, and it passes on strings a database cannot store (lone
surrogates such as "\\ud800", NUL characters) and nesting deeper than any of our inputs has.
"""

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

MAX_DEPTH = 32
PARSE_TOO_DEEP = "JSON parse error - nested more than {depth} levels deep."
PARSE_SURROGATE = "JSON parse error - a string holds a lone surrogate ({char!r}): not valid Unicode."
PARSE_NUL = "JSON parse error - a string holds a NUL character (\\u0000)."


def _check(value, depth: int = 0) -> None:
    if depth > MAX_DEPTH:
        raise ParseError(PARSE_TOO_DEEP.format(depth=MAX_DEPTH))
    if isinstance(value, str):
        if "\x00" in value:
            raise ParseError(PARSE_NUL)
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise ParseError(PARSE_SURROGATE.format(char=value[exc.start])) from None
    elif isinstance(value, dict):
        for key, item in value.items():
            _check(key, depth + 1)
            _check(item, depth + 1)
    elif isinstance(value, list):
        for item in value:
            _check(item, depth + 1)


class StrictJSONParser(JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError(PARSE_TOO_DEEP.format(depth=MAX_DEPTH)) from None
        _check(data)
        return data
