"""Work across several models for videos, one module per job: ingest (files in), claims (who extracts a
video, and noticing when it died), outages (work that outlasts the database going away), extraction
(signals out of a claimed video), jobs (background work and its progress), db (binary COPY, binary
reads, the halfvec codec, frame index DDL), projection (the index projection), candidates (index lookups for a video's candidates), scoring
(pairs scored and saved), configs (config versions and re-scoring) and groups (duplicate groups).

The names other apps and commands use are importable from here; code inside dedup imports them from
their module."""

from .candidates import (
    PROJECTED_RERANK,
    find_candidates,
    frame_neighbours,
    frame_neighbours_sql,
    library_frames,
    search_plan,
)
from .claims import (
    CLAIM_FIELDS,
    claim_dead_cause,
    claim_heartbeat,
    claim_release,
    claimant,
    claims_recover,
    claims_recovery_schedule,
    process_host,
    video_claim,
    video_crash_settle,
)
from .configs import config_activate, pairs_rescore
from .db import FRAME_COLUMNS, copy_rows, frame_embeddings, frame_hnsw_indexes, statistics_refresh
from .extraction import (
    backbone_weights,
    carry_forward_unchanged,
    current_embedder,
    embedder_prepare,
    pixel_aspects_refresh,
    stale_videos,
    video_extract,
)
from .groups import groups_refresh, verdict_edges
from .ingest import (
    IngestResult,
    UploadRefused,
    enqueue_extraction,
    import_roots,
    shown_path,
    video_ingest,
    video_open,
    video_upload,
    videos_under,
)
from .jobs import (
    acting_user,
    job_create,
    job_enqueue,
    job_run,
    job_runner_register,
    job_start,
    job_videos_follow,
    jobs_running,
    jobs_videos_refresh,
)
from .outages import outlasting_outages
from .projection import index_projection_fit
from .scoring import load_signals, pair_score, pairs_score_again, video_match

__all__ = [
    "PROJECTED_RERANK",
    "CLAIM_FIELDS",
    "FRAME_COLUMNS",
    "IngestResult",
    "UploadRefused",
    "backbone_weights",
    "carry_forward_unchanged",
    "claim_dead_cause",
    "claim_heartbeat",
    "claim_release",
    "claimant",
    "claims_recover",
    "claims_recovery_schedule",
    "config_activate",
    "copy_rows",
    "current_embedder",
    "embedder_prepare",
    "enqueue_extraction",
    "find_candidates",
    "frame_embeddings",
    "frame_hnsw_indexes",
    "frame_neighbours",
    "frame_neighbours_sql",
    "groups_refresh",
    "import_roots",
    "index_projection_fit",
    "job_create",
    "job_enqueue",
    "job_run",
    "acting_user",
    "job_runner_register",
    "job_start",
    "job_videos_follow",
    "jobs_running",
    "jobs_videos_refresh",
    "library_frames",
    "load_signals",
    "outlasting_outages",
    "pair_score",
    "pairs_rescore",
    "pairs_score_again",
    "pixel_aspects_refresh",
    "process_host",
    "search_plan",
    "shown_path",
    "stale_videos",
    "statistics_refresh",
    "verdict_edges",
    "video_claim",
    "video_crash_settle",
    "video_extract",
    "video_ingest",
    "video_match",
    "video_open",
    "video_upload",
    "videos_under",
]
