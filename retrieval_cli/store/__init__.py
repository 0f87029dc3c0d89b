"""The artifact store: versioned, checksummed, atomically written outputs of every command, and
the workspace cache beside them. Nothing here imports a stage above it."""

from retrieval_cli.store.artifact import KINDS, Artifact, BuildResult, check_name, files_fingerprint, sha256_file, software_versions
from retrieval_cli.store.atomic import atomic_write_text
from retrieval_cli.store.build import NeedsBuild
from retrieval_cli.store.cache import Cache, CacheEntry, Entry
from retrieval_cli.store.differences import differences, settings_line
from retrieval_cli.store.gc import GcResult, collect
from retrieval_cli.store.shards import Parts, Shard, ShardResult
from retrieval_cli.store.versioning import Versioned, added, config_record, recorded_at_default, unversioned
from retrieval_cli.store.workspace import WORKSPACE_ENV, Workspace

__all__ = [
    "KINDS", "WORKSPACE_ENV", "Artifact", "BuildResult", "Cache", "CacheEntry", "Entry", "Parts", "Shard", "ShardResult",
    "GcResult", "NeedsBuild", "Versioned", "Workspace", "atomic_write_text", "check_name", "collect", "config_record", "differences", "files_fingerprint",
    "added", "recorded_at_default", "settings_line", "sha256_file", "software_versions", "unversioned",
]
