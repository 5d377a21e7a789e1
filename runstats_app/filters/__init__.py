"""The filter_query grammar: parse and validate (schema), resolve "me", build SQL."""

from .nodes import FilterNode
from .schema import FilterArgsSchema, ParsedFilter
from .sql import build_where

__all__ = ["FilterArgsSchema", "FilterNode", "ParsedFilter", "build_where"]
