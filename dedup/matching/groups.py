"""Duplicate groups from pair edges, guarded against daisy chains, and the copy to keep."""


def group_components(edges: list[tuple[int, int, float, str]]) -> list[list[int]]:
    """Connected components in which every member is linked to most of the others.

    Plain connected components chain A~B~C into one group even when A and C differ. Here a
    video joins a group only if it has edges to at least half of the group's current members and
    to two of them at least, so a chain of two links stays two separate groups (the shared video
    goes with its stronger link).
    """
    adjacency: dict[int, dict[int, float]] = {}
    for a, b, score, _label in edges:
        adjacency.setdefault(a, {})[b] = score
        adjacency.setdefault(b, {})[a] = score
    ordered = sorted(((score, a, b) for a, b, score, _ in edges), reverse=True)
    group_of: dict[int, int] = {}
    groups: dict[int, set[int]] = {}
    next_id = 0
    for _score, a, b in ordered:
        ga, gb = group_of.get(a), group_of.get(b)
        if ga is None and gb is None:
            groups[next_id] = {a, b}
            group_of[a] = group_of[b] = next_id
            next_id += 1
        elif ga is not None and gb is not None:
            if ga == gb:
                continue
            small, big = (ga, gb) if len(groups[ga]) <= len(groups[gb]) else (gb, ga)
            if all(_joins(adjacency, m, groups[big]) for m in groups[small]):
                for m in groups[small]:
                    group_of[m] = big
                groups[big] |= groups.pop(small)
        else:
            newcomer, g = (b, ga) if ga is not None else (a, gb)
            if _joins(adjacency, newcomer, groups[g]):
                groups[g].add(newcomer)
                group_of[newcomer] = g
    return [sorted(members) for members in groups.values() if len(members) > 1]


def _joins(adjacency: dict[int, dict[int, float]], video: int, members: set[int]) -> bool:
    """A video joins a group when linked to at least half its members, and to two of them at least
    (so A~B plus B~C never makes {A, B, C} unless A~C too)."""
    links = _links(adjacency, video, members)
    return links >= max(2, (len(members) + 1) // 2)


def _links(adjacency: dict[int, dict[int, float]], video: int, members: set[int]) -> int:
    neighbours = adjacency.get(video, {})
    return sum(1 for m in members if m in neighbours)


def keep_best(videos: list[dict]) -> int:
    """The copy to keep: higher resolution, then bitrate, then duration, then file size.

    Values within 2 % of each other are near-ties and fall through to the next criterion.
    """
    candidates = list(videos)
    for key in ("pixels", "bitrate", "duration", "size"):
        top = max(v[key] for v in candidates)
        candidates = [v for v in candidates if v[key] >= top * 0.98]
        if len(candidates) == 1:
            break
    return min(candidates, key=lambda v: v["id"])["id"]
