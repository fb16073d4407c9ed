import datetime
from collections.abc import Iterable as _Iterable
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar

from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper

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
    def __init__(self, channels: int | None = ..., height: int | None = ..., width: int | None = ..., value_min: float | None = ..., value_max: float | None = ..., mean: _Iterable[float] | None = ..., std: _Iterable[float] | None = ...) -> None: ...

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
    def __init__(self, name: str | None = ..., version: str | None = ..., format: ModelFormat | str | None = ..., input: InputSpec | _Mapping | None = ..., num_classes: int | None = ..., category: ModelCategory | str | None = ..., description: str | None = ..., tags: _Iterable[str] | None = ...) -> None: ...

class SubmitModelRequest(_message.Message):
    __slots__ = ("metadata", "chunk")
    METADATA_FIELD_NUMBER: _ClassVar[int]
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    metadata: ModelMetadata
    chunk: bytes
    def __init__(self, metadata: ModelMetadata | _Mapping | None = ..., chunk: bytes | None = ...) -> None: ...

class Model(_message.Message):
    __slots__ = ("metadata", "size_bytes", "sha256", "artifact_uri", "created_at", "created_by", "deployment")
    METADATA_FIELD_NUMBER: _ClassVar[int]
    SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    ARTIFACT_URI_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    CREATED_BY_FIELD_NUMBER: _ClassVar[int]
    DEPLOYMENT_FIELD_NUMBER: _ClassVar[int]
    metadata: ModelMetadata
    size_bytes: int
    sha256: str
    artifact_uri: str
    created_at: _timestamp_pb2.Timestamp
    created_by: str
    deployment: Deployment
    def __init__(self, metadata: ModelMetadata | _Mapping | None = ..., size_bytes: int | None = ..., sha256: str | None = ..., artifact_uri: str | None = ..., created_at: datetime.datetime | _timestamp_pb2.Timestamp | _Mapping | None = ..., created_by: str | None = ..., deployment: Deployment | _Mapping | None = ...) -> None: ...

class Deployment(_message.Message):
    __slots__ = ("triton_name", "state", "reason")
    TRITON_NAME_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    triton_name: str
    state: str
    reason: str
    def __init__(self, triton_name: str | None = ..., state: str | None = ..., reason: str | None = ...) -> None: ...

class GetModelRequest(_message.Message):
    __slots__ = ("name", "version")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: str
    def __init__(self, name: str | None = ..., version: str | None = ...) -> None: ...

class ListModelsRequest(_message.Message):
    __slots__ = ("category",)
    CATEGORY_FIELD_NUMBER: _ClassVar[int]
    category: ModelCategory
    def __init__(self, category: ModelCategory | str | None = ...) -> None: ...

class ListModelsResponse(_message.Message):
    __slots__ = ("models",)
    MODELS_FIELD_NUMBER: _ClassVar[int]
    models: _containers.RepeatedCompositeFieldContainer[Model]
    def __init__(self, models: _Iterable[Model | _Mapping] | None = ...) -> None: ...

class DeleteModelRequest(_message.Message):
    __slots__ = ("name", "version")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: str
    def __init__(self, name: str | None = ..., version: str | None = ...) -> None: ...

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
    def __init__(self, index: int | None = ..., first_sample: int | None = ..., num_samples: int | None = ..., size_bytes: int | None = ..., sha256: str | None = ..., key: str | None = ...) -> None: ...

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
    def __init__(self, name: str | None = ..., kind: TestSetKind | str | None = ..., reference: str | None = ..., group: str | None = ..., num_classes: int | None = ..., class_subset: _Iterable[int] | None = ..., channels: int | None = ..., height: int | None = ..., width: int | None = ..., num_samples: int | None = ..., shards: _Iterable[Shard | _Mapping] | None = ..., description: str | None = ..., class_names: _Iterable[str] | None = ...) -> None: ...

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
    def __init__(self, spec: TestSetSpec | _Mapping | None = ..., size_bytes: int | None = ..., created_at: datetime.datetime | _timestamp_pb2.Timestamp | _Mapping | None = ..., created_by: str | None = ...) -> None: ...

class CreateTestSetUploadRequest(_message.Message):
    __slots__ = ("name", "num_shards")
    NAME_FIELD_NUMBER: _ClassVar[int]
    NUM_SHARDS_FIELD_NUMBER: _ClassVar[int]
    name: str
    num_shards: int
    def __init__(self, name: str | None = ..., num_shards: int | None = ...) -> None: ...

class ShardUpload(_message.Message):
    __slots__ = ("index", "url")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    URL_FIELD_NUMBER: _ClassVar[int]
    index: int
    url: str
    def __init__(self, index: int | None = ..., url: str | None = ...) -> None: ...

class TestSetUpload(_message.Message):
    __slots__ = ("upload_id", "shards", "expires_at")
    UPLOAD_ID_FIELD_NUMBER: _ClassVar[int]
    SHARDS_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    upload_id: str
    shards: _containers.RepeatedCompositeFieldContainer[ShardUpload]
    expires_at: _timestamp_pb2.Timestamp
    def __init__(self, upload_id: str | None = ..., shards: _Iterable[ShardUpload | _Mapping] | None = ..., expires_at: datetime.datetime | _timestamp_pb2.Timestamp | _Mapping | None = ...) -> None: ...

class RegisterTestSetRequest(_message.Message):
    __slots__ = ("upload_id", "spec")
    UPLOAD_ID_FIELD_NUMBER: _ClassVar[int]
    SPEC_FIELD_NUMBER: _ClassVar[int]
    upload_id: str
    spec: TestSetSpec
    def __init__(self, upload_id: str | None = ..., spec: TestSetSpec | _Mapping | None = ...) -> None: ...

class GetTestSetRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: str | None = ...) -> None: ...

class GetSamplesRequest(_message.Message):
    __slots__ = ("testset", "samples")
    TESTSET_FIELD_NUMBER: _ClassVar[int]
    SAMPLES_FIELD_NUMBER: _ClassVar[int]
    testset: str
    samples: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, testset: str | None = ..., samples: _Iterable[int] | None = ...) -> None: ...

class Sample(_message.Message):
    __slots__ = ("sample", "label", "image")
    SAMPLE_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    sample: int
    label: int
    image: bytes
    def __init__(self, sample: int | None = ..., label: int | None = ..., image: bytes | None = ...) -> None: ...

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
    def __init__(self, channels: int | None = ..., height: int | None = ..., width: int | None = ..., samples: _Iterable[Sample | _Mapping] | None = ...) -> None: ...

class ListTestSetsRequest(_message.Message):
    __slots__ = ("kind", "group")
    KIND_FIELD_NUMBER: _ClassVar[int]
    GROUP_FIELD_NUMBER: _ClassVar[int]
    kind: TestSetKind
    group: str
    def __init__(self, kind: TestSetKind | str | None = ..., group: str | None = ...) -> None: ...

class ListTestSetsResponse(_message.Message):
    __slots__ = ("test_sets",)
    TEST_SETS_FIELD_NUMBER: _ClassVar[int]
    test_sets: _containers.RepeatedCompositeFieldContainer[TestSet]
    def __init__(self, test_sets: _Iterable[TestSet | _Mapping] | None = ...) -> None: ...

class CreateTokenRequest(_message.Message):
    __slots__ = ("name", "admin")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ADMIN_FIELD_NUMBER: _ClassVar[int]
    name: str
    admin: bool
    def __init__(self, name: str | None = ..., admin: bool | None = ...) -> None: ...

class CreateTokenResponse(_message.Message):
    __slots__ = ("name", "token")
    NAME_FIELD_NUMBER: _ClassVar[int]
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    name: str
    token: str
    def __init__(self, name: str | None = ..., token: str | None = ...) -> None: ...

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
    def __init__(self, version: str | None = ..., bucket: str | None = ..., s3_endpoint: str | None = ..., triton_url: str | None = ..., prefect_api_url: str | None = ..., leaderboard_url: str | None = ..., open_reads: bool | None = ..., catalog_schema_version: int | None = ...) -> None: ...

class EvaluationKey(_message.Message):
    __slots__ = ("model", "version", "testset")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    TESTSET_FIELD_NUMBER: _ClassVar[int]
    model: str
    version: str
    testset: str
    def __init__(self, model: str | None = ..., version: str | None = ..., testset: str | None = ...) -> None: ...

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
    def __init__(self, key: EvaluationKey | _Mapping | None = ..., status: EvaluationStatus | str | None = ..., shards_done: int | None = ..., shards_total: int | None = ..., samples_done: int | None = ..., samples_total: int | None = ..., samples_per_second: float | None = ..., error: str | None = ..., flow_run_id: str | None = ..., created_at: datetime.datetime | _timestamp_pb2.Timestamp | _Mapping | None = ..., updated_at: datetime.datetime | _timestamp_pb2.Timestamp | _Mapping | None = ..., attempts: int | None = ...) -> None: ...

class ListEvaluationsRequest(_message.Message):
    __slots__ = ("model", "testset", "status")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    TESTSET_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    model: str
    testset: str
    status: EvaluationStatus
    def __init__(self, model: str | None = ..., testset: str | None = ..., status: EvaluationStatus | str | None = ...) -> None: ...

class ListEvaluationsResponse(_message.Message):
    __slots__ = ("evaluations",)
    EVALUATIONS_FIELD_NUMBER: _ClassVar[int]
    evaluations: _containers.RepeatedCompositeFieldContainer[Evaluation]
    def __init__(self, evaluations: _Iterable[Evaluation | _Mapping] | None = ...) -> None: ...

class RequestEvaluationsRequest(_message.Message):
    __slots__ = ("keys", "rerun")
    KEYS_FIELD_NUMBER: _ClassVar[int]
    RERUN_FIELD_NUMBER: _ClassVar[int]
    keys: _containers.RepeatedCompositeFieldContainer[EvaluationKey]
    rerun: bool
    def __init__(self, keys: _Iterable[EvaluationKey | _Mapping] | None = ..., rerun: bool | None = ...) -> None: ...

class RequestEvaluationsResponse(_message.Message):
    __slots__ = ("evaluations",)
    EVALUATIONS_FIELD_NUMBER: _ClassVar[int]
    evaluations: _containers.RepeatedCompositeFieldContainer[Evaluation]
    def __init__(self, evaluations: _Iterable[Evaluation | _Mapping] | None = ...) -> None: ...

class StartEvaluationRequest(_message.Message):
    __slots__ = ("key", "flow_run_id")
    KEY_FIELD_NUMBER: _ClassVar[int]
    FLOW_RUN_ID_FIELD_NUMBER: _ClassVar[int]
    key: EvaluationKey
    flow_run_id: str
    def __init__(self, key: EvaluationKey | _Mapping | None = ..., flow_run_id: str | None = ...) -> None: ...

class EvaluationPlan(_message.Message):
    __slots__ = ("evaluation", "model", "testset", "pending_shards")
    EVALUATION_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    TESTSET_FIELD_NUMBER: _ClassVar[int]
    PENDING_SHARDS_FIELD_NUMBER: _ClassVar[int]
    evaluation: Evaluation
    model: Model
    testset: TestSet
    pending_shards: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, evaluation: Evaluation | _Mapping | None = ..., model: Model | _Mapping | None = ..., testset: TestSet | _Mapping | None = ..., pending_shards: _Iterable[int] | None = ...) -> None: ...

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
    def __init__(self, sample: _Iterable[int] | None = ..., label: _Iterable[int] | None = ..., top1: _Iterable[int] | None = ..., top5: _Iterable[int] | None = ..., confidence: _Iterable[float] | None = ..., correct: _Iterable[bool] | None = ...) -> None: ...

class CommitShardRequest(_message.Message):
    __slots__ = ("key", "shard_index", "predictions", "seconds")
    KEY_FIELD_NUMBER: _ClassVar[int]
    SHARD_INDEX_FIELD_NUMBER: _ClassVar[int]
    PREDICTIONS_FIELD_NUMBER: _ClassVar[int]
    SECONDS_FIELD_NUMBER: _ClassVar[int]
    key: EvaluationKey
    shard_index: int
    predictions: Predictions
    seconds: float
    def __init__(self, key: EvaluationKey | _Mapping | None = ..., shard_index: int | None = ..., predictions: Predictions | _Mapping | None = ..., seconds: float | None = ...) -> None: ...

class FinishEvaluationRequest(_message.Message):
    __slots__ = ("key", "failed", "error")
    KEY_FIELD_NUMBER: _ClassVar[int]
    FAILED_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    key: EvaluationKey
    failed: bool
    error: str
    def __init__(self, key: EvaluationKey | _Mapping | None = ..., failed: bool | None = ..., error: str | None = ...) -> None: ...

class GetAccuracyRequest(_message.Message):
    __slots__ = ("model", "testset")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    TESTSET_FIELD_NUMBER: _ClassVar[int]
    model: str
    testset: str
    def __init__(self, model: str | None = ..., testset: str | None = ...) -> None: ...

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
    def __init__(self, key: EvaluationKey | _Mapping | None = ..., samples: int | None = ..., correct: int | None = ..., accuracy: float | None = ..., ci_low: float | None = ..., ci_high: float | None = ...) -> None: ...

class GetAccuracyResponse(_message.Message):
    __slots__ = ("accuracies",)
    ACCURACIES_FIELD_NUMBER: _ClassVar[int]
    accuracies: _containers.RepeatedCompositeFieldContainer[Accuracy]
    def __init__(self, accuracies: _Iterable[Accuracy | _Mapping] | None = ...) -> None: ...

class GetLeaderboardRequest(_message.Message):
    __slots__ = ("shift", "group", "transform", "resamples")
    SHIFT_FIELD_NUMBER: _ClassVar[int]
    GROUP_FIELD_NUMBER: _ClassVar[int]
    TRANSFORM_FIELD_NUMBER: _ClassVar[int]
    RESAMPLES_FIELD_NUMBER: _ClassVar[int]
    shift: str
    group: str
    transform: str
    resamples: int
    def __init__(self, shift: str | None = ..., group: str | None = ..., transform: str | None = ..., resamples: int | None = ...) -> None: ...

class Interval(_message.Message):
    __slots__ = ("low", "high")
    LOW_FIELD_NUMBER: _ClassVar[int]
    HIGH_FIELD_NUMBER: _ClassVar[int]
    low: float
    high: float
    def __init__(self, low: float | None = ..., high: float | None = ...) -> None: ...

class LeaderboardRow(_message.Message):
    __slots__ = ("model", "category", "baseline", "ref_acc", "ref_ci", "n_ref", "shift_acc", "shift_ci", "n_shift", "has_er", "predicted_shift_acc", "er", "er_ci", "has_er_ci", "tied", "rank", "clipped", "tags")
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
    def __init__(self, model: str | None = ..., category: str | None = ..., baseline: bool | None = ..., ref_acc: float | None = ..., ref_ci: Interval | _Mapping | None = ..., n_ref: int | None = ..., shift_acc: float | None = ..., shift_ci: Interval | _Mapping | None = ..., n_shift: int | None = ..., has_er: bool | None = ..., predicted_shift_acc: float | None = ..., er: float | None = ..., er_ci: Interval | _Mapping | None = ..., has_er_ci: bool | None = ..., tied: bool | None = ..., rank: int | None = ..., clipped: bool | None = ..., tags: _Iterable[str] | None = ...) -> None: ...

class BaselineFit(_message.Message):
    __slots__ = ("ok", "reason", "transform", "n", "slope", "intercept", "r2", "slope_ci", "intercept_ci", "grid", "predicted", "band_low", "band_high", "clipped")
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
    def __init__(self, ok: bool | None = ..., reason: str | None = ..., transform: str | None = ..., n: int | None = ..., slope: float | None = ..., intercept: float | None = ..., r2: float | None = ..., slope_ci: Interval | _Mapping | None = ..., intercept_ci: Interval | _Mapping | None = ..., grid: _Iterable[float] | None = ..., predicted: _Iterable[float] | None = ..., band_low: _Iterable[float] | None = ..., band_high: _Iterable[float] | None = ..., clipped: _Iterable[str] | None = ...) -> None: ...

class GroupRow(_message.Message):
    __slots__ = ("model", "category", "shifts", "of", "mean_ref_acc", "mean_shift_acc", "er_shifts", "has_er", "mean_er")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    CATEGORY_FIELD_NUMBER: _ClassVar[int]
    SHIFTS_FIELD_NUMBER: _ClassVar[int]
    OF_FIELD_NUMBER: _ClassVar[int]
    MEAN_REF_ACC_FIELD_NUMBER: _ClassVar[int]
    MEAN_SHIFT_ACC_FIELD_NUMBER: _ClassVar[int]
    ER_SHIFTS_FIELD_NUMBER: _ClassVar[int]
    HAS_ER_FIELD_NUMBER: _ClassVar[int]
    MEAN_ER_FIELD_NUMBER: _ClassVar[int]
    model: str
    category: str
    shifts: int
    of: int
    mean_ref_acc: float
    mean_shift_acc: float
    er_shifts: int
    has_er: bool
    mean_er: float
    def __init__(self, model: str | None = ..., category: str | None = ..., shifts: int | None = ..., of: int | None = ..., mean_ref_acc: float | None = ..., mean_shift_acc: float | None = ..., er_shifts: int | None = ..., has_er: bool | None = ..., mean_er: float | None = ...) -> None: ...

class Leaderboard(_message.Message):
    __slots__ = ("shift", "reference", "group", "rows", "fit", "notes", "er_mode", "group_rows", "shifts", "class_subset")
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
    def __init__(self, shift: str | None = ..., reference: str | None = ..., group: str | None = ..., rows: _Iterable[LeaderboardRow | _Mapping] | None = ..., fit: BaselineFit | _Mapping | None = ..., notes: _Iterable[str] | None = ..., er_mode: str | None = ..., group_rows: _Iterable[GroupRow | _Mapping] | None = ..., shifts: _Iterable[Leaderboard | _Mapping] | None = ..., class_subset: _Iterable[int] | None = ...) -> None: ...

class CompareModelsRequest(_message.Message):
    __slots__ = ("model_a", "model_b", "testset")
    MODEL_A_FIELD_NUMBER: _ClassVar[int]
    MODEL_B_FIELD_NUMBER: _ClassVar[int]
    TESTSET_FIELD_NUMBER: _ClassVar[int]
    model_a: str
    model_b: str
    testset: str
    def __init__(self, model_a: str | None = ..., model_b: str | None = ..., testset: str | None = ...) -> None: ...

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
    def __init__(self, model_a: str | None = ..., model_b: str | None = ..., testset: str | None = ..., samples: int | None = ..., acc_a: float | None = ..., acc_b: float | None = ..., only_a_correct: int | None = ..., only_b_correct: int | None = ..., statistic: float | None = ..., p_value: float | None = ..., method: str | None = ...) -> None: ...
