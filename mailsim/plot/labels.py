"""Labels that do not cover each other: each movable label takes the first of its
candidate places where it overlaps no label placed before it, no fixed label, no given
line (an arrow that is not its own), no arrowhead (its own's neither) and stays inside its
axes.

Placement is measured on the drawn figure (after the layout engine has run), in pixels,
so it holds for the figure as saved; a label with no free candidate takes the one least
in the way.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.path import Path
from matplotlib.text import Text
from matplotlib.transforms import Bbox

PAD = 2.0  # pixels kept free around every label


@dataclass
class Movable:
    """A label and the places it may go: (x, y) in data coordinates, or (x, y, va) or
    (x, y, va, ha); for an annotation placed by an offset, ((dx, dy) in points, ha, va)."""

    text: Text
    spots: Sequence[tuple]
    own: Sequence[Artist] = field(default_factory=tuple)  # lines it may touch (its arrow)


def place(
    ax: Axes,
    movable: Sequence[Movable],
    fixed: Sequence[Text] = (),
    lines: Sequence[Artist] = (),
    markers: Sequence[Artist] = (),
) -> list[bool]:
    """Move each of ``movable``, in order, to its first free spot; says for each whether
    it found one (the caller may hide or merge those that did not)."""
    figure = ax.figure
    figure.draw_without_rendering()  # let the layout engine settle the axes first
    renderer = _renderer(figure)
    frame = ax.get_window_extent(renderer)
    taken = [_box(t, renderer) for t in fixed if t.get_visible() and t.get_text()]
    taken += [box for marker in markers for box in _marker_boxes(marker, figure.dpi)]
    # Plain (x0, y0, x1, y1) tuples for the many overlap tests: Bbox.overlaps is slow.
    boxes = [tuple(b.extents) for b in taken]
    # An arrow's head is in every label's way, its own's too: a label over the head
    # hides where the arrow goes (lanes 150 px apart leave labels wider than the gap).
    paths = [
        (line, piece, tuple(extent.extents), _is_head(piece))
        for line in lines
        for piece, extent in _display_path(line)
    ]
    free = []
    for item in movable:
        # The first spot with nothing in the way; failing that, the one least in the way
        # (a crossed label counts more than a crossed line).
        best: tuple[float, int] | None = None
        for k, spot in enumerate(item.spots):
            _move(item.text, spot)
            box = _box(item.text, renderer)
            edges = tuple(box.extents)
            cost = 0.0 if _inside(box, frame) else 100.0
            cost += 10.0 * sum(_overlap(edges, other) for other in boxes)
            cost += sum(
                piece.intersects_bbox(box, filled=False)
                for line, piece, extent, head in paths
                if _overlap(extent, edges) and (head or line not in item.own)  # cheap first
            )
            if best is None or cost < best[0]:
                best = (cost, k)
            if cost == 0.0:
                break
        assert best is not None, "a label needs at least one spot"
        free.append(best[0] == 0.0)
        _move(item.text, item.spots[best[1]])
        boxes.append(tuple(_box(item.text, renderer).extents))
    return free


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
