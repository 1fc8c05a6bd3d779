"""The closed params schemas of sessions.* (``methods/sessions.py``), with the fields the
reference accepts and we take no part in listed as ``accepted``."""

from __future__ import annotations

from openclaw_tw.protocol.schema import AnyValue, Arr, Bool, Int, Nullable, OneOf, Str, closed

_S1 = Str(min_len=1)
DEFAULT_LIMIT = 100
MAX_CANDIDATES = 100  # sessions.resolve: rows listed when a session id or label is ambiguous
LIST = closed(optional={
    "limit": Int(minimum=1), "offset": Int(minimum=0),
    "activeMinutes": Int(minimum=1), "label": Str(max_len=512), "agentId": Str(),
    "search": Str(),
    "archived": OneOf(Bool(), Str(enum=["all"])), "includeGlobal": Bool(),
    "includeUnknown": Bool(), "includeLastMessage": Bool(), "includeDerivedTitles": Bool(),
    "sortBy": Str(enum=["updatedAt", "lastInteractionAt", "activity"]), "pinned": Bool()},
    accepted="activeOnly requireLastInteraction excludeSubagents excludeCron excludeSystem "
             "configuredAgentsOnly includeActivitySummary projectId workspaceDir group "
             "boardFace hasBoard creatorId ownerId ownerFirst involvingMe profileRelation "
             "involvingProfileId includePeople spawnedBy")
DESCRIBE = closed({"key": _S1}, {"agentId": _S1, "includeDerivedTitles": Bool(),
                                 "includeLastMessage": Bool()})
# The real gateway does not validate sessions.get's params: key (or sessionKey), agentId, limit.
GET = closed(optional={"key": Str(), "sessionKey": Str(), "agentId": Str(),
                       "limit": Int(minimum=1)})
GET_DEFAULT_LIMIT = 200
PREVIEW = closed({"keys": Arr(Str())}, {"limit": Int(minimum=1, maximum=50),
                                        "maxChars": Int(minimum=20)})
RESOLVE = closed(optional={"key": Str(), "sessionId": Str(), "label": Str(),
                           "agentId": Str(), "allowMissing": Bool()},
                 accepted="reference shortId slugHint spawnedBy includeGlobal includeUnknown")
_NS = Nullable(Str())
PATCH = closed({"key": _S1}, {
    "agentId": Str(), "label": Nullable(Str(max_len=512)), "archived": Nullable(Bool()), "pinned": Nullable(Bool()),
    "unread": Nullable(Bool()), "model": _NS, "thinkingLevel": _NS,
    "fastMode": Nullable(AnyValue()), "category": Nullable(Str(min_len=1, max_len=512)),
    "expectedSessionId": Str()},
    accepted="expectedLifecycleRevision expectedPermissionMode expectedSandboxMode "
             "expectedNativeRuntimeConsent expectedToolOverrides expectedMarkedUnreadAt "
             "autoLabel icon color boardFace boardPresentation statusNote attention ttlMinutes "
             "contextWindow toolOverrides verboseLevel traceLevel reasoningLevel responseUsage "
             "elevatedLevel execHost execSecurity execAsk execNode permissionMode sandboxMode "
             "nativeRuntimeConsent agentRuntime completionOwnerSessionKey "
             "inheritedToolPolicyVersion inheritedToolAllow inheritedToolDeny sendPolicy "
             "groupActivation")
RESET = closed({"key": _S1}, {"agentId": Str(), "reason": Str(enum=["new", "reset"]),
                              "expectedSessionId": Str()})
DELETE = closed({"key": _S1}, {"agentId": Str(), "deleteTranscript": Bool(),
                               "expectedSessionId": Str(), "archivedOnly": Bool()},
                "expectedLifecycleRevision expectedSessionUpdatedAt emitLifecycleHooks")
COMPACT = closed({"key": _S1}, {"agentId": Str(), "maxLines": Int(minimum=1)})
CREATE = closed(optional={"key": Str(), "agentId": Str(), "label": Str(max_len=512),
                          "model": Str(),
                          "message": Str(), "idempotencyKey": Str()},
                accepted="displayName titleSource category agentRuntime contextWindow "
                         "thinkingLevel fastMode permissionMode toolOverrides incognito "
                         "visibility catalogId parentSessionKey spawnDepth fork forkFrom "
                         "emitCommandHooks succeedsParent timeoutMs task mentions attachments "
                         "projectId projectGitUrl repository worktree worktreeSource "
                         "worktreeBaseRef worktreeName execNode cwd")
SEND = closed({"key": _S1, "message": Str()}, {"agentId": Str(), "idempotencyKey": Str(),
                                               "timeoutMs": Int(minimum=0)},
              "mentions thinking attachments")
ABORT = closed(optional={"key": Str(), "runId": Str(), "agentId": Str(),
                         "clearQueued": Bool()})
# sessions.subscribe with params is sessions.list plus the subscription: the same typed
# schema (accepting them untyped let {"activeMinutes": "<20 KB>"} reach the arithmetic).
SUBSCRIBE = LIST
