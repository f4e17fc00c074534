"""Every request limit in one place. Each is documented in the README and enforced by validation.

Name patterns are anchored and checked with ``fullmatch`` (Python's ``$`` also matches before a
final newline, so ``re.match`` alone would accept ``"lang\n"``).
"""

from __future__ import annotations

MAX_QUERY_CHARS = 2_000
MAX_TOP_K = 100
MAX_CANDIDATES = 1_000
DEFAULT_TOP_K = 10
DEFAULT_CANDIDATES = 100
DEFAULT_RERANK_DEPTH = 50
MAX_RRF_K = 1_000
MAX_OVERRIDE_CANDIDATES = 200  # a request's own candidates / rerank_depth; profiles go to MAX_CANDIDATES
MAX_OVERRIDE_RERANK_DEPTH = 100
MAX_EXPLAIN_DEPTH = 200  # explain reports each leg's ranks down to this depth
MAX_LEG_WEIGHT = 100.0

NAMESPACE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$"
MAX_DOC_ID_CHARS = 256
MAX_TITLE_CHARS = 1_000
MAX_DOC_CHARS = 2_000_000
MAX_BATCH_DOCS = 256
MAX_METADATA_BYTES = 16_384
MAX_METADATA_KEYS = 64
METADATA_KEY_PATTERN = r"^[A-Za-z_][A-Za-z0-9_-]{0,63}$"
MAX_METADATA_LIST = 100

MAX_FILTER_DEPTH = 4
MAX_FILTER_CONDITIONS = 32
MAX_FILTER_VALUES = 100
MAX_FILTER_STRING_CHARS = 1_000
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1  # integers in metadata and filters (the engine's range)

MAX_FILE_BYTES = 20 * 1024 * 1024
MAX_FILES_PER_REQUEST = 64
MAX_FORM_FIELDS = 2 * MAX_FILES_PER_REQUEST + 1  # ids (one per file) and metadata
MAX_FORM_FIELD_BYTES = 64 * 1024
MAX_REQUEST_BYTES = 64 * 1024 * 1024  # ingest, files, evaluations; also one gRPC message
MAX_SMALL_BODY_BYTES = 1024 * 1024  # every other request body (search, delete, profiles)
MAX_STREAM_MESSAGES = 1_000  # gRPC IngestStream, per stream
MAX_STREAM_BYTES = 1024 * 1024 * 1024
