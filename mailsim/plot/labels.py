"""Labels that do not cover each other: each movable label takes the first of its
candidate places where it overlaps no label placed before it, no fixed label, no marker,
no given line (an arrow that is not its own, and its own too for a label that leads to
it), no arrowhead (its own's neither) and stays inside its axes. A label that leads to its arrow and sits farther from it
than a reach gets a leader line, which must cross no label, run along no line, and which
the labels placed after it keep off as well.

Placement is measured on the drawn figure (after the layout engine has run), in pixels,
so it holds for the figure as saved; a label with no free candidate takes the one least
in the way.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.path import Path
from matplotlib.text import Text
from matplotlib.transforms import Bbox

PAD = 2.0  # pixels kept free around every label
NEAR = 5.0  # pixels: a leader this close to a line (half a lane and more) runs along it
ALONG = 12.0  # pixels of a leader that may run that close: a crossing at 56° or more
CROSSED = 10.0  # the cost of a label crossed, as against 1 for a line crossed
RAIL = 0.25  # a rail (a link under the hops) covered: better than a hop's line covered
AWAY = 2.0  # a label in an area not its own, or its leader across one: misleads more
STOP = 20.0  # pixels round a machine on an arrow's way where no leader joins it
LONG = 400.0  # pixels of leader as much against a place as a line crossed in the way


@dataclass
class Movable:
    """A label and the places it may go: (x, y) in data coordinates, or (x, y, va) or
    (x, y, va, ha); for an annotation placed by an offset, ((dx, dy) in points, ha, va)."""

    text: Text
    spots: Sequence[tuple]
    own: Sequence[Artist] = field(default_factory=tuple)  # lines it may touch (its arrow)
    # The arrow it labels, which it must not cover: farther than ``reach`` pixels from the
    # arrow's middle part, a leader line joins them (see :func:`leader`).
    leads: Artist | None = None
    reach: float = 40.0
    line: tuple[np.ndarray, np.ndarray] | None = None  # its leader, once placed (pixels)
    # Areas it would seem to belong to (another domain's box): kept out of where it can.
    away: Sequence[Artist] = field(default_factory=tuple)
    # Points its arrow passes (data coordinates: the machines and routers on its way),
    # where no leader may join it: there it would read as a link to that machine.
    stops: Sequence[tuple[float, float]] = field(default_factory=tuple)


def place(
    ax: Axes,
    movable: Sequence[Movable],
    fixed: Sequence[Text] = (),
    lines: Sequence[Artist] = (),
    markers: Sequence[Artist] = (),
    rails: Sequence[Artist] = (),
) -> list[bool]:
    """Move each of ``movable``, in order, to its first free spot; says for each whether
    it found one (the caller may hide or merge those that did not). ``rails`` are the
    lines under everything (a network's links): a label that leads to its arrow keeps
    off them where it can, and its leader never runs along one (it would read as one)."""
    figure = ax.figure
    figure.draw_without_rendering()  # let the layout engine settle the axes first
    renderer = _renderer(figure)
    frame = ax.get_window_extent(renderer)
    taken = [_box(t, renderer) for t in fixed if t.get_visible() and t.get_text()]
    taken += [box for marker in markers for box in _marker_boxes(marker, figure.dpi)]
    # Plain (x0, y0, x1, y1) tuples for the many overlap tests: Bbox.overlaps is slow.
    boxes = [tuple(b.extents) for b in taken]
    paths = [
        (line, piece, tuple(extent.extents))
        for line in lines
        for piece, extent in _display_path(line)
    ]
    under = [(line, piece, tuple(extent.extents)) for line in rails
             for piece, extent in _display_path(line)]  # fmt: skip
    leaders: list[Path] = []  # placed labels' leader lines: crossed like labels
    free = []
    for item in movable:
        # The first spot with nothing in the way and nothing against it; failing that, the
        # one least in the way (a crossed label counts more than a crossed line), then the
        # one with least against it (a rail covered, a far leader, a stranger's area).
        shaft = _ports(item, ax) if item.leads is not None else None
        away = [tuple(area.get_window_extent(renderer).extents) for area in item.away]
        best: tuple[float, float, int] | None = None
        for k, spot in enumerate(item.spots):
            _move(item.text, spot)
            box = _box(item.text, renderer)
            blocked = 0.0 if _inside(box, frame) else 100.0
            blocked += _in_the_way(item, box, boxes, paths, leaders)
            taste = _against(box, away, under if shaft is not None else [])
            if shaft is not None and (best is None or (blocked, taste) < best[:2]):
                more, worse = _leading(item, shaft, renderer, boxes, paths, leaders, under, away)
                blocked, taste = blocked + more, taste + worse
            if best is None or (blocked, taste) < best[:2]:
                best = (blocked, taste, k)
            if blocked == taste == 0.0:
                break
        assert best is not None, "a label needs at least one spot"
        free.append(best[0] == 0.0)
        _move(item.text, item.spots[best[2]])
        boxes.append(tuple(_box(item.text, renderer).extents))
        if shaft is not None:
            item.line = leader(item.text.get_window_extent(renderer), shaft, item.reach)
            if item.line is not None:
                leaders.append(Path(np.array(item.line)))
    return free


Lines = list[tuple[Artist, Path, tuple[float, ...]]]  # (artist, piece, its extent) in pixels


def _in_the_way(
    item: Movable, box: Bbox, boxes: list[tuple[float, ...]], paths: Lines, leaders: list[Path]
) -> float:
    """What a label at ``box`` covers: labels, markers and leaders (CROSSED each), other
    lines (1 each) and its own arrow (CROSSED: the words would hide what they name)."""
    edges = tuple(box.extents)
    blocked = CROSSED * sum(_overlap(edges, other) for other in boxes)
    blocked += sum(
        (CROSSED if line is item.leads else 1.0) * piece.intersects_bbox(box, filled=False)
        for line, piece, extent in paths
        # Cheap tests first. An arrow's head is in every label's way, its own's too: a
        # label over the head hides where the arrow goes.
        if _overlap(extent, edges) and (line not in item.own or _is_head(piece))
    )
    return blocked + CROSSED * sum(way.intersects_bbox(box, filled=False) for way in leaders)


def _against(box: Bbox, away: list[tuple[float, ...]], rails: Lines) -> float:
    """What speaks against a place that is in no one's way: a stranger's area (AWAY),
    rails covered (RAIL each)."""
    edges = tuple(box.extents)
    taste = AWAY * sum(_overlap(edges, area) for area in away)
    return taste + RAIL * sum(
        piece.intersects_bbox(box, filled=False)
        for _, piece, extent in rails
        if _overlap(extent, edges)
    )


def _leading(
    item: Movable,
    shaft: np.ndarray,
    renderer: Any,
    boxes: list[tuple[float, ...]],
    paths: Lines,
    leaders: list[Path],
    rails: Lines,
    away: list[tuple[float, ...]],
) -> tuple[float, float]:
    """In the way and against a label's place, from how it is tied to its arrow: its
    leader (see :func:`_leader_cost`), or, near enough to need none, another arrow
    nearer to it than its own (a reader would take it for that arrow's label)."""
    words = item.text.get_window_extent(renderer)
    line = leader(words, shaft, item.reach)
    if line is None:
        return _nearer(words, _gap(words, shaft), paths, item.leads), 0.0  # type: ignore[arg-type]
    more, worse = _leader_cost(line, item.leads, boxes, paths, leaders, rails)  # type: ignore[arg-type]
    return more, worse + AWAY * sum(_crosses(line, area) for area in away)


def _ports(item: Movable, ax: Axes) -> np.ndarray:
    """Where a leader may join the arrow: its middle part, away from its ``stops``
    (all of the middle part if every point is near one)."""
    shaft = middle(item.leads)  # type: ignore[arg-type]
    if not item.stops:
        return shaft
    stops = ax.transData.transform(np.asarray(item.stops, dtype=float))
    gaps = np.hypot(*(shaft[:, None, :] - stops[None]).transpose(2, 0, 1)).min(axis=1)
    clear = shaft[gaps > STOP]
    return clear if len(clear) else shaft


def middle(arrow: Artist) -> np.ndarray:
    """The middle three fifths of an arrow's shaft as drawn, in pixels: where a leader
    may join it (not at a node, where it would seem to lead to the machine)."""
    path = arrow.get_transform().transform_path(arrow.get_path())  # type: ignore[attr-defined]
    shaft = np.asarray(path.to_polygons(closed_only=False)[0])
    return shaft[len(shaft) // 5 : len(shaft) - len(shaft) // 5]


def _gap(box: Bbox, points: np.ndarray) -> float:
    """Pixels from a box to the nearest of some points."""
    edge = np.column_stack([np.clip(points[:, 0], box.x0, box.x1),
                            np.clip(points[:, 1], box.y0, box.y1)])  # fmt: skip
    return float(np.min(np.hypot(*(points - edge).T)))


def _nearer(box: Bbox, gap: float, paths: Lines, arrow: Artist) -> float:
    """1 when another arrow than its own passes nearer a label than its own (``gap``
    pixels away): a reader would take it for that arrow's label."""
    near = (box.x0 - gap, box.y0 - gap, box.x1 + gap, box.y1 + gap)
    for line, piece, extent in paths:
        if line is not arrow and _overlap(extent, near) and _gap(box, piece.vertices) < gap:
            return 1.0
    return 0.0


def leader(box: Bbox, shaft: np.ndarray, reach: float) -> tuple[np.ndarray, np.ndarray] | None:
    """The line from a label's ``box`` to the nearest point of its arrow's ``shaft`` (both
    in pixels), or none when that is at most ``reach`` long: near enough to read as one."""
    edge = np.column_stack([np.clip(shaft[:, 0], box.x0, box.x1),
                            np.clip(shaft[:, 1], box.y0, box.y1)])  # fmt: skip
    gaps = np.hypot(*(shaft - edge).T)
    k = int(np.argmin(gaps))
    if gaps[k] <= reach:
        return None
    return edge[k], shaft[k]


def _leader_cost(
    line: tuple[np.ndarray, np.ndarray],
    arrow: Artist,
    boxes: list[tuple[float, ...]],
    paths: Lines,
    leaders: list[Path],
    rails: Lines,
) -> tuple[float, float]:
    """How much a leader is in the way, or hard to tell apart: each label or marker it
    crosses, each line it runs along (more than ALONG pixels within NEAR of it) count as
    a label crossed; each line it crosses (but its ``arrow``, where it ends) as a line;
    a rail it runs along as a label crossed too, a rail it crosses not at all. And how
    much is against it: its length (the nearer a label, the better)."""
    (x0, y0), (x1, y1) = line
    way = Path(np.array(line))
    extent = (min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1))
    length = float(np.hypot(x1 - x0, y1 - y0))
    cost = CROSSED * sum(_crosses(line, other) for other in boxes)
    # Points along the leader, every pixel, but its last NEAR ones (where it meets its arrow).
    steps = np.linspace(0.0, max(0.0, 1.0 - NEAR / max(length, 1e-9)), max(2, int(length)))
    points = np.array(line[0]) + np.outer(steps, np.subtract(line[1], line[0]))
    # (line, whether crossing it counts): hops and leaders do, but its own arrow; rails not.
    lines = [(piece, box, artist is not arrow) for artist, piece, box in paths]
    lines += [(other, tuple(other.get_extents().extents), True) for other in leaders]
    lines += [(piece, box, False) for _, piece, box in rails]
    near = (extent[0] - NEAR, extent[1] - NEAR, extent[2] + NEAR, extent[3] + NEAR)
    for piece, box, counts in lines:
        if not _overlap(box, near):
            continue
        close = _distances(points, piece.vertices) <= NEAR
        if close.sum() * length / len(points) > ALONG:
            cost += CROSSED
        elif counts and way.intersects_path(piece, filled=False):
            cost += 1.0
    return cost, length / LONG


def _crosses(line: tuple[np.ndarray, np.ndarray], box: tuple[float, ...]) -> bool:
    """A segment passes through a (x0, y0, x1, y1) box."""
    bbox = Bbox.from_extents(*box)
    return bool(Path(np.array(line)).intersects_bbox(bbox, filled=False))


def _distances(points: np.ndarray, polyline: np.ndarray) -> np.ndarray:
    """Each point's distance to a polyline (pixels)."""
    a, b = polyline[:-1], polyline[1:]
    ab = b - a
    lengths = np.maximum((ab**2).sum(axis=1), 1e-12)
    t = ((points[:, None, :] - a[None]) * ab[None]).sum(axis=2) / lengths[None]
    nearest = a[None] + np.clip(t, 0.0, 1.0)[..., None] * ab[None]
    return np.hypot(*(points[:, None, :] - nearest).transpose(2, 0, 1)).min(axis=1)


def _overlap(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
    """Two (x0, y0, x1, y1) boxes share some area or touch."""
    return a[0] <= b[2] and b[0] <= a[2] and a[1] <= b[3] and b[1] <= a[3]


def _renderer(figure: Figure) -> Any:
    """The canvas's renderer, or an Agg one of the same size and dpi for a figure whose
    canvas has none yet (a Figure made without pyplot, as the widgets make them)."""
    if hasattr(figure.canvas, "get_renderer"):
        return figure.canvas.get_renderer()
    from matplotlib.backends.backend_agg import RendererAgg

    width, height = figure.bbox.size
    return RendererAgg(int(width), int(height), figure.dpi)


def _move(text: Text, spot: tuple) -> None:
    if isinstance(spot[0], tuple):  # an offset from an annotated point
        text.xyann = spot[0]  # type: ignore[attr-defined]
        text.set_horizontalalignment(spot[1])
        text.set_verticalalignment(spot[2])
        return
    text.set_position(spot[:2])
    if len(spot) > 2:
        text.set_verticalalignment(spot[2])
    if len(spot) > 3:
        text.set_horizontalalignment(spot[3])


def _box(text: Text, renderer: Any) -> Bbox:
    box = text.get_window_extent(renderer)
    patch = text.get_bbox_patch()
    if patch is not None:
        text.update_bbox_position_size(renderer)
        box = Bbox.union([box, patch.get_window_extent(renderer)])
    return box.padded(PAD)


def _inside(box: Bbox, frame: Bbox) -> bool:
    return (
        box.x0 >= frame.x0 - PAD
        and box.x1 <= frame.x1 + PAD
        and box.y0 >= frame.y0 - PAD
        and box.y1 <= frame.y1 + PAD
    )


def _display_path(line: Artist) -> list[tuple[Path, Bbox]]:
    """An arrow (FancyArrowPatch) or a Line2D as drawn, in pixels, as polylines (curves
    flattened: ``Path.intersects_bbox`` misreads a CLOSEPOLY's placeholder vertex), each
    with its extent."""
    path = line.get_transform().transform_path(line.get_path())  # type: ignore[attr-defined]
    pieces = [Path(polygon) for polygon in path.to_polygons(closed_only=False)]
    return [(piece, piece.get_extents()) for piece in pieces]


def _is_head(piece: Path) -> bool:
    """A closed polygon of an arrow as drawn is its head (the shaft is an open line)."""
    vertices = piece.vertices
    return len(vertices) >= 4 and bool((vertices[0] == vertices[-1]).all())


def _marker_boxes(markers: Artist, dpi: float) -> list[Bbox]:
    """The squares the markers of a scatter plot (or of a Line2D) cover, in pixels."""
    if isinstance(markers, Line2D):
        offsets = markers.get_transform().transform(markers.get_xydata())
        sizes = [markers.get_markersize() ** 2]
    else:
        offsets = markers.get_offset_transform().transform(markers.get_offsets())  # type: ignore[attr-defined]
        sizes = markers.get_sizes()  # type: ignore[attr-defined]
    boxes = []
    for k, (x, y) in enumerate(offsets):
        half = (float(sizes[k % len(sizes)]) ** 0.5) / 2 * dpi / 72
        boxes.append(Bbox.from_extents(x - half, y - half, x + half, y + half))
    return boxes
