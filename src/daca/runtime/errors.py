"""Errors the runtime raises, under one root; each HTTP one is a wire identity of daprd's.

    SidecarError
    ├── ComponentError                  a component could not be loaded or started (start-up only)
    ├── StoreError                      a state or pub/sub backend failed
    │   ├── ETagMismatchError           the ETag did not match, or first-write found the key
    │   └── ETagInvalidError            the ETag is not in the backend's format
    └── DaprError                       answered as {"errorCode", "message"[, "details"]}
        ├── MalformedRequest            400 ERR_MALFORMED_REQUEST
        ├── BodyReadFailed              400 ERR_BODY_READ
        ├── StateStoreNotFound          400 ERR_STATE_STORE_NOT_FOUND
        ├── StateStoreNotConfigured     500 ERR_STATE_STORE_NOT_CONFIGURED
        ├── StateGetFailed              500 ERR_STATE_GET
        ├── StateBulkGetFailed          500 ERR_STATE_BULK_GET
        ├── StateSaveFailed             500 ERR_STATE_SAVE
        │   ├── StateSaveConflict       409 ERR_STATE_SAVE
        │   └── StateSaveETagInvalid    400 ERR_STATE_SAVE
        ├── StateDeleteFailed           500 ERR_STATE_DELETE
        │   ├── StateDeleteConflict     409 ERR_STATE_DELETE
        │   └── StateDeleteETagInvalid  400 ERR_STATE_DELETE
        ├── StateOperationNotSupported  400 ERR_NOT_SUPPORTED_STATE_OPERATION
        ├── StateTransactionFailed      500 ERR_STATE_TRANSACTION
        ├── OutboxPublishFailed         500 ERR_PUBLISH_OUTBOX
        ├── PubsubEmpty                 404 ERR_PUBSUB_EMPTY
        ├── PubsubNotFound              404 ERR_PUBSUB_NOT_FOUND
        ├── TopicNameEmpty              404 ERR_TOPIC_NAME_EMPTY
        ├── PubsubRequestMetadata       400 ERR_PUBSUB_REQUEST_METADATA
        ├── PubsubEventsSer             400 ERR_PUBSUB_EVENTS_SER
        ├── PubsubCloudEventsSer        500 ERR_PUBSUB_CLOUD_EVENTS_SER
        ├── PubsubPublishFailed         500 ERR_PUBSUB_PUBLISH_MESSAGE
        ├── DirectInvokeFailed          500 ERR_DIRECT_INVOKE
        │   └── DirectInvokeNoAppId     404 ERR_DIRECT_INVOKE
        ├── HealthNotReady              500 ERR_HEALTH_NOT_READY
        └── HealthAppIdNotMatch         500 ERR_HEALTH_APPID_NOT_MATCH

A :class:`DaprError` subclass carries its status and code as class attributes and is raised with
its message (and daprd's ``google.rpc`` details, where daprd gives them); one renderer answers
them all (:func:`daca.runtime.api.common.error_response`). Backends raise :class:`StoreError`
without HTTP details, because its wire identity depends on the operation (a mismatch is 409 on
save and delete, 500 ERR_STATE_TRANSACTION in a transaction): the HTTP layer decides it, in one
place (:func:`daca.runtime.api.stateerrors.store_failure`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar


class SidecarError(Exception):
    """Anything the runtime raises on purpose."""


class ComponentError(SidecarError):
    """A resource file, component or field is wrong, or a backend is unreachable at start-up.

    The message names the file, the component and the field, so start-up can stop with it.
    """


class StoreError(SidecarError):
    """A state or pub/sub backend failed."""


class ETagMismatchError(StoreError):
    """The given ETag does not match the stored one (or first-write found an existing key)."""


class ETagInvalidError(StoreError):
    """The given ETag is not valid for this backend (e.g. not an integer on Redis)."""


class DaprError(SidecarError):
    """An error answered with ``status`` as ``{"errorCode": error_code, "message": message}``.

    ``details`` are the ``google.rpc`` detail objects daprd adds to some errors (rendered as a
    ``details`` array when present).
    """

    status: ClassVar[int]
    error_code: ClassVar[str]

    def __init__(self, message: str, *, details: Sequence[Mapping[str, Any]] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.details = list(details)


class MalformedRequest(DaprError):
    status = 400
    error_code = "ERR_MALFORMED_REQUEST"


class BodyReadFailed(DaprError):
    status = 400
    error_code = "ERR_BODY_READ"


class StateStoreNotFound(DaprError):
    status = 400
    error_code = "ERR_STATE_STORE_NOT_FOUND"


class StateStoreNotConfigured(DaprError):
    status = 500
    error_code = "ERR_STATE_STORE_NOT_CONFIGURED"


class StateGetFailed(DaprError):
    status = 500
    error_code = "ERR_STATE_GET"


class StateBulkGetFailed(DaprError):
    status = 500
    error_code = "ERR_STATE_BULK_GET"


class StateSaveFailed(DaprError):
    status = 500
    error_code = "ERR_STATE_SAVE"


class StateSaveConflict(StateSaveFailed):
    status = 409


class StateSaveETagInvalid(StateSaveFailed):
    status = 400


class StateDeleteFailed(DaprError):
    status = 500
    error_code = "ERR_STATE_DELETE"


class StateDeleteConflict(StateDeleteFailed):
    status = 409


class StateDeleteETagInvalid(StateDeleteFailed):
    status = 400


class StateOperationNotSupported(DaprError):
    status = 400
    error_code = "ERR_NOT_SUPPORTED_STATE_OPERATION"


class StateTransactionFailed(DaprError):
    status = 500
    error_code = "ERR_STATE_TRANSACTION"


class OutboxPublishFailed(DaprError):
    status = 500
    error_code = "ERR_PUBLISH_OUTBOX"


class PubsubEmpty(DaprError):
    status = 404
    error_code = "ERR_PUBSUB_EMPTY"


class PubsubNotFound(DaprError):
    status = 404
    error_code = "ERR_PUBSUB_NOT_FOUND"


class TopicNameEmpty(DaprError):
    status = 404
    error_code = "ERR_TOPIC_NAME_EMPTY"


class PubsubRequestMetadata(DaprError):
    status = 400
    error_code = "ERR_PUBSUB_REQUEST_METADATA"


class PubsubEventsSer(DaprError):
    status = 400
    error_code = "ERR_PUBSUB_EVENTS_SER"


class PubsubCloudEventsSer(DaprError):
    status = 500
    error_code = "ERR_PUBSUB_CLOUD_EVENTS_SER"


class PubsubPublishFailed(DaprError):
    status = 500
    error_code = "ERR_PUBSUB_PUBLISH_MESSAGE"


class DirectInvokeFailed(DaprError):
    status = 500
    error_code = "ERR_DIRECT_INVOKE"


class DirectInvokeNoAppId(DirectInvokeFailed):
    status = 404


class HealthNotReady(DaprError):
    status = 500
    error_code = "ERR_HEALTH_NOT_READY"


class HealthAppIdNotMatch(DaprError):
    status = 500
    error_code = "ERR_HEALTH_APPID_NOT_MATCH"
