"""What the benchmarks run in a spawned extraction process (`dedup.workers.init` as its initializer).

Kept free of model imports at module level, as `dedup.workers` is: the child imports this module
to find the function it is sent.
"""


def startup_cpu() -> float:
    """CPU-seconds a fresh worker spent before its first video: Django, the audio warm-up
    (dedup.workers.init) and loading the embedding model. Run in a pool whose initializer is init."""
    import resource

    from dedup.services import current_embedder

    current_embedder()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime
