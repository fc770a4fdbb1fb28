"""YAML field mappings between vendor records and the canonical model (see docs/mappings.md)."""

from hub.mapping.compiler import PassThrough, Resolver
from hub.mapping.loader import Mapping, MapResult, compile_document, load_mapping

__all__ = ["MapResult", "Mapping", "PassThrough", "Resolver", "compile_document", "load_mapping"]
