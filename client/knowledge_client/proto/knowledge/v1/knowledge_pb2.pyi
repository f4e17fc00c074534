from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class IngestStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    INGEST_STATUS_UNSPECIFIED: _ClassVar[IngestStatus]
    INGEST_STATUS_CREATED: _ClassVar[IngestStatus]
    INGEST_STATUS_UPDATED: _ClassVar[IngestStatus]
    INGEST_STATUS_UNCHANGED: _ClassVar[IngestStatus]
    INGEST_STATUS_FAILED: _ClassVar[IngestStatus]

class SearchMode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SEARCH_MODE_UNSPECIFIED: _ClassVar[SearchMode]
    SEARCH_MODE_HYBRID: _ClassVar[SearchMode]
    SEARCH_MODE_DENSE: _ClassVar[SearchMode]
    SEARCH_MODE_SPARSE: _ClassVar[SearchMode]

class FusionMethod(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    FUSION_METHOD_UNSPECIFIED: _ClassVar[FusionMethod]
    FUSION_METHOD_RRF: _ClassVar[FusionMethod]
    FUSION_METHOD_DBSF: _ClassVar[FusionMethod]

class RerankStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    RERANK_STATUS_UNSPECIFIED: _ClassVar[RerankStatus]
    RERANK_STATUS_APPLIED: _ClassVar[RerankStatus]
    RERANK_STATUS_NOT_CONFIGURED: _ClassVar[RerankStatus]
    RERANK_STATUS_DISABLED: _ClassVar[RerankStatus]
    RERANK_STATUS_FAILED: _ClassVar[RerankStatus]
    RERANK_STATUS_SKIPPED: _ClassVar[RerankStatus]
INGEST_STATUS_UNSPECIFIED: IngestStatus
INGEST_STATUS_CREATED: IngestStatus
INGEST_STATUS_UPDATED: IngestStatus
INGEST_STATUS_UNCHANGED: IngestStatus
INGEST_STATUS_FAILED: IngestStatus
SEARCH_MODE_UNSPECIFIED: SearchMode
SEARCH_MODE_HYBRID: SearchMode
SEARCH_MODE_DENSE: SearchMode
SEARCH_MODE_SPARSE: SearchMode
FUSION_METHOD_UNSPECIFIED: FusionMethod
FUSION_METHOD_RRF: FusionMethod
FUSION_METHOD_DBSF: FusionMethod
RERANK_STATUS_UNSPECIFIED: RerankStatus
RERANK_STATUS_APPLIED: RerankStatus
RERANK_STATUS_NOT_CONFIGURED: RerankStatus
RERANK_STATUS_DISABLED: RerankStatus
RERANK_STATUS_FAILED: RerankStatus
RERANK_STATUS_SKIPPED: RerankStatus

class Document(_message.Message):
    __slots__ = ("id", "text", "title", "metadata")
    ID_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    id: str
    text: str
    title: str
    metadata: _struct_pb2.Struct
    def __init__(self, id: _Optional[str] = ..., text: _Optional[str] = ..., title: _Optional[str] = ..., metadata: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class IngestRequest(_message.Message):
    __slots__ = ("namespace", "documents")
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    DOCUMENTS_FIELD_NUMBER: _ClassVar[int]
    namespace: str
    documents: _containers.RepeatedCompositeFieldContainer[Document]
    def __init__(self, namespace: _Optional[str] = ..., documents: _Optional[_Iterable[_Union[Document, _Mapping]]] = ...) -> None: ...

class IngestResult(_message.Message):
    __slots__ = ("id", "status", "chunks", "error")
    ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    CHUNKS_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    id: str
    status: IngestStatus
    chunks: int
    error: str
    def __init__(self, id: _Optional[str] = ..., status: _Optional[_Union[IngestStatus, str]] = ..., chunks: _Optional[int] = ..., error: _Optional[str] = ...) -> None: ...

class IngestResponse(_message.Message):
    __slots__ = ("results", "index_version")
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    INDEX_VERSION_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[IngestResult]
    index_version: int
    def __init__(self, results: _Optional[_Iterable[_Union[IngestResult, _Mapping]]] = ..., index_version: _Optional[int] = ...) -> None: ...

class UploadedFile(_message.Message):
    __slots__ = ("filename", "content_type", "data", "id")
    FILENAME_FIELD_NUMBER: _ClassVar[int]
    CONTENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    filename: str
    content_type: str
    data: bytes
    id: str
    def __init__(self, filename: _Optional[str] = ..., content_type: _Optional[str] = ..., data: _Optional[bytes] = ..., id: _Optional[str] = ...) -> None: ...

class IngestFilesRequest(_message.Message):
    __slots__ = ("namespace", "files", "metadata")
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    FILES_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    namespace: str
    files: _containers.RepeatedCompositeFieldContainer[UploadedFile]
    metadata: _struct_pb2.Struct
    def __init__(self, namespace: _Optional[str] = ..., files: _Optional[_Iterable[_Union[UploadedFile, _Mapping]]] = ..., metadata: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class Fusion(_message.Message):
    __slots__ = ("method", "k", "weights")
    METHOD_FIELD_NUMBER: _ClassVar[int]
    K_FIELD_NUMBER: _ClassVar[int]
    WEIGHTS_FIELD_NUMBER: _ClassVar[int]
    method: FusionMethod
    k: int
    weights: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, method: _Optional[_Union[FusionMethod, str]] = ..., k: _Optional[int] = ..., weights: _Optional[_Iterable[float]] = ...) -> None: ...

class SearchRequest(_message.Message):
    __slots__ = ("namespace", "query", "top_k", "filter", "mode", "fusion", "candidates", "rerank", "explain", "profile", "overrides")
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    QUERY_FIELD_NUMBER: _ClassVar[int]
    TOP_K_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    FUSION_FIELD_NUMBER: _ClassVar[int]
    CANDIDATES_FIELD_NUMBER: _ClassVar[int]
    RERANK_FIELD_NUMBER: _ClassVar[int]
    EXPLAIN_FIELD_NUMBER: _ClassVar[int]
    PROFILE_FIELD_NUMBER: _ClassVar[int]
    OVERRIDES_FIELD_NUMBER: _ClassVar[int]
    namespace: str
    query: str
    top_k: int
    filter: _struct_pb2.Struct
    mode: SearchMode
    fusion: Fusion
    candidates: int
    rerank: bool
    explain: bool
    profile: str
    overrides: _struct_pb2.Struct
    def __init__(self, namespace: _Optional[str] = ..., query: _Optional[str] = ..., top_k: _Optional[int] = ..., filter: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., mode: _Optional[_Union[SearchMode, str]] = ..., fusion: _Optional[_Union[Fusion, _Mapping]] = ..., candidates: _Optional[int] = ..., rerank: _Optional[bool] = ..., explain: _Optional[bool] = ..., profile: _Optional[str] = ..., overrides: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class StageScores(_message.Message):
    __slots__ = ("dense_rank", "sparse_rank", "fused", "rerank", "dense_score", "sparse_score", "fused_rank", "rerank_rank")
    DENSE_RANK_FIELD_NUMBER: _ClassVar[int]
    SPARSE_RANK_FIELD_NUMBER: _ClassVar[int]
    FUSED_FIELD_NUMBER: _ClassVar[int]
    RERANK_FIELD_NUMBER: _ClassVar[int]
    DENSE_SCORE_FIELD_NUMBER: _ClassVar[int]
    SPARSE_SCORE_FIELD_NUMBER: _ClassVar[int]
    FUSED_RANK_FIELD_NUMBER: _ClassVar[int]
    RERANK_RANK_FIELD_NUMBER: _ClassVar[int]
    dense_rank: int
    sparse_rank: int
    fused: float
    rerank: float
    dense_score: float
    sparse_score: float
    fused_rank: int
    rerank_rank: int
    def __init__(self, dense_rank: _Optional[int] = ..., sparse_rank: _Optional[int] = ..., fused: _Optional[float] = ..., rerank: _Optional[float] = ..., dense_score: _Optional[float] = ..., sparse_score: _Optional[float] = ..., fused_rank: _Optional[int] = ..., rerank_rank: _Optional[int] = ...) -> None: ...

class SearchHit(_message.Message):
    __slots__ = ("doc_id", "chunk_id", "text", "score", "title", "metadata", "scores")
    DOC_ID_FIELD_NUMBER: _ClassVar[int]
    CHUNK_ID_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    SCORES_FIELD_NUMBER: _ClassVar[int]
    doc_id: str
    chunk_id: str
    text: str
    score: float
    title: str
    metadata: _struct_pb2.Struct
    scores: StageScores
    def __init__(self, doc_id: _Optional[str] = ..., chunk_id: _Optional[str] = ..., text: _Optional[str] = ..., score: _Optional[float] = ..., title: _Optional[str] = ..., metadata: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., scores: _Optional[_Union[StageScores, _Mapping]] = ...) -> None: ...

class SearchResponse(_message.Message):
    __slots__ = ("results", "cache_hit", "degraded", "rerank", "index_version", "timings_ms", "profile", "profile_version")
    class TimingsMsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    CACHE_HIT_FIELD_NUMBER: _ClassVar[int]
    DEGRADED_FIELD_NUMBER: _ClassVar[int]
    RERANK_FIELD_NUMBER: _ClassVar[int]
    INDEX_VERSION_FIELD_NUMBER: _ClassVar[int]
    TIMINGS_MS_FIELD_NUMBER: _ClassVar[int]
    PROFILE_FIELD_NUMBER: _ClassVar[int]
    PROFILE_VERSION_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[SearchHit]
    cache_hit: bool
    degraded: _containers.RepeatedScalarFieldContainer[str]
    rerank: RerankStatus
    index_version: int
    timings_ms: _containers.ScalarMap[str, float]
    profile: str
    profile_version: int
    def __init__(self, results: _Optional[_Iterable[_Union[SearchHit, _Mapping]]] = ..., cache_hit: _Optional[bool] = ..., degraded: _Optional[_Iterable[str]] = ..., rerank: _Optional[_Union[RerankStatus, str]] = ..., index_version: _Optional[int] = ..., timings_ms: _Optional[_Mapping[str, float]] = ..., profile: _Optional[str] = ..., profile_version: _Optional[int] = ...) -> None: ...

class DeleteDocumentsRequest(_message.Message):
    __slots__ = ("namespace", "ids", "filter")
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    IDS_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    namespace: str
    ids: _containers.RepeatedScalarFieldContainer[str]
    filter: _struct_pb2.Struct
    def __init__(self, namespace: _Optional[str] = ..., ids: _Optional[_Iterable[str]] = ..., filter: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class DeleteDocumentsResponse(_message.Message):
    __slots__ = ("deleted", "index_version")
    DELETED_FIELD_NUMBER: _ClassVar[int]
    INDEX_VERSION_FIELD_NUMBER: _ClassVar[int]
    deleted: int
    index_version: int
    def __init__(self, deleted: _Optional[int] = ..., index_version: _Optional[int] = ...) -> None: ...

class GetDocumentRequest(_message.Message):
    __slots__ = ("namespace", "doc_id")
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    DOC_ID_FIELD_NUMBER: _ClassVar[int]
    namespace: str
    doc_id: str
    def __init__(self, namespace: _Optional[str] = ..., doc_id: _Optional[str] = ...) -> None: ...

class GetDocumentResponse(_message.Message):
    __slots__ = ("id", "title", "text", "metadata", "chunks", "content_hash", "updated_at")
    ID_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    CHUNKS_FIELD_NUMBER: _ClassVar[int]
    CONTENT_HASH_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    id: str
    title: str
    text: str
    metadata: _struct_pb2.Struct
    chunks: int
    content_hash: str
    updated_at: float
    def __init__(self, id: _Optional[str] = ..., title: _Optional[str] = ..., text: _Optional[str] = ..., metadata: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., chunks: _Optional[int] = ..., content_hash: _Optional[str] = ..., updated_at: _Optional[float] = ...) -> None: ...

class CountDocumentsRequest(_message.Message):
    __slots__ = ("namespace", "filter")
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    namespace: str
    filter: _struct_pb2.Struct
    def __init__(self, namespace: _Optional[str] = ..., filter: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class CountDocumentsResponse(_message.Message):
    __slots__ = ("documents", "chunks", "index_version")
    DOCUMENTS_FIELD_NUMBER: _ClassVar[int]
    CHUNKS_FIELD_NUMBER: _ClassVar[int]
    INDEX_VERSION_FIELD_NUMBER: _ClassVar[int]
    documents: int
    chunks: int
    index_version: int
    def __init__(self, documents: _Optional[int] = ..., chunks: _Optional[int] = ..., index_version: _Optional[int] = ...) -> None: ...

class RetrievalSettings(_message.Message):
    __slots__ = ("mode", "top_k", "candidates", "fusion", "rerank", "rerank_depth", "score_threshold", "stitch")
    MODE_FIELD_NUMBER: _ClassVar[int]
    TOP_K_FIELD_NUMBER: _ClassVar[int]
    CANDIDATES_FIELD_NUMBER: _ClassVar[int]
    FUSION_FIELD_NUMBER: _ClassVar[int]
    RERANK_FIELD_NUMBER: _ClassVar[int]
    RERANK_DEPTH_FIELD_NUMBER: _ClassVar[int]
    SCORE_THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    STITCH_FIELD_NUMBER: _ClassVar[int]
    mode: SearchMode
    top_k: int
    candidates: int
    fusion: Fusion
    rerank: bool
    rerank_depth: int
    score_threshold: float
    stitch: bool
    def __init__(self, mode: _Optional[_Union[SearchMode, str]] = ..., top_k: _Optional[int] = ..., candidates: _Optional[int] = ..., fusion: _Optional[_Union[Fusion, _Mapping]] = ..., rerank: _Optional[bool] = ..., rerank_depth: _Optional[int] = ..., score_threshold: _Optional[float] = ..., stitch: _Optional[bool] = ...) -> None: ...

class Profile(_message.Message):
    __slots__ = ("name", "version", "settings", "created_at", "note")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    SETTINGS_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: int
    settings: RetrievalSettings
    created_at: float
    note: str
    def __init__(self, name: _Optional[str] = ..., version: _Optional[int] = ..., settings: _Optional[_Union[RetrievalSettings, _Mapping]] = ..., created_at: _Optional[float] = ..., note: _Optional[str] = ...) -> None: ...

class ListProfilesRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListProfilesResponse(_message.Message):
    __slots__ = ("profiles",)
    PROFILES_FIELD_NUMBER: _ClassVar[int]
    profiles: _containers.RepeatedCompositeFieldContainer[Profile]
    def __init__(self, profiles: _Optional[_Iterable[_Union[Profile, _Mapping]]] = ...) -> None: ...

class GetProfileRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class RequireEval(_message.Message):
    __slots__ = ("dataset", "split", "namespace", "min_delta", "queries", "qrels")
    class QueriesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    class QrelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: Judgments
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[Judgments, _Mapping]] = ...) -> None: ...
    DATASET_FIELD_NUMBER: _ClassVar[int]
    SPLIT_FIELD_NUMBER: _ClassVar[int]
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    MIN_DELTA_FIELD_NUMBER: _ClassVar[int]
    QUERIES_FIELD_NUMBER: _ClassVar[int]
    QRELS_FIELD_NUMBER: _ClassVar[int]
    dataset: str
    split: str
    namespace: str
    min_delta: float
    queries: _containers.ScalarMap[str, str]
    qrels: _containers.MessageMap[str, Judgments]
    def __init__(self, dataset: _Optional[str] = ..., split: _Optional[str] = ..., namespace: _Optional[str] = ..., min_delta: _Optional[float] = ..., queries: _Optional[_Mapping[str, str]] = ..., qrels: _Optional[_Mapping[str, Judgments]] = ...) -> None: ...

class Judgments(_message.Message):
    __slots__ = ("grades",)
    class GradesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    GRADES_FIELD_NUMBER: _ClassVar[int]
    grades: _containers.ScalarMap[str, int]
    def __init__(self, grades: _Optional[_Mapping[str, int]] = ...) -> None: ...

class PutProfileRequest(_message.Message):
    __slots__ = ("name", "settings", "expected_version", "require_eval", "note")
    NAME_FIELD_NUMBER: _ClassVar[int]
    SETTINGS_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_VERSION_FIELD_NUMBER: _ClassVar[int]
    REQUIRE_EVAL_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    name: str
    settings: RetrievalSettings
    expected_version: int
    require_eval: RequireEval
    note: str
    def __init__(self, name: _Optional[str] = ..., settings: _Optional[_Union[RetrievalSettings, _Mapping]] = ..., expected_version: _Optional[int] = ..., require_eval: _Optional[_Union[RequireEval, _Mapping]] = ..., note: _Optional[str] = ...) -> None: ...

class ListProfileVersionsRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class ListProfileVersionsResponse(_message.Message):
    __slots__ = ("versions",)
    VERSIONS_FIELD_NUMBER: _ClassVar[int]
    versions: _containers.RepeatedCompositeFieldContainer[Profile]
    def __init__(self, versions: _Optional[_Iterable[_Union[Profile, _Mapping]]] = ...) -> None: ...

class RollbackProfileRequest(_message.Message):
    __slots__ = ("name", "version")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: int
    def __init__(self, name: _Optional[str] = ..., version: _Optional[int] = ...) -> None: ...

class GetNamespaceSettingsRequest(_message.Message):
    __slots__ = ("namespace",)
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    namespace: str
    def __init__(self, namespace: _Optional[str] = ...) -> None: ...

class NamespaceSettings(_message.Message):
    __slots__ = ("namespace", "default_profile")
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_PROFILE_FIELD_NUMBER: _ClassVar[int]
    namespace: str
    default_profile: str
    def __init__(self, namespace: _Optional[str] = ..., default_profile: _Optional[str] = ...) -> None: ...

class ProfileSpec(_message.Message):
    __slots__ = ("name", "settings", "overrides", "label")
    NAME_FIELD_NUMBER: _ClassVar[int]
    SETTINGS_FIELD_NUMBER: _ClassVar[int]
    OVERRIDES_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    name: str
    settings: RetrievalSettings
    overrides: _struct_pb2.Struct
    label: str
    def __init__(self, name: _Optional[str] = ..., settings: _Optional[_Union[RetrievalSettings, _Mapping]] = ..., overrides: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., label: _Optional[str] = ...) -> None: ...

class EvaluateRequest(_message.Message):
    __slots__ = ("namespace", "dataset", "split", "queries", "qrels", "profiles", "depth")
    class QueriesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    class QrelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: Judgments
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[Judgments, _Mapping]] = ...) -> None: ...
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    DATASET_FIELD_NUMBER: _ClassVar[int]
    SPLIT_FIELD_NUMBER: _ClassVar[int]
    QUERIES_FIELD_NUMBER: _ClassVar[int]
    QRELS_FIELD_NUMBER: _ClassVar[int]
    PROFILES_FIELD_NUMBER: _ClassVar[int]
    DEPTH_FIELD_NUMBER: _ClassVar[int]
    namespace: str
    dataset: str
    split: str
    queries: _containers.ScalarMap[str, str]
    qrels: _containers.MessageMap[str, Judgments]
    profiles: _containers.RepeatedCompositeFieldContainer[ProfileSpec]
    depth: int
    def __init__(self, namespace: _Optional[str] = ..., dataset: _Optional[str] = ..., split: _Optional[str] = ..., queries: _Optional[_Mapping[str, str]] = ..., qrels: _Optional[_Mapping[str, Judgments]] = ..., profiles: _Optional[_Iterable[_Union[ProfileSpec, _Mapping]]] = ..., depth: _Optional[int] = ...) -> None: ...

class Latency(_message.Message):
    __slots__ = ("p50_ms", "p99_ms")
    P50_MS_FIELD_NUMBER: _ClassVar[int]
    P99_MS_FIELD_NUMBER: _ClassVar[int]
    p50_ms: float
    p99_ms: float
    def __init__(self, p50_ms: _Optional[float] = ..., p99_ms: _Optional[float] = ...) -> None: ...

class ProfileResult(_message.Message):
    __slots__ = ("name", "version", "metrics", "latency", "queries", "missing", "latencies_ms")
    class MetricsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    METRICS_FIELD_NUMBER: _ClassVar[int]
    LATENCY_FIELD_NUMBER: _ClassVar[int]
    QUERIES_FIELD_NUMBER: _ClassVar[int]
    MISSING_FIELD_NUMBER: _ClassVar[int]
    LATENCIES_MS_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: int
    metrics: _containers.ScalarMap[str, float]
    latency: Latency
    queries: int
    missing: int
    latencies_ms: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, name: _Optional[str] = ..., version: _Optional[int] = ..., metrics: _Optional[_Mapping[str, float]] = ..., latency: _Optional[_Union[Latency, _Mapping]] = ..., queries: _Optional[int] = ..., missing: _Optional[int] = ..., latencies_ms: _Optional[_Iterable[float]] = ...) -> None: ...

class QueryDelta(_message.Message):
    __slots__ = ("query_id", "a", "b", "delta")
    QUERY_ID_FIELD_NUMBER: _ClassVar[int]
    A_FIELD_NUMBER: _ClassVar[int]
    B_FIELD_NUMBER: _ClassVar[int]
    DELTA_FIELD_NUMBER: _ClassVar[int]
    query_id: str
    a: float
    b: float
    delta: float
    def __init__(self, query_id: _Optional[str] = ..., a: _Optional[float] = ..., b: _Optional[float] = ..., delta: _Optional[float] = ...) -> None: ...

class Comparison(_message.Message):
    __slots__ = ("profiles", "metric_keys", "permutations", "seed", "delta", "p_value", "wins", "losses", "ties", "per_query")
    class DeltaEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    class PValueEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    PROFILES_FIELD_NUMBER: _ClassVar[int]
    METRIC_KEYS_FIELD_NUMBER: _ClassVar[int]
    PERMUTATIONS_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    DELTA_FIELD_NUMBER: _ClassVar[int]
    P_VALUE_FIELD_NUMBER: _ClassVar[int]
    WINS_FIELD_NUMBER: _ClassVar[int]
    LOSSES_FIELD_NUMBER: _ClassVar[int]
    TIES_FIELD_NUMBER: _ClassVar[int]
    PER_QUERY_FIELD_NUMBER: _ClassVar[int]
    profiles: _containers.RepeatedCompositeFieldContainer[ProfileResult]
    metric_keys: _containers.RepeatedScalarFieldContainer[str]
    permutations: int
    seed: int
    delta: _containers.ScalarMap[str, float]
    p_value: _containers.ScalarMap[str, float]
    wins: int
    losses: int
    ties: int
    per_query: _containers.RepeatedCompositeFieldContainer[QueryDelta]
    def __init__(self, profiles: _Optional[_Iterable[_Union[ProfileResult, _Mapping]]] = ..., metric_keys: _Optional[_Iterable[str]] = ..., permutations: _Optional[int] = ..., seed: _Optional[int] = ..., delta: _Optional[_Mapping[str, float]] = ..., p_value: _Optional[_Mapping[str, float]] = ..., wins: _Optional[int] = ..., losses: _Optional[int] = ..., ties: _Optional[int] = ..., per_query: _Optional[_Iterable[_Union[QueryDelta, _Mapping]]] = ...) -> None: ...
