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

class ModelCategory(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    MODEL_CATEGORY_UNSPECIFIED: _ClassVar[ModelCategory]
    MODEL_CATEGORY_STANDARD: _ClassVar[ModelCategory]
    MODEL_CATEGORY_ROBUSTNESS_INTERVENTION: _ClassVar[ModelCategory]
    MODEL_CATEGORY_MORE_DATA: _ClassVar[ModelCategory]
    MODEL_CATEGORY_ZERO_SHOT: _ClassVar[ModelCategory]
    MODEL_CATEGORY_OTHER: _ClassVar[ModelCategory]

class TestSetKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TEST_SET_KIND_UNSPECIFIED: _ClassVar[TestSetKind]
    TEST_SET_KIND_REFERENCE: _ClassVar[TestSetKind]
    TEST_SET_KIND_NATURAL: _ClassVar[TestSetKind]
    TEST_SET_KIND_SYNTHETIC: _ClassVar[TestSetKind]
    TEST_SET_KIND_ADVERSARIAL: _ClassVar[TestSetKind]
MODEL_FORMAT_UNSPECIFIED: ModelFormat
MODEL_FORMAT_TORCHSCRIPT: ModelFormat
MODEL_FORMAT_ONNX: ModelFormat
MODEL_CATEGORY_UNSPECIFIED: ModelCategory
MODEL_CATEGORY_STANDARD: ModelCategory
MODEL_CATEGORY_ROBUSTNESS_INTERVENTION: ModelCategory
MODEL_CATEGORY_MORE_DATA: ModelCategory
MODEL_CATEGORY_ZERO_SHOT: ModelCategory
MODEL_CATEGORY_OTHER: ModelCategory
TEST_SET_KIND_UNSPECIFIED: TestSetKind
TEST_SET_KIND_REFERENCE: TestSetKind
TEST_SET_KIND_NATURAL: TestSetKind
TEST_SET_KIND_SYNTHETIC: TestSetKind
TEST_SET_KIND_ADVERSARIAL: TestSetKind

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
    __slots__ = ("metadata", "size_bytes", "sha256", "artifact_uri", "created_at", "created_by")
    METADATA_FIELD_NUMBER: _ClassVar[int]
    SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    ARTIFACT_URI_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    CREATED_BY_FIELD_NUMBER: _ClassVar[int]
    metadata: ModelMetadata
    size_bytes: int
    sha256: str
    artifact_uri: str
    created_at: _timestamp_pb2.Timestamp
    created_by: str
    def __init__(self, metadata: _Optional[_Union[ModelMetadata, _Mapping]] = ..., size_bytes: _Optional[int] = ..., sha256: _Optional[str] = ..., artifact_uri: _Optional[str] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., created_by: _Optional[str] = ...) -> None: ...

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
    __slots__ = ("name", "kind", "reference", "group", "num_classes", "class_subset", "channels", "height", "width", "num_samples", "shards", "description", "class_names")
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
    def __init__(self, name: _Optional[str] = ..., kind: _Optional[_Union[TestSetKind, str]] = ..., reference: _Optional[str] = ..., group: _Optional[str] = ..., num_classes: _Optional[int] = ..., class_subset: _Optional[_Iterable[int]] = ..., channels: _Optional[int] = ..., height: _Optional[int] = ..., width: _Optional[int] = ..., num_samples: _Optional[int] = ..., shards: _Optional[_Iterable[_Union[Shard, _Mapping]]] = ..., description: _Optional[str] = ..., class_names: _Optional[_Iterable[str]] = ...) -> None: ...

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
    __slots__ = ("name", "num_shards")
    NAME_FIELD_NUMBER: _ClassVar[int]
    NUM_SHARDS_FIELD_NUMBER: _ClassVar[int]
    name: str
    num_shards: int
    def __init__(self, name: _Optional[str] = ..., num_shards: _Optional[int] = ...) -> None: ...

class ShardUpload(_message.Message):
    __slots__ = ("index", "url")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    URL_FIELD_NUMBER: _ClassVar[int]
    index: int
    url: str
    def __init__(self, index: _Optional[int] = ..., url: _Optional[str] = ...) -> None: ...

class TestSetUpload(_message.Message):
    __slots__ = ("upload_id", "shards", "expires_at")
    UPLOAD_ID_FIELD_NUMBER: _ClassVar[int]
    SHARDS_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    upload_id: str
    shards: _containers.RepeatedCompositeFieldContainer[ShardUpload]
    expires_at: _timestamp_pb2.Timestamp
    def __init__(self, upload_id: _Optional[str] = ..., shards: _Optional[_Iterable[_Union[ShardUpload, _Mapping]]] = ..., expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class RegisterTestSetRequest(_message.Message):
    __slots__ = ("upload_id", "spec")
    UPLOAD_ID_FIELD_NUMBER: _ClassVar[int]
    SPEC_FIELD_NUMBER: _ClassVar[int]
    upload_id: str
    spec: TestSetSpec
    def __init__(self, upload_id: _Optional[str] = ..., spec: _Optional[_Union[TestSetSpec, _Mapping]] = ...) -> None: ...

class GetTestSetRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

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
    __slots__ = ("name", "admin")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ADMIN_FIELD_NUMBER: _ClassVar[int]
    name: str
    admin: bool
    def __init__(self, name: _Optional[str] = ..., admin: _Optional[bool] = ...) -> None: ...

class CreateTokenResponse(_message.Message):
    __slots__ = ("name", "token")
    NAME_FIELD_NUMBER: _ClassVar[int]
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    name: str
    token: str
    def __init__(self, name: _Optional[str] = ..., token: _Optional[str] = ...) -> None: ...

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
