import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ModelFormat(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    MODEL_FORMAT_UNSPECIFIED: _ClassVar[ModelFormat]
    MODEL_FORMAT_TORCHSCRIPT: _ClassVar[ModelFormat]
    MODEL_FORMAT_ONNX: _ClassVar[ModelFormat]
    MODEL_FORMAT_TORCH_EXPORT: _ClassVar[ModelFormat]

class ModelCategory(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    MODEL_CATEGORY_UNSPECIFIED: _ClassVar[ModelCategory]
    MODEL_CATEGORY_STANDARD: _ClassVar[ModelCategory]
    MODEL_CATEGORY_ROBUSTNESS_INTERVENTION: _ClassVar[ModelCategory]
    MODEL_CATEGORY_MORE_DATA: _ClassVar[ModelCategory]
    MODEL_CATEGORY_ZERO_SHOT: _ClassVar[ModelCategory]
    MODEL_CATEGORY_OTHER: _ClassVar[ModelCategory]
    MODEL_CATEGORY_LP_ADVERSARIAL: _ClassVar[ModelCategory]
    MODEL_CATEGORY_LOW_ACCURACY: _ClassVar[ModelCategory]

class TestSetKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TEST_SET_KIND_UNSPECIFIED: _ClassVar[TestSetKind]
    TEST_SET_KIND_REFERENCE: _ClassVar[TestSetKind]
    TEST_SET_KIND_NATURAL: _ClassVar[TestSetKind]
    TEST_SET_KIND_SYNTHETIC: _ClassVar[TestSetKind]
    TEST_SET_KIND_ADVERSARIAL: _ClassVar[TestSetKind]

class TokenRole(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TOKEN_ROLE_UNSPECIFIED: _ClassVar[TokenRole]
    TOKEN_ROLE_ADMIN: _ClassVar[TokenRole]
    TOKEN_ROLE_SUBMITTER: _ClassVar[TokenRole]
    TOKEN_ROLE_EVALUATOR: _ClassVar[TokenRole]

class EvaluationStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    EVALUATION_STATUS_UNSPECIFIED: _ClassVar[EvaluationStatus]
    EVALUATION_STATUS_PENDING: _ClassVar[EvaluationStatus]
    EVALUATION_STATUS_RUNNING: _ClassVar[EvaluationStatus]
    EVALUATION_STATUS_SUCCEEDED: _ClassVar[EvaluationStatus]
    EVALUATION_STATUS_FAILED: _ClassVar[EvaluationStatus]
MODEL_FORMAT_UNSPECIFIED: ModelFormat
MODEL_FORMAT_TORCHSCRIPT: ModelFormat
MODEL_FORMAT_ONNX: ModelFormat
MODEL_FORMAT_TORCH_EXPORT: ModelFormat
MODEL_CATEGORY_UNSPECIFIED: ModelCategory
MODEL_CATEGORY_STANDARD: ModelCategory
MODEL_CATEGORY_ROBUSTNESS_INTERVENTION: ModelCategory
MODEL_CATEGORY_MORE_DATA: ModelCategory
MODEL_CATEGORY_ZERO_SHOT: ModelCategory
MODEL_CATEGORY_OTHER: ModelCategory
MODEL_CATEGORY_LP_ADVERSARIAL: ModelCategory
MODEL_CATEGORY_LOW_ACCURACY: ModelCategory
TEST_SET_KIND_UNSPECIFIED: TestSetKind
TEST_SET_KIND_REFERENCE: TestSetKind
TEST_SET_KIND_NATURAL: TestSetKind
TEST_SET_KIND_SYNTHETIC: TestSetKind
TEST_SET_KIND_ADVERSARIAL: TestSetKind
TOKEN_ROLE_UNSPECIFIED: TokenRole
TOKEN_ROLE_ADMIN: TokenRole
TOKEN_ROLE_SUBMITTER: TokenRole
TOKEN_ROLE_EVALUATOR: TokenRole
EVALUATION_STATUS_UNSPECIFIED: EvaluationStatus
EVALUATION_STATUS_PENDING: EvaluationStatus
EVALUATION_STATUS_RUNNING: EvaluationStatus
EVALUATION_STATUS_SUCCEEDED: EvaluationStatus
EVALUATION_STATUS_FAILED: EvaluationStatus

class InputSpec(_message.Message):
    __slots__ = ("channels", "height", "width", "value_min", "value_max", "mean", "std")
    CHANNELS_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    VALUE_MIN_FIELD_NUMBER: _ClassVar[int]
    VALUE_MAX_FIELD_NUMBER: _ClassVar[int]
    MEAN_FIELD_NUMBER: _ClassVar[int]
    STD_FIELD_NUMBER: _ClassVar[int]
    channels: int
    height: int
    width: int
    value_min: float
    value_max: float
    mean: _containers.RepeatedScalarFieldContainer[float]
    std: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, channels: _Optional[int] = ..., height: _Optional[int] = ..., width: _Optional[int] = ..., value_min: _Optional[float] = ..., value_max: _Optional[float] = ..., mean: _Optional[_Iterable[float]] = ..., std: _Optional[_Iterable[float]] = ...) -> None: ...

class ModelMetadata(_message.Message):
    __slots__ = ("name", "version", "format", "input", "num_classes", "category", "description", "tags")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    INPUT_FIELD_NUMBER: _ClassVar[int]
    NUM_CLASSES_FIELD_NUMBER: _ClassVar[int]
    CATEGORY_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: str
    format: ModelFormat
    input: InputSpec
    num_classes: int
    category: ModelCategory
    description: str
    tags: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, name: _Optional[str] = ..., version: _Optional[str] = ..., format: _Optional[_Union[ModelFormat, str]] = ..., input: _Optional[_Union[InputSpec, _Mapping]] = ..., num_classes: _Optional[int] = ..., category: _Optional[_Union[ModelCategory, str]] = ..., description: _Optional[str] = ..., tags: _Optional[_Iterable[str]] = ...) -> None: ...

class SubmitModelRequest(_message.Message):
    __slots__ = ("metadata", "chunk")
    METADATA_FIELD_NUMBER: _ClassVar[int]
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    metadata: ModelMetadata
    chunk: bytes
    def __init__(self, metadata: _Optional[_Union[ModelMetadata, _Mapping]] = ..., chunk: _Optional[bytes] = ...) -> None: ...

class Model(_message.Message):
    __slots__ = ("metadata", "size_bytes", "sha256", "artifact_uri", "created_at", "created_by", "deployment", "probe_seconds_per_sample")
    METADATA_FIELD_NUMBER: _ClassVar[int]
    SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    ARTIFACT_URI_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    CREATED_BY_FIELD_NUMBER: _ClassVar[int]
    DEPLOYMENT_FIELD_NUMBER: _ClassVar[int]
    PROBE_SECONDS_PER_SAMPLE_FIELD_NUMBER: _ClassVar[int]
    metadata: ModelMetadata
    size_bytes: int
    sha256: str
    artifact_uri: str
    created_at: _timestamp_pb2.Timestamp
    created_by: str
    deployment: Deployment
    probe_seconds_per_sample: float
    def __init__(self, metadata: _Optional[_Union[ModelMetadata, _Mapping]] = ..., size_bytes: _Optional[int] = ..., sha256: _Optional[str] = ..., artifact_uri: _Optional[str] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., created_by: _Optional[str] = ..., deployment: _Optional[_Union[Deployment, _Mapping]] = ..., probe_seconds_per_sample: _Optional[float] = ...) -> None: ...

class Deployment(_message.Message):
    __slots__ = ("triton_name", "state", "reason")
    TRITON_NAME_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    triton_name: str
    state: str
    reason: str
    def __init__(self, triton_name: _Optional[str] = ..., state: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class GetModelRequest(_message.Message):
    __slots__ = ("name", "version")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: str
    def __init__(self, name: _Optional[str] = ..., version: _Optional[str] = ...) -> None: ...

class ListModelsRequest(_message.Message):
    __slots__ = ("category",)
    CATEGORY_FIELD_NUMBER: _ClassVar[int]
    category: ModelCategory
    def __init__(self, category: _Optional[_Union[ModelCategory, str]] = ...) -> None: ...

class ListModelsResponse(_message.Message):
    __slots__ = ("models",)
    MODELS_FIELD_NUMBER: _ClassVar[int]
    models: _containers.RepeatedCompositeFieldContainer[Model]
    def __init__(self, models: _Optional[_Iterable[_Union[Model, _Mapping]]] = ...) -> None: ...

class DeleteModelRequest(_message.Message):
    __slots__ = ("name", "version")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: str
    def __init__(self, name: _Optional[str] = ..., version: _Optional[str] = ...) -> None: ...

class DeleteModelResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class Shard(_message.Message):
    __slots__ = ("index", "first_sample", "num_samples", "size_bytes", "sha256", "key")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    FIRST_SAMPLE_FIELD_NUMBER: _ClassVar[int]
    NUM_SAMPLES_FIELD_NUMBER: _ClassVar[int]
    SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    index: int
    first_sample: int
    num_samples: int
    size_bytes: int
    sha256: str
    key: str
    def __init__(self, index: _Optional[int] = ..., first_sample: _Optional[int] = ..., num_samples: _Optional[int] = ..., size_bytes: _Optional[int] = ..., sha256: _Optional[str] = ..., key: _Optional[str] = ...) -> None: ...

class TestSetSpec(_message.Message):
    __slots__ = ("name", "kind", "reference", "group", "num_classes", "class_subset", "channels", "height", "width", "num_samples", "shards", "description", "class_names", "groups", "declared", "class_protocol", "class_map", "transform", "unlabelled", "extra_references")
    NAME_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_FIELD_NUMBER: _ClassVar[int]
    GROUP_FIELD_NUMBER: _ClassVar[int]
    NUM_CLASSES_FIELD_NUMBER: _ClassVar[int]
    CLASS_SUBSET_FIELD_NUMBER: _ClassVar[int]
    CHANNELS_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    NUM_SAMPLES_FIELD_NUMBER: _ClassVar[int]
    SHARDS_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    CLASS_NAMES_FIELD_NUMBER: _ClassVar[int]
    GROUPS_FIELD_NUMBER: _ClassVar[int]
    DECLARED_FIELD_NUMBER: _ClassVar[int]
    CLASS_PROTOCOL_FIELD_NUMBER: _ClassVar[int]
    CLASS_MAP_FIELD_NUMBER: _ClassVar[int]
    TRANSFORM_FIELD_NUMBER: _ClassVar[int]
    UNLABELLED_FIELD_NUMBER: _ClassVar[int]
    EXTRA_REFERENCES_FIELD_NUMBER: _ClassVar[int]
    name: str
    kind: TestSetKind
    reference: str
    group: str
    num_classes: int
    class_subset: _containers.RepeatedScalarFieldContainer[int]
    channels: int
    height: int
    width: int
    num_samples: int
    shards: _containers.RepeatedCompositeFieldContainer[Shard]
    description: str
    class_names: _containers.RepeatedScalarFieldContainer[str]
    groups: _containers.RepeatedScalarFieldContainer[str]
    declared: bool
    class_protocol: str
    class_map: _containers.RepeatedCompositeFieldContainer[ClassGroup]
    transform: ImageTransform
    unlabelled: bool
    extra_references: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, name: _Optional[str] = ..., kind: _Optional[_Union[TestSetKind, str]] = ..., reference: _Optional[str] = ..., group: _Optional[str] = ..., num_classes: _Optional[int] = ..., class_subset: _Optional[_Iterable[int]] = ..., channels: _Optional[int] = ..., height: _Optional[int] = ..., width: _Optional[int] = ..., num_samples: _Optional[int] = ..., shards: _Optional[_Iterable[_Union[Shard, _Mapping]]] = ..., description: _Optional[str] = ..., class_names: _Optional[_Iterable[str]] = ..., groups: _Optional[_Iterable[str]] = ..., declared: _Optional[bool] = ..., class_protocol: _Optional[str] = ..., class_map: _Optional[_Iterable[_Union[ClassGroup, _Mapping]]] = ..., transform: _Optional[_Union[ImageTransform, _Mapping]] = ..., unlabelled: _Optional[bool] = ..., extra_references: _Optional[_Iterable[str]] = ...) -> None: ...

class ClassGroup(_message.Message):
    __slots__ = ("outputs",)
    OUTPUTS_FIELD_NUMBER: _ClassVar[int]
    outputs: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, outputs: _Optional[_Iterable[int]] = ...) -> None: ...

class ImageTransform(_message.Message):
    __slots__ = ("border", "resize", "crop_height", "crop_width", "interpolation", "stretch")
    BORDER_FIELD_NUMBER: _ClassVar[int]
    RESIZE_FIELD_NUMBER: _ClassVar[int]
    CROP_HEIGHT_FIELD_NUMBER: _ClassVar[int]
    CROP_WIDTH_FIELD_NUMBER: _ClassVar[int]
    INTERPOLATION_FIELD_NUMBER: _ClassVar[int]
    STRETCH_FIELD_NUMBER: _ClassVar[int]
    border: int
    resize: int
    crop_height: int
    crop_width: int
    interpolation: str
    stretch: bool
    def __init__(self, border: _Optional[int] = ..., resize: _Optional[int] = ..., crop_height: _Optional[int] = ..., crop_width: _Optional[int] = ..., interpolation: _Optional[str] = ..., stretch: _Optional[bool] = ...) -> None: ...

class TestSet(_message.Message):
    __slots__ = ("spec", "size_bytes", "created_at", "created_by")
    SPEC_FIELD_NUMBER: _ClassVar[int]
    SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    CREATED_BY_FIELD_NUMBER: _ClassVar[int]
    spec: TestSetSpec
    size_bytes: int
    created_at: _timestamp_pb2.Timestamp
    created_by: str
    def __init__(self, spec: _Optional[_Union[TestSetSpec, _Mapping]] = ..., size_bytes: _Optional[int] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., created_by: _Optional[str] = ...) -> None: ...

class CreateTestSetUploadRequest(_message.Message):
    __slots__ = ("name", "num_shards", "upload_id", "first_shard", "max_shards")
    NAME_FIELD_NUMBER: _ClassVar[int]
    NUM_SHARDS_FIELD_NUMBER: _ClassVar[int]
    UPLOAD_ID_FIELD_NUMBER: _ClassVar[int]
    FIRST_SHARD_FIELD_NUMBER: _ClassVar[int]
    MAX_SHARDS_FIELD_NUMBER: _ClassVar[int]
    name: str
    num_shards: int
    upload_id: str
    first_shard: int
    max_shards: int
    def __init__(self, name: _Optional[str] = ..., num_shards: _Optional[int] = ..., upload_id: _Optional[str] = ..., first_shard: _Optional[int] = ..., max_shards: _Optional[int] = ...) -> None: ...

class ShardUpload(_message.Message):
    __slots__ = ("index", "url")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    URL_FIELD_NUMBER: _ClassVar[int]
    index: int
    url: str
    def __init__(self, index: _Optional[int] = ..., url: _Optional[str] = ...) -> None: ...

class TestSetUpload(_message.Message):
    __slots__ = ("upload_id", "shards", "expires_at", "next_shard", "num_shards")
    UPLOAD_ID_FIELD_NUMBER: _ClassVar[int]
    SHARDS_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    NEXT_SHARD_FIELD_NUMBER: _ClassVar[int]
    NUM_SHARDS_FIELD_NUMBER: _ClassVar[int]
    upload_id: str
    shards: _containers.RepeatedCompositeFieldContainer[ShardUpload]
    expires_at: _timestamp_pb2.Timestamp
    next_shard: int
    num_shards: int
    def __init__(self, upload_id: _Optional[str] = ..., shards: _Optional[_Iterable[_Union[ShardUpload, _Mapping]]] = ..., expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., next_shard: _Optional[int] = ..., num_shards: _Optional[int] = ...) -> None: ...

class RegisterTestSetRequest(_message.Message):
    __slots__ = ("upload_id", "spec", "shards")
    UPLOAD_ID_FIELD_NUMBER: _ClassVar[int]
    SPEC_FIELD_NUMBER: _ClassVar[int]
    SHARDS_FIELD_NUMBER: _ClassVar[int]
    upload_id: str
    spec: TestSetSpec
    shards: _containers.RepeatedCompositeFieldContainer[Shard]
    def __init__(self, upload_id: _Optional[str] = ..., spec: _Optional[_Union[TestSetSpec, _Mapping]] = ..., shards: _Optional[_Iterable[_Union[Shard, _Mapping]]] = ...) -> None: ...

class GetTestSetRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class DeleteTestSetRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class DeleteTestSetResponse(_message.Message):
    __slots__ = ("evaluations_deleted",)
    EVALUATIONS_DELETED_FIELD_NUMBER: _ClassVar[int]
    evaluations_deleted: int
    def __init__(self, evaluations_deleted: _Optional[int] = ...) -> None: ...

class AbortTestSetUploadRequest(_message.Message):
    __slots__ = ("upload_id",)
    UPLOAD_ID_FIELD_NUMBER: _ClassVar[int]
    upload_id: str
    def __init__(self, upload_id: _Optional[str] = ...) -> None: ...

class AbortTestSetUploadResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetSamplesRequest(_message.Message):
    __slots__ = ("testset", "samples")
    TESTSET_FIELD_NUMBER: _ClassVar[int]
    SAMPLES_FIELD_NUMBER: _ClassVar[int]
    testset: str
    samples: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, testset: _Optional[str] = ..., samples: _Optional[_Iterable[int]] = ...) -> None: ...

class Sample(_message.Message):
    __slots__ = ("sample", "label", "image")
    SAMPLE_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    sample: int
    label: int
    image: bytes
    def __init__(self, sample: _Optional[int] = ..., label: _Optional[int] = ..., image: _Optional[bytes] = ...) -> None: ...

class GetSamplesResponse(_message.Message):
    __slots__ = ("channels", "height", "width", "samples")
    CHANNELS_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    SAMPLES_FIELD_NUMBER: _ClassVar[int]
    channels: int
    height: int
    width: int
    samples: _containers.RepeatedCompositeFieldContainer[Sample]
    def __init__(self, channels: _Optional[int] = ..., height: _Optional[int] = ..., width: _Optional[int] = ..., samples: _Optional[_Iterable[_Union[Sample, _Mapping]]] = ...) -> None: ...

class ListTestSetsRequest(_message.Message):
    __slots__ = ("kind", "group")
    KIND_FIELD_NUMBER: _ClassVar[int]
    GROUP_FIELD_NUMBER: _ClassVar[int]
    kind: TestSetKind
    group: str
    def __init__(self, kind: _Optional[_Union[TestSetKind, str]] = ..., group: _Optional[str] = ...) -> None: ...

class ListTestSetsResponse(_message.Message):
    __slots__ = ("test_sets",)
    TEST_SETS_FIELD_NUMBER: _ClassVar[int]
    test_sets: _containers.RepeatedCompositeFieldContainer[TestSet]
    def __init__(self, test_sets: _Optional[_Iterable[_Union[TestSet, _Mapping]]] = ...) -> None: ...

class CreateTokenRequest(_message.Message):
    __slots__ = ("name", "admin", "role")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ADMIN_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    name: str
    admin: bool
    role: TokenRole
    def __init__(self, name: _Optional[str] = ..., admin: _Optional[bool] = ..., role: _Optional[_Union[TokenRole, str]] = ...) -> None: ...

class CreateTokenResponse(_message.Message):
    __slots__ = ("name", "token", "role")
    NAME_FIELD_NUMBER: _ClassVar[int]
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    name: str
    token: str
    role: TokenRole
    def __init__(self, name: _Optional[str] = ..., token: _Optional[str] = ..., role: _Optional[_Union[TokenRole, str]] = ...) -> None: ...

class TokenInfo(_message.Message):
    __slots__ = ("name", "role", "created_at", "created_by")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    CREATED_BY_FIELD_NUMBER: _ClassVar[int]
    name: str
    role: TokenRole
    created_at: _timestamp_pb2.Timestamp
    created_by: str
    def __init__(self, name: _Optional[str] = ..., role: _Optional[_Union[TokenRole, str]] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., created_by: _Optional[str] = ...) -> None: ...

class ListTokensRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListTokensResponse(_message.Message):
    __slots__ = ("tokens",)
    TOKENS_FIELD_NUMBER: _ClassVar[int]
    tokens: _containers.RepeatedCompositeFieldContainer[TokenInfo]
    def __init__(self, tokens: _Optional[_Iterable[_Union[TokenInfo, _Mapping]]] = ...) -> None: ...

class RevokeTokenRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class RevokeTokenResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetServerInfoRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ServerInfo(_message.Message):
    __slots__ = ("version", "bucket", "s3_endpoint", "triton_url", "prefect_api_url", "leaderboard_url", "open_reads", "catalog_schema_version")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    BUCKET_FIELD_NUMBER: _ClassVar[int]
    S3_ENDPOINT_FIELD_NUMBER: _ClassVar[int]
    TRITON_URL_FIELD_NUMBER: _ClassVar[int]
    PREFECT_API_URL_FIELD_NUMBER: _ClassVar[int]
    LEADERBOARD_URL_FIELD_NUMBER: _ClassVar[int]
    OPEN_READS_FIELD_NUMBER: _ClassVar[int]
    CATALOG_SCHEMA_VERSION_FIELD_NUMBER: _ClassVar[int]
    version: str
    bucket: str
    s3_endpoint: str
    triton_url: str
    prefect_api_url: str
    leaderboard_url: str
    open_reads: bool
    catalog_schema_version: int
    def __init__(self, version: _Optional[str] = ..., bucket: _Optional[str] = ..., s3_endpoint: _Optional[str] = ..., triton_url: _Optional[str] = ..., prefect_api_url: _Optional[str] = ..., leaderboard_url: _Optional[str] = ..., open_reads: _Optional[bool] = ..., catalog_schema_version: _Optional[int] = ...) -> None: ...

class EvaluationKey(_message.Message):
    __slots__ = ("model", "version", "testset")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    TESTSET_FIELD_NUMBER: _ClassVar[int]
    model: str
    version: str
    testset: str
    def __init__(self, model: _Optional[str] = ..., version: _Optional[str] = ..., testset: _Optional[str] = ...) -> None: ...

class Evaluation(_message.Message):
    __slots__ = ("key", "status", "shards_done", "shards_total", "samples_done", "samples_total", "samples_per_second", "error", "flow_run_id", "created_at", "updated_at", "attempts")
    KEY_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    SHARDS_DONE_FIELD_NUMBER: _ClassVar[int]
    SHARDS_TOTAL_FIELD_NUMBER: _ClassVar[int]
    SAMPLES_DONE_FIELD_NUMBER: _ClassVar[int]
    SAMPLES_TOTAL_FIELD_NUMBER: _ClassVar[int]
    SAMPLES_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    FLOW_RUN_ID_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    key: EvaluationKey
    status: EvaluationStatus
    shards_done: int
    shards_total: int
    samples_done: int
    samples_total: int
    samples_per_second: float
    error: str
    flow_run_id: str
    created_at: _timestamp_pb2.Timestamp
    updated_at: _timestamp_pb2.Timestamp
    attempts: int
    def __init__(self, key: _Optional[_Union[EvaluationKey, _Mapping]] = ..., status: _Optional[_Union[EvaluationStatus, str]] = ..., shards_done: _Optional[int] = ..., shards_total: _Optional[int] = ..., samples_done: _Optional[int] = ..., samples_total: _Optional[int] = ..., samples_per_second: _Optional[float] = ..., error: _Optional[str] = ..., flow_run_id: _Optional[str] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., attempts: _Optional[int] = ...) -> None: ...

class ListEvaluationsRequest(_message.Message):
    __slots__ = ("model", "testset", "status")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    TESTSET_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    model: str
    testset: str
    status: EvaluationStatus
    def __init__(self, model: _Optional[str] = ..., testset: _Optional[str] = ..., status: _Optional[_Union[EvaluationStatus, str]] = ...) -> None: ...

class ListEvaluationsResponse(_message.Message):
    __slots__ = ("evaluations",)
    EVALUATIONS_FIELD_NUMBER: _ClassVar[int]
    evaluations: _containers.RepeatedCompositeFieldContainer[Evaluation]
    def __init__(self, evaluations: _Optional[_Iterable[_Union[Evaluation, _Mapping]]] = ...) -> None: ...

class RequestEvaluationsRequest(_message.Message):
    __slots__ = ("keys", "rerun")
    KEYS_FIELD_NUMBER: _ClassVar[int]
    RERUN_FIELD_NUMBER: _ClassVar[int]
    keys: _containers.RepeatedCompositeFieldContainer[EvaluationKey]
    rerun: bool
    def __init__(self, keys: _Optional[_Iterable[_Union[EvaluationKey, _Mapping]]] = ..., rerun: _Optional[bool] = ...) -> None: ...

class RequestEvaluationsResponse(_message.Message):
    __slots__ = ("evaluations",)
    EVALUATIONS_FIELD_NUMBER: _ClassVar[int]
    evaluations: _containers.RepeatedCompositeFieldContainer[Evaluation]
    def __init__(self, evaluations: _Optional[_Iterable[_Union[Evaluation, _Mapping]]] = ...) -> None: ...

class StartEvaluationRequest(_message.Message):
    __slots__ = ("key", "flow_run_id")
    KEY_FIELD_NUMBER: _ClassVar[int]
    FLOW_RUN_ID_FIELD_NUMBER: _ClassVar[int]
    key: EvaluationKey
    flow_run_id: str
    def __init__(self, key: _Optional[_Union[EvaluationKey, _Mapping]] = ..., flow_run_id: _Optional[str] = ...) -> None: ...

class EvaluationPlan(_message.Message):
    __slots__ = ("evaluation", "model", "testset", "pending_shards", "restrictions")
    EVALUATION_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    TESTSET_FIELD_NUMBER: _ClassVar[int]
    PENDING_SHARDS_FIELD_NUMBER: _ClassVar[int]
    RESTRICTIONS_FIELD_NUMBER: _ClassVar[int]
    evaluation: Evaluation
    model: Model
    testset: TestSet
    pending_shards: _containers.RepeatedScalarFieldContainer[int]
    restrictions: _containers.RepeatedCompositeFieldContainer[Restriction]
    def __init__(self, evaluation: _Optional[_Union[Evaluation, _Mapping]] = ..., model: _Optional[_Union[Model, _Mapping]] = ..., testset: _Optional[_Union[TestSet, _Mapping]] = ..., pending_shards: _Optional[_Iterable[int]] = ..., restrictions: _Optional[_Iterable[_Union[Restriction, _Mapping]]] = ...) -> None: ...

class Restriction(_message.Message):
    __slots__ = ("shift", "class_subset", "class_map")
    SHIFT_FIELD_NUMBER: _ClassVar[int]
    CLASS_SUBSET_FIELD_NUMBER: _ClassVar[int]
    CLASS_MAP_FIELD_NUMBER: _ClassVar[int]
    shift: str
    class_subset: _containers.RepeatedScalarFieldContainer[int]
    class_map: _containers.RepeatedCompositeFieldContainer[ClassGroup]
    def __init__(self, shift: _Optional[str] = ..., class_subset: _Optional[_Iterable[int]] = ..., class_map: _Optional[_Iterable[_Union[ClassGroup, _Mapping]]] = ...) -> None: ...

class RestrictedTop1(_message.Message):
    __slots__ = ("shift", "top1")
    SHIFT_FIELD_NUMBER: _ClassVar[int]
    TOP1_FIELD_NUMBER: _ClassVar[int]
    shift: str
    top1: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, shift: _Optional[str] = ..., top1: _Optional[_Iterable[int]] = ...) -> None: ...

class Predictions(_message.Message):
    __slots__ = ("sample", "label", "top1", "top5", "confidence", "correct")
    SAMPLE_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    TOP1_FIELD_NUMBER: _ClassVar[int]
    TOP5_FIELD_NUMBER: _ClassVar[int]
    CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    CORRECT_FIELD_NUMBER: _ClassVar[int]
    sample: _containers.RepeatedScalarFieldContainer[int]
    label: _containers.RepeatedScalarFieldContainer[int]
    top1: _containers.RepeatedScalarFieldContainer[int]
    top5: _containers.RepeatedScalarFieldContainer[int]
    confidence: _containers.RepeatedScalarFieldContainer[float]
    correct: _containers.RepeatedScalarFieldContainer[bool]
    def __init__(self, sample: _Optional[_Iterable[int]] = ..., label: _Optional[_Iterable[int]] = ..., top1: _Optional[_Iterable[int]] = ..., top5: _Optional[_Iterable[int]] = ..., confidence: _Optional[_Iterable[float]] = ..., correct: _Optional[_Iterable[bool]] = ...) -> None: ...

class CommitShardRequest(_message.Message):
    __slots__ = ("key", "shard_index", "predictions", "seconds", "restricted")
    KEY_FIELD_NUMBER: _ClassVar[int]
    SHARD_INDEX_FIELD_NUMBER: _ClassVar[int]
    PREDICTIONS_FIELD_NUMBER: _ClassVar[int]
    SECONDS_FIELD_NUMBER: _ClassVar[int]
    RESTRICTED_FIELD_NUMBER: _ClassVar[int]
    key: EvaluationKey
    shard_index: int
    predictions: Predictions
    seconds: float
    restricted: _containers.RepeatedCompositeFieldContainer[RestrictedTop1]
    def __init__(self, key: _Optional[_Union[EvaluationKey, _Mapping]] = ..., shard_index: _Optional[int] = ..., predictions: _Optional[_Union[Predictions, _Mapping]] = ..., seconds: _Optional[float] = ..., restricted: _Optional[_Iterable[_Union[RestrictedTop1, _Mapping]]] = ...) -> None: ...

class CommitShardsRequest(_message.Message):
    __slots__ = ("key", "parts")
    KEY_FIELD_NUMBER: _ClassVar[int]
    PARTS_FIELD_NUMBER: _ClassVar[int]
    key: EvaluationKey
    parts: _containers.RepeatedCompositeFieldContainer[ShardPart]
    def __init__(self, key: _Optional[_Union[EvaluationKey, _Mapping]] = ..., parts: _Optional[_Iterable[_Union[ShardPart, _Mapping]]] = ...) -> None: ...

class ShardPart(_message.Message):
    __slots__ = ("shard_index", "first_sample", "samples", "top1", "top5", "confidence", "seconds", "restricted")
    SHARD_INDEX_FIELD_NUMBER: _ClassVar[int]
    FIRST_SAMPLE_FIELD_NUMBER: _ClassVar[int]
    SAMPLES_FIELD_NUMBER: _ClassVar[int]
    TOP1_FIELD_NUMBER: _ClassVar[int]
    TOP5_FIELD_NUMBER: _ClassVar[int]
    CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    SECONDS_FIELD_NUMBER: _ClassVar[int]
    RESTRICTED_FIELD_NUMBER: _ClassVar[int]
    shard_index: int
    first_sample: int
    samples: int
    top1: bytes
    top5: bytes
    confidence: bytes
    seconds: float
    restricted: _containers.RepeatedCompositeFieldContainer[PackedTop1]
    def __init__(self, shard_index: _Optional[int] = ..., first_sample: _Optional[int] = ..., samples: _Optional[int] = ..., top1: _Optional[bytes] = ..., top5: _Optional[bytes] = ..., confidence: _Optional[bytes] = ..., seconds: _Optional[float] = ..., restricted: _Optional[_Iterable[_Union[PackedTop1, _Mapping]]] = ...) -> None: ...

class PackedTop1(_message.Message):
    __slots__ = ("shift", "top1")
    SHIFT_FIELD_NUMBER: _ClassVar[int]
    TOP1_FIELD_NUMBER: _ClassVar[int]
    shift: str
    top1: bytes
    def __init__(self, shift: _Optional[str] = ..., top1: _Optional[bytes] = ...) -> None: ...

class FinishEvaluationRequest(_message.Message):
    __slots__ = ("key", "failed", "error")
    KEY_FIELD_NUMBER: _ClassVar[int]
    FAILED_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    key: EvaluationKey
    failed: bool
    error: str
    def __init__(self, key: _Optional[_Union[EvaluationKey, _Mapping]] = ..., failed: _Optional[bool] = ..., error: _Optional[str] = ...) -> None: ...

class GetAccuracyRequest(_message.Message):
    __slots__ = ("model", "testset")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    TESTSET_FIELD_NUMBER: _ClassVar[int]
    model: str
    testset: str
    def __init__(self, model: _Optional[str] = ..., testset: _Optional[str] = ...) -> None: ...

class Accuracy(_message.Message):
    __slots__ = ("key", "samples", "correct", "accuracy", "ci_low", "ci_high")
    KEY_FIELD_NUMBER: _ClassVar[int]
    SAMPLES_FIELD_NUMBER: _ClassVar[int]
    CORRECT_FIELD_NUMBER: _ClassVar[int]
    ACCURACY_FIELD_NUMBER: _ClassVar[int]
    CI_LOW_FIELD_NUMBER: _ClassVar[int]
    CI_HIGH_FIELD_NUMBER: _ClassVar[int]
    key: EvaluationKey
    samples: int
    correct: int
    accuracy: float
    ci_low: float
    ci_high: float
    def __init__(self, key: _Optional[_Union[EvaluationKey, _Mapping]] = ..., samples: _Optional[int] = ..., correct: _Optional[int] = ..., accuracy: _Optional[float] = ..., ci_low: _Optional[float] = ..., ci_high: _Optional[float] = ...) -> None: ...

class GetAccuracyResponse(_message.Message):
    __slots__ = ("accuracies",)
    ACCURACIES_FIELD_NUMBER: _ClassVar[int]
    accuracies: _containers.RepeatedCompositeFieldContainer[Accuracy]
    def __init__(self, accuracies: _Optional[_Iterable[_Union[Accuracy, _Mapping]]] = ...) -> None: ...

class GetLeaderboardRequest(_message.Message):
    __slots__ = ("shift", "group", "transform", "resamples", "extremes")
    SHIFT_FIELD_NUMBER: _ClassVar[int]
    GROUP_FIELD_NUMBER: _ClassVar[int]
    TRANSFORM_FIELD_NUMBER: _ClassVar[int]
    RESAMPLES_FIELD_NUMBER: _ClassVar[int]
    EXTREMES_FIELD_NUMBER: _ClassVar[int]
    shift: str
    group: str
    transform: str
    resamples: int
    extremes: str
    def __init__(self, shift: _Optional[str] = ..., group: _Optional[str] = ..., transform: _Optional[str] = ..., resamples: _Optional[int] = ..., extremes: _Optional[str] = ...) -> None: ...

class Interval(_message.Message):
    __slots__ = ("low", "high")
    LOW_FIELD_NUMBER: _ClassVar[int]
    HIGH_FIELD_NUMBER: _ClassVar[int]
    low: float
    high: float
    def __init__(self, low: _Optional[float] = ..., high: _Optional[float] = ...) -> None: ...

class LeaderboardRow(_message.Message):
    __slots__ = ("model", "category", "baseline", "ref_acc", "ref_ci", "n_ref", "shift_acc", "shift_ci", "n_shift", "has_er", "predicted_shift_acc", "er", "er_ci", "has_er_ci", "tied", "rank", "clipped", "tags", "imported", "source", "version", "url", "testbed_type", "diff_ci", "has_diff_ci", "plane_predicted_shift_acc", "plane_er", "has_plane_er", "plane_er_ci", "has_plane_er_ci", "estimated")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    CATEGORY_FIELD_NUMBER: _ClassVar[int]
    BASELINE_FIELD_NUMBER: _ClassVar[int]
    REF_ACC_FIELD_NUMBER: _ClassVar[int]
    REF_CI_FIELD_NUMBER: _ClassVar[int]
    N_REF_FIELD_NUMBER: _ClassVar[int]
    SHIFT_ACC_FIELD_NUMBER: _ClassVar[int]
    SHIFT_CI_FIELD_NUMBER: _ClassVar[int]
    N_SHIFT_FIELD_NUMBER: _ClassVar[int]
    HAS_ER_FIELD_NUMBER: _ClassVar[int]
    PREDICTED_SHIFT_ACC_FIELD_NUMBER: _ClassVar[int]
    ER_FIELD_NUMBER: _ClassVar[int]
    ER_CI_FIELD_NUMBER: _ClassVar[int]
    HAS_ER_CI_FIELD_NUMBER: _ClassVar[int]
    TIED_FIELD_NUMBER: _ClassVar[int]
    RANK_FIELD_NUMBER: _ClassVar[int]
    CLIPPED_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    IMPORTED_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    URL_FIELD_NUMBER: _ClassVar[int]
    TESTBED_TYPE_FIELD_NUMBER: _ClassVar[int]
    DIFF_CI_FIELD_NUMBER: _ClassVar[int]
    HAS_DIFF_CI_FIELD_NUMBER: _ClassVar[int]
    PLANE_PREDICTED_SHIFT_ACC_FIELD_NUMBER: _ClassVar[int]
    PLANE_ER_FIELD_NUMBER: _ClassVar[int]
    HAS_PLANE_ER_FIELD_NUMBER: _ClassVar[int]
    PLANE_ER_CI_FIELD_NUMBER: _ClassVar[int]
    HAS_PLANE_ER_CI_FIELD_NUMBER: _ClassVar[int]
    ESTIMATED_FIELD_NUMBER: _ClassVar[int]
    model: str
    category: str
    baseline: bool
    ref_acc: float
    ref_ci: Interval
    n_ref: int
    shift_acc: float
    shift_ci: Interval
    n_shift: int
    has_er: bool
    predicted_shift_acc: float
    er: float
    er_ci: Interval
    has_er_ci: bool
    tied: bool
    rank: int
    clipped: bool
    tags: _containers.RepeatedScalarFieldContainer[str]
    imported: bool
    source: str
    version: str
    url: str
    testbed_type: str
    diff_ci: Interval
    has_diff_ci: bool
    plane_predicted_shift_acc: float
    plane_er: float
    has_plane_er: bool
    plane_er_ci: Interval
    has_plane_er_ci: bool
    estimated: bool
    def __init__(self, model: _Optional[str] = ..., category: _Optional[str] = ..., baseline: _Optional[bool] = ..., ref_acc: _Optional[float] = ..., ref_ci: _Optional[_Union[Interval, _Mapping]] = ..., n_ref: _Optional[int] = ..., shift_acc: _Optional[float] = ..., shift_ci: _Optional[_Union[Interval, _Mapping]] = ..., n_shift: _Optional[int] = ..., has_er: _Optional[bool] = ..., predicted_shift_acc: _Optional[float] = ..., er: _Optional[float] = ..., er_ci: _Optional[_Union[Interval, _Mapping]] = ..., has_er_ci: _Optional[bool] = ..., tied: _Optional[bool] = ..., rank: _Optional[int] = ..., clipped: _Optional[bool] = ..., tags: _Optional[_Iterable[str]] = ..., imported: _Optional[bool] = ..., source: _Optional[str] = ..., version: _Optional[str] = ..., url: _Optional[str] = ..., testbed_type: _Optional[str] = ..., diff_ci: _Optional[_Union[Interval, _Mapping]] = ..., has_diff_ci: _Optional[bool] = ..., plane_predicted_shift_acc: _Optional[float] = ..., plane_er: _Optional[float] = ..., has_plane_er: _Optional[bool] = ..., plane_er_ci: _Optional[_Union[Interval, _Mapping]] = ..., has_plane_er_ci: _Optional[bool] = ..., estimated: _Optional[bool] = ...) -> None: ...

class BaselineFit(_message.Message):
    __slots__ = ("ok", "reason", "transform", "n", "slope", "intercept", "r2", "slope_ci", "intercept_ci", "grid", "predicted", "band_low", "band_high", "clipped", "excluded")
    OK_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    TRANSFORM_FIELD_NUMBER: _ClassVar[int]
    N_FIELD_NUMBER: _ClassVar[int]
    SLOPE_FIELD_NUMBER: _ClassVar[int]
    INTERCEPT_FIELD_NUMBER: _ClassVar[int]
    R2_FIELD_NUMBER: _ClassVar[int]
    SLOPE_CI_FIELD_NUMBER: _ClassVar[int]
    INTERCEPT_CI_FIELD_NUMBER: _ClassVar[int]
    GRID_FIELD_NUMBER: _ClassVar[int]
    PREDICTED_FIELD_NUMBER: _ClassVar[int]
    BAND_LOW_FIELD_NUMBER: _ClassVar[int]
    BAND_HIGH_FIELD_NUMBER: _ClassVar[int]
    CLIPPED_FIELD_NUMBER: _ClassVar[int]
    EXCLUDED_FIELD_NUMBER: _ClassVar[int]
    ok: bool
    reason: str
    transform: str
    n: int
    slope: float
    intercept: float
    r2: float
    slope_ci: Interval
    intercept_ci: Interval
    grid: _containers.RepeatedScalarFieldContainer[float]
    predicted: _containers.RepeatedScalarFieldContainer[float]
    band_low: _containers.RepeatedScalarFieldContainer[float]
    band_high: _containers.RepeatedScalarFieldContainer[float]
    clipped: _containers.RepeatedScalarFieldContainer[str]
    excluded: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, ok: _Optional[bool] = ..., reason: _Optional[str] = ..., transform: _Optional[str] = ..., n: _Optional[int] = ..., slope: _Optional[float] = ..., intercept: _Optional[float] = ..., r2: _Optional[float] = ..., slope_ci: _Optional[_Union[Interval, _Mapping]] = ..., intercept_ci: _Optional[_Union[Interval, _Mapping]] = ..., grid: _Optional[_Iterable[float]] = ..., predicted: _Optional[_Iterable[float]] = ..., band_low: _Optional[_Iterable[float]] = ..., band_high: _Optional[_Iterable[float]] = ..., clipped: _Optional[_Iterable[str]] = ..., excluded: _Optional[_Iterable[str]] = ...) -> None: ...

class PlaneFit(_message.Message):
    __slots__ = ("ok", "reason", "transform", "n", "references", "coefficients", "intercept", "r2")
    OK_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    TRANSFORM_FIELD_NUMBER: _ClassVar[int]
    N_FIELD_NUMBER: _ClassVar[int]
    REFERENCES_FIELD_NUMBER: _ClassVar[int]
    COEFFICIENTS_FIELD_NUMBER: _ClassVar[int]
    INTERCEPT_FIELD_NUMBER: _ClassVar[int]
    R2_FIELD_NUMBER: _ClassVar[int]
    ok: bool
    reason: str
    transform: str
    n: int
    references: _containers.RepeatedScalarFieldContainer[str]
    coefficients: _containers.RepeatedScalarFieldContainer[float]
    intercept: float
    r2: float
    def __init__(self, ok: _Optional[bool] = ..., reason: _Optional[str] = ..., transform: _Optional[str] = ..., n: _Optional[int] = ..., references: _Optional[_Iterable[str]] = ..., coefficients: _Optional[_Iterable[float]] = ..., intercept: _Optional[float] = ..., r2: _Optional[float] = ...) -> None: ...

class GroupRow(_message.Message):
    __slots__ = ("model", "category", "shifts", "of", "mean_ref_acc", "mean_shift_acc", "er_shifts", "has_er", "mean_er", "complete", "rank", "mean_er_ci", "has_mean_er_ci", "diff_ci", "has_diff_ci", "tied", "imported", "source")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    CATEGORY_FIELD_NUMBER: _ClassVar[int]
    SHIFTS_FIELD_NUMBER: _ClassVar[int]
    OF_FIELD_NUMBER: _ClassVar[int]
    MEAN_REF_ACC_FIELD_NUMBER: _ClassVar[int]
    MEAN_SHIFT_ACC_FIELD_NUMBER: _ClassVar[int]
    ER_SHIFTS_FIELD_NUMBER: _ClassVar[int]
    HAS_ER_FIELD_NUMBER: _ClassVar[int]
    MEAN_ER_FIELD_NUMBER: _ClassVar[int]
    COMPLETE_FIELD_NUMBER: _ClassVar[int]
    RANK_FIELD_NUMBER: _ClassVar[int]
    MEAN_ER_CI_FIELD_NUMBER: _ClassVar[int]
    HAS_MEAN_ER_CI_FIELD_NUMBER: _ClassVar[int]
    DIFF_CI_FIELD_NUMBER: _ClassVar[int]
    HAS_DIFF_CI_FIELD_NUMBER: _ClassVar[int]
    TIED_FIELD_NUMBER: _ClassVar[int]
    IMPORTED_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    model: str
    category: str
    shifts: int
    of: int
    mean_ref_acc: float
    mean_shift_acc: float
    er_shifts: int
    has_er: bool
    mean_er: float
    complete: bool
    rank: int
    mean_er_ci: Interval
    has_mean_er_ci: bool
    diff_ci: Interval
    has_diff_ci: bool
    tied: bool
    imported: bool
    source: str
    def __init__(self, model: _Optional[str] = ..., category: _Optional[str] = ..., shifts: _Optional[int] = ..., of: _Optional[int] = ..., mean_ref_acc: _Optional[float] = ..., mean_shift_acc: _Optional[float] = ..., er_shifts: _Optional[int] = ..., has_er: _Optional[bool] = ..., mean_er: _Optional[float] = ..., complete: _Optional[bool] = ..., rank: _Optional[int] = ..., mean_er_ci: _Optional[_Union[Interval, _Mapping]] = ..., has_mean_er_ci: _Optional[bool] = ..., diff_ci: _Optional[_Union[Interval, _Mapping]] = ..., has_diff_ci: _Optional[bool] = ..., tied: _Optional[bool] = ..., imported: _Optional[bool] = ..., source: _Optional[str] = ...) -> None: ...

class Leaderboard(_message.Message):
    __slots__ = ("shift", "reference", "group", "rows", "fit", "notes", "er_mode", "group_rows", "shifts", "class_subset", "plane", "agreement", "estimate_method")
    SHIFT_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_FIELD_NUMBER: _ClassVar[int]
    GROUP_FIELD_NUMBER: _ClassVar[int]
    ROWS_FIELD_NUMBER: _ClassVar[int]
    FIT_FIELD_NUMBER: _ClassVar[int]
    NOTES_FIELD_NUMBER: _ClassVar[int]
    ER_MODE_FIELD_NUMBER: _ClassVar[int]
    GROUP_ROWS_FIELD_NUMBER: _ClassVar[int]
    SHIFTS_FIELD_NUMBER: _ClassVar[int]
    CLASS_SUBSET_FIELD_NUMBER: _ClassVar[int]
    PLANE_FIELD_NUMBER: _ClassVar[int]
    AGREEMENT_FIELD_NUMBER: _ClassVar[int]
    ESTIMATE_METHOD_FIELD_NUMBER: _ClassVar[int]
    shift: str
    reference: str
    group: str
    rows: _containers.RepeatedCompositeFieldContainer[LeaderboardRow]
    fit: BaselineFit
    notes: _containers.RepeatedScalarFieldContainer[str]
    er_mode: str
    group_rows: _containers.RepeatedCompositeFieldContainer[GroupRow]
    shifts: _containers.RepeatedCompositeFieldContainer[Leaderboard]
    class_subset: _containers.RepeatedScalarFieldContainer[int]
    plane: PlaneFit
    agreement: AgreementFit
    estimate_method: str
    def __init__(self, shift: _Optional[str] = ..., reference: _Optional[str] = ..., group: _Optional[str] = ..., rows: _Optional[_Iterable[_Union[LeaderboardRow, _Mapping]]] = ..., fit: _Optional[_Union[BaselineFit, _Mapping]] = ..., notes: _Optional[_Iterable[str]] = ..., er_mode: _Optional[str] = ..., group_rows: _Optional[_Iterable[_Union[GroupRow, _Mapping]]] = ..., shifts: _Optional[_Iterable[_Union[Leaderboard, _Mapping]]] = ..., class_subset: _Optional[_Iterable[int]] = ..., plane: _Optional[_Union[PlaneFit, _Mapping]] = ..., agreement: _Optional[_Union[AgreementFit, _Mapping]] = ..., estimate_method: _Optional[str] = ...) -> None: ...

class AgreementFit(_message.Message):
    __slots__ = ("ok", "reason", "transform", "n_pairs", "slope", "intercept", "r2", "min_r2", "trustworthy", "warning", "ref_agreement", "shift_agreement", "pair_a", "pair_b")
    OK_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    TRANSFORM_FIELD_NUMBER: _ClassVar[int]
    N_PAIRS_FIELD_NUMBER: _ClassVar[int]
    SLOPE_FIELD_NUMBER: _ClassVar[int]
    INTERCEPT_FIELD_NUMBER: _ClassVar[int]
    R2_FIELD_NUMBER: _ClassVar[int]
    MIN_R2_FIELD_NUMBER: _ClassVar[int]
    TRUSTWORTHY_FIELD_NUMBER: _ClassVar[int]
    WARNING_FIELD_NUMBER: _ClassVar[int]
    REF_AGREEMENT_FIELD_NUMBER: _ClassVar[int]
    SHIFT_AGREEMENT_FIELD_NUMBER: _ClassVar[int]
    PAIR_A_FIELD_NUMBER: _ClassVar[int]
    PAIR_B_FIELD_NUMBER: _ClassVar[int]
    ok: bool
    reason: str
    transform: str
    n_pairs: int
    slope: float
    intercept: float
    r2: float
    min_r2: float
    trustworthy: bool
    warning: str
    ref_agreement: _containers.RepeatedScalarFieldContainer[float]
    shift_agreement: _containers.RepeatedScalarFieldContainer[float]
    pair_a: _containers.RepeatedScalarFieldContainer[str]
    pair_b: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, ok: _Optional[bool] = ..., reason: _Optional[str] = ..., transform: _Optional[str] = ..., n_pairs: _Optional[int] = ..., slope: _Optional[float] = ..., intercept: _Optional[float] = ..., r2: _Optional[float] = ..., min_r2: _Optional[float] = ..., trustworthy: _Optional[bool] = ..., warning: _Optional[str] = ..., ref_agreement: _Optional[_Iterable[float]] = ..., shift_agreement: _Optional[_Iterable[float]] = ..., pair_a: _Optional[_Iterable[str]] = ..., pair_b: _Optional[_Iterable[str]] = ...) -> None: ...

class CompareModelsRequest(_message.Message):
    __slots__ = ("model_a", "model_b", "testset")
    MODEL_A_FIELD_NUMBER: _ClassVar[int]
    MODEL_B_FIELD_NUMBER: _ClassVar[int]
    TESTSET_FIELD_NUMBER: _ClassVar[int]
    model_a: str
    model_b: str
    testset: str
    def __init__(self, model_a: _Optional[str] = ..., model_b: _Optional[str] = ..., testset: _Optional[str] = ...) -> None: ...

class Comparison(_message.Message):
    __slots__ = ("model_a", "model_b", "testset", "samples", "acc_a", "acc_b", "only_a_correct", "only_b_correct", "statistic", "p_value", "method")
    MODEL_A_FIELD_NUMBER: _ClassVar[int]
    MODEL_B_FIELD_NUMBER: _ClassVar[int]
    TESTSET_FIELD_NUMBER: _ClassVar[int]
    SAMPLES_FIELD_NUMBER: _ClassVar[int]
    ACC_A_FIELD_NUMBER: _ClassVar[int]
    ACC_B_FIELD_NUMBER: _ClassVar[int]
    ONLY_A_CORRECT_FIELD_NUMBER: _ClassVar[int]
    ONLY_B_CORRECT_FIELD_NUMBER: _ClassVar[int]
    STATISTIC_FIELD_NUMBER: _ClassVar[int]
    P_VALUE_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    model_a: str
    model_b: str
    testset: str
    samples: int
    acc_a: float
    acc_b: float
    only_a_correct: int
    only_b_correct: int
    statistic: float
    p_value: float
    method: str
    def __init__(self, model_a: _Optional[str] = ..., model_b: _Optional[str] = ..., testset: _Optional[str] = ..., samples: _Optional[int] = ..., acc_a: _Optional[float] = ..., acc_b: _Optional[float] = ..., only_a_correct: _Optional[int] = ..., only_b_correct: _Optional[int] = ..., statistic: _Optional[float] = ..., p_value: _Optional[float] = ..., method: _Optional[str] = ...) -> None: ...

class GetOverviewRequest(_message.Message):
    __slots__ = ("transform", "kind", "extremes")
    TRANSFORM_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    EXTREMES_FIELD_NUMBER: _ClassVar[int]
    transform: str
    kind: TestSetKind
    extremes: str
    def __init__(self, transform: _Optional[str] = ..., kind: _Optional[_Union[TestSetKind, str]] = ..., extremes: _Optional[str] = ...) -> None: ...

class ImportResultsHeader(_message.Message):
    __slots__ = ("format", "model_types", "source", "url", "scale", "preset", "filename", "size_bytes")
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    MODEL_TYPES_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    URL_FIELD_NUMBER: _ClassVar[int]
    SCALE_FIELD_NUMBER: _ClassVar[int]
    PRESET_FIELD_NUMBER: _ClassVar[int]
    FILENAME_FIELD_NUMBER: _ClassVar[int]
    SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    format: str
    model_types: bytes
    source: str
    url: str
    scale: str
    preset: str
    filename: str
    size_bytes: int
    def __init__(self, format: _Optional[str] = ..., model_types: _Optional[bytes] = ..., source: _Optional[str] = ..., url: _Optional[str] = ..., scale: _Optional[str] = ..., preset: _Optional[str] = ..., filename: _Optional[str] = ..., size_bytes: _Optional[int] = ...) -> None: ...

class ImportResultsRequest(_message.Message):
    __slots__ = ("header", "chunk")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    header: ImportResultsHeader
    chunk: bytes
    def __init__(self, header: _Optional[_Union[ImportResultsHeader, _Mapping]] = ..., chunk: _Optional[bytes] = ...) -> None: ...

class ImportResultsResponse(_message.Message):
    __slots__ = ("source", "version", "url", "format", "models", "points", "stored", "unchanged", "replaced", "unknown_testsets", "declared_testsets")
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    URL_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    MODELS_FIELD_NUMBER: _ClassVar[int]
    POINTS_FIELD_NUMBER: _ClassVar[int]
    STORED_FIELD_NUMBER: _ClassVar[int]
    UNCHANGED_FIELD_NUMBER: _ClassVar[int]
    REPLACED_FIELD_NUMBER: _ClassVar[int]
    UNKNOWN_TESTSETS_FIELD_NUMBER: _ClassVar[int]
    DECLARED_TESTSETS_FIELD_NUMBER: _ClassVar[int]
    source: str
    version: str
    url: str
    format: str
    models: int
    points: int
    stored: int
    unchanged: int
    replaced: int
    unknown_testsets: _containers.RepeatedScalarFieldContainer[str]
    declared_testsets: int
    def __init__(self, source: _Optional[str] = ..., version: _Optional[str] = ..., url: _Optional[str] = ..., format: _Optional[str] = ..., models: _Optional[int] = ..., points: _Optional[int] = ..., stored: _Optional[int] = ..., unchanged: _Optional[int] = ..., replaced: _Optional[int] = ..., unknown_testsets: _Optional[_Iterable[str]] = ..., declared_testsets: _Optional[int] = ...) -> None: ...

class ListImportedSourcesRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ImportedSource(_message.Message):
    __slots__ = ("source", "version", "url", "format", "models", "points", "imported_at", "created_by")
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    URL_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    MODELS_FIELD_NUMBER: _ClassVar[int]
    POINTS_FIELD_NUMBER: _ClassVar[int]
    IMPORTED_AT_FIELD_NUMBER: _ClassVar[int]
    CREATED_BY_FIELD_NUMBER: _ClassVar[int]
    source: str
    version: str
    url: str
    format: str
    models: int
    points: int
    imported_at: _timestamp_pb2.Timestamp
    created_by: str
    def __init__(self, source: _Optional[str] = ..., version: _Optional[str] = ..., url: _Optional[str] = ..., format: _Optional[str] = ..., models: _Optional[int] = ..., points: _Optional[int] = ..., imported_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., created_by: _Optional[str] = ...) -> None: ...

class ListImportedSourcesResponse(_message.Message):
    __slots__ = ("sources",)
    SOURCES_FIELD_NUMBER: _ClassVar[int]
    sources: _containers.RepeatedCompositeFieldContainer[ImportedSource]
    def __init__(self, sources: _Optional[_Iterable[_Union[ImportedSource, _Mapping]]] = ...) -> None: ...

class GetCalibrationRequest(_message.Message):
    __slots__ = ("testset", "resamples")
    TESTSET_FIELD_NUMBER: _ClassVar[int]
    RESAMPLES_FIELD_NUMBER: _ClassVar[int]
    testset: str
    resamples: int
    def __init__(self, testset: _Optional[str] = ..., resamples: _Optional[int] = ...) -> None: ...

class ReliabilityBin(_message.Message):
    __slots__ = ("confidence", "accuracy", "count")
    CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    ACCURACY_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    confidence: float
    accuracy: float
    count: int
    def __init__(self, confidence: _Optional[float] = ..., accuracy: _Optional[float] = ..., count: _Optional[int] = ...) -> None: ...

class CalibrationRow(_message.Message):
    __slots__ = ("model", "category", "baseline", "samples", "accuracy", "mean_confidence", "ece", "ece_ci", "bins", "has_ref", "ref_samples", "ref_accuracy", "ref_ece", "ref_ece_ci", "ref_bins", "has_trend", "predicted_ece", "ece_beyond_trend", "ece_beyond_trend_ci", "has_ece_beyond_trend_ci")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    CATEGORY_FIELD_NUMBER: _ClassVar[int]
    BASELINE_FIELD_NUMBER: _ClassVar[int]
    SAMPLES_FIELD_NUMBER: _ClassVar[int]
    ACCURACY_FIELD_NUMBER: _ClassVar[int]
    MEAN_CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    ECE_FIELD_NUMBER: _ClassVar[int]
    ECE_CI_FIELD_NUMBER: _ClassVar[int]
    BINS_FIELD_NUMBER: _ClassVar[int]
    HAS_REF_FIELD_NUMBER: _ClassVar[int]
    REF_SAMPLES_FIELD_NUMBER: _ClassVar[int]
    REF_ACCURACY_FIELD_NUMBER: _ClassVar[int]
    REF_ECE_FIELD_NUMBER: _ClassVar[int]
    REF_ECE_CI_FIELD_NUMBER: _ClassVar[int]
    REF_BINS_FIELD_NUMBER: _ClassVar[int]
    HAS_TREND_FIELD_NUMBER: _ClassVar[int]
    PREDICTED_ECE_FIELD_NUMBER: _ClassVar[int]
    ECE_BEYOND_TREND_FIELD_NUMBER: _ClassVar[int]
    ECE_BEYOND_TREND_CI_FIELD_NUMBER: _ClassVar[int]
    HAS_ECE_BEYOND_TREND_CI_FIELD_NUMBER: _ClassVar[int]
    model: str
    category: str
    baseline: bool
    samples: int
    accuracy: float
    mean_confidence: float
    ece: float
    ece_ci: Interval
    bins: _containers.RepeatedCompositeFieldContainer[ReliabilityBin]
    has_ref: bool
    ref_samples: int
    ref_accuracy: float
    ref_ece: float
    ref_ece_ci: Interval
    ref_bins: _containers.RepeatedCompositeFieldContainer[ReliabilityBin]
    has_trend: bool
    predicted_ece: float
    ece_beyond_trend: float
    ece_beyond_trend_ci: Interval
    has_ece_beyond_trend_ci: bool
    def __init__(self, model: _Optional[str] = ..., category: _Optional[str] = ..., baseline: _Optional[bool] = ..., samples: _Optional[int] = ..., accuracy: _Optional[float] = ..., mean_confidence: _Optional[float] = ..., ece: _Optional[float] = ..., ece_ci: _Optional[_Union[Interval, _Mapping]] = ..., bins: _Optional[_Iterable[_Union[ReliabilityBin, _Mapping]]] = ..., has_ref: _Optional[bool] = ..., ref_samples: _Optional[int] = ..., ref_accuracy: _Optional[float] = ..., ref_ece: _Optional[float] = ..., ref_ece_ci: _Optional[_Union[Interval, _Mapping]] = ..., ref_bins: _Optional[_Iterable[_Union[ReliabilityBin, _Mapping]]] = ..., has_trend: _Optional[bool] = ..., predicted_ece: _Optional[float] = ..., ece_beyond_trend: _Optional[float] = ..., ece_beyond_trend_ci: _Optional[_Union[Interval, _Mapping]] = ..., has_ece_beyond_trend_ci: _Optional[bool] = ...) -> None: ...

class CalibrationTrend(_message.Message):
    __slots__ = ("ok", "reason", "n", "slope", "intercept", "r2", "slope_ci", "intercept_ci", "has_ci")
    OK_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    N_FIELD_NUMBER: _ClassVar[int]
    SLOPE_FIELD_NUMBER: _ClassVar[int]
    INTERCEPT_FIELD_NUMBER: _ClassVar[int]
    R2_FIELD_NUMBER: _ClassVar[int]
    SLOPE_CI_FIELD_NUMBER: _ClassVar[int]
    INTERCEPT_CI_FIELD_NUMBER: _ClassVar[int]
    HAS_CI_FIELD_NUMBER: _ClassVar[int]
    ok: bool
    reason: str
    n: int
    slope: float
    intercept: float
    r2: float
    slope_ci: Interval
    intercept_ci: Interval
    has_ci: bool
    def __init__(self, ok: _Optional[bool] = ..., reason: _Optional[str] = ..., n: _Optional[int] = ..., slope: _Optional[float] = ..., intercept: _Optional[float] = ..., r2: _Optional[float] = ..., slope_ci: _Optional[_Union[Interval, _Mapping]] = ..., intercept_ci: _Optional[_Union[Interval, _Mapping]] = ..., has_ci: _Optional[bool] = ...) -> None: ...

class Calibration(_message.Message):
    __slots__ = ("testset", "reference", "bins", "resamples", "rows", "trend", "notes")
    TESTSET_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_FIELD_NUMBER: _ClassVar[int]
    BINS_FIELD_NUMBER: _ClassVar[int]
    RESAMPLES_FIELD_NUMBER: _ClassVar[int]
    ROWS_FIELD_NUMBER: _ClassVar[int]
    TREND_FIELD_NUMBER: _ClassVar[int]
    NOTES_FIELD_NUMBER: _ClassVar[int]
    testset: str
    reference: str
    bins: int
    resamples: int
    rows: _containers.RepeatedCompositeFieldContainer[CalibrationRow]
    trend: CalibrationTrend
    notes: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, testset: _Optional[str] = ..., reference: _Optional[str] = ..., bins: _Optional[int] = ..., resamples: _Optional[int] = ..., rows: _Optional[_Iterable[_Union[CalibrationRow, _Mapping]]] = ..., trend: _Optional[_Union[CalibrationTrend, _Mapping]] = ..., notes: _Optional[_Iterable[str]] = ...) -> None: ...

class GetConsistencyRequest(_message.Message):
    __slots__ = ("model_a", "model_b", "testset", "resamples")
    MODEL_A_FIELD_NUMBER: _ClassVar[int]
    MODEL_B_FIELD_NUMBER: _ClassVar[int]
    TESTSET_FIELD_NUMBER: _ClassVar[int]
    RESAMPLES_FIELD_NUMBER: _ClassVar[int]
    model_a: str
    model_b: str
    testset: str
    resamples: int
    def __init__(self, model_a: _Optional[str] = ..., model_b: _Optional[str] = ..., testset: _Optional[str] = ..., resamples: _Optional[int] = ...) -> None: ...

class Consistency(_message.Message):
    __slots__ = ("model_a", "model_b", "testset", "samples", "acc_a", "acc_b", "observed", "expected", "kappa", "kappa_ci", "note")
    MODEL_A_FIELD_NUMBER: _ClassVar[int]
    MODEL_B_FIELD_NUMBER: _ClassVar[int]
    TESTSET_FIELD_NUMBER: _ClassVar[int]
    SAMPLES_FIELD_NUMBER: _ClassVar[int]
    ACC_A_FIELD_NUMBER: _ClassVar[int]
    ACC_B_FIELD_NUMBER: _ClassVar[int]
    OBSERVED_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_FIELD_NUMBER: _ClassVar[int]
    KAPPA_FIELD_NUMBER: _ClassVar[int]
    KAPPA_CI_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    model_a: str
    model_b: str
    testset: str
    samples: int
    acc_a: float
    acc_b: float
    observed: float
    expected: float
    kappa: float
    kappa_ci: Interval
    note: str
    def __init__(self, model_a: _Optional[str] = ..., model_b: _Optional[str] = ..., testset: _Optional[str] = ..., samples: _Optional[int] = ..., acc_a: _Optional[float] = ..., acc_b: _Optional[float] = ..., observed: _Optional[float] = ..., expected: _Optional[float] = ..., kappa: _Optional[float] = ..., kappa_ci: _Optional[_Union[Interval, _Mapping]] = ..., note: _Optional[str] = ...) -> None: ...

class GetConsistencyMatrixRequest(_message.Message):
    __slots__ = ("testset", "models", "resamples")
    TESTSET_FIELD_NUMBER: _ClassVar[int]
    MODELS_FIELD_NUMBER: _ClassVar[int]
    RESAMPLES_FIELD_NUMBER: _ClassVar[int]
    testset: str
    models: _containers.RepeatedScalarFieldContainer[str]
    resamples: int
    def __init__(self, testset: _Optional[str] = ..., models: _Optional[_Iterable[str]] = ..., resamples: _Optional[int] = ...) -> None: ...

class ConsistencyMatrix(_message.Message):
    __slots__ = ("testset", "samples", "models", "categories", "baseline", "accuracy", "kappa", "unique_solves", "notes", "resamples", "kappa_low", "kappa_high", "unique_solves_low", "unique_solves_high")
    TESTSET_FIELD_NUMBER: _ClassVar[int]
    SAMPLES_FIELD_NUMBER: _ClassVar[int]
    MODELS_FIELD_NUMBER: _ClassVar[int]
    CATEGORIES_FIELD_NUMBER: _ClassVar[int]
    BASELINE_FIELD_NUMBER: _ClassVar[int]
    ACCURACY_FIELD_NUMBER: _ClassVar[int]
    KAPPA_FIELD_NUMBER: _ClassVar[int]
    UNIQUE_SOLVES_FIELD_NUMBER: _ClassVar[int]
    NOTES_FIELD_NUMBER: _ClassVar[int]
    RESAMPLES_FIELD_NUMBER: _ClassVar[int]
    KAPPA_LOW_FIELD_NUMBER: _ClassVar[int]
    KAPPA_HIGH_FIELD_NUMBER: _ClassVar[int]
    UNIQUE_SOLVES_LOW_FIELD_NUMBER: _ClassVar[int]
    UNIQUE_SOLVES_HIGH_FIELD_NUMBER: _ClassVar[int]
    testset: str
    samples: int
    models: _containers.RepeatedScalarFieldContainer[str]
    categories: _containers.RepeatedScalarFieldContainer[str]
    baseline: _containers.RepeatedScalarFieldContainer[bool]
    accuracy: _containers.RepeatedScalarFieldContainer[float]
    kappa: _containers.RepeatedScalarFieldContainer[float]
    unique_solves: _containers.RepeatedScalarFieldContainer[int]
    notes: _containers.RepeatedScalarFieldContainer[str]
    resamples: int
    kappa_low: _containers.RepeatedScalarFieldContainer[float]
    kappa_high: _containers.RepeatedScalarFieldContainer[float]
    unique_solves_low: _containers.RepeatedScalarFieldContainer[float]
    unique_solves_high: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, testset: _Optional[str] = ..., samples: _Optional[int] = ..., models: _Optional[_Iterable[str]] = ..., categories: _Optional[_Iterable[str]] = ..., baseline: _Optional[_Iterable[bool]] = ..., accuracy: _Optional[_Iterable[float]] = ..., kappa: _Optional[_Iterable[float]] = ..., unique_solves: _Optional[_Iterable[int]] = ..., notes: _Optional[_Iterable[str]] = ..., resamples: _Optional[int] = ..., kappa_low: _Optional[_Iterable[float]] = ..., kappa_high: _Optional[_Iterable[float]] = ..., unique_solves_low: _Optional[_Iterable[float]] = ..., unique_solves_high: _Optional[_Iterable[float]] = ...) -> None: ...
