"""A lesson as one HTML page that opens anywhere: no script from the internet, and its
widgets drawn as they were when the notebook was saved.

nbconvert draws a widget only through @jupyter-widgets/html-manager, a script the page
loads from a CDN: in a school without that network, an exported lesson shows an empty
space where its step viewer, its activity and its quiz were. Here the widgets' saved state
(the notebook's widget-state metadata — what JupyterLab keeps with *Settings → Save Widget
State Automatically*, or what ``--run`` stores after running the lesson) is drawn as plain
HTML: boxes in boxes, the picture the viewer showed, a menu with its choice, the answer
ticked, the feedback a quiz or an activity gave. The page embeds its pictures and keeps
no ``<script src>`` and no remote stylesheet; the school track's folded code stays out.
Every answer stays folded: a Markdown answer in its ``<details>``, an answer behind a
button (``--run`` presses them all last) under the button's words, a quiz nobody answered
as its questions with each answer folded. A relative link to another lesson or to the
glossary points to that notebook's page, exported where the link says
(``glossary.ipynb`` → ``glossary.html``, ``school/glossary.ipynb`` →
``school/glossary.html``).

    mailsim export notebooks/school/01-first-email.ipynb -o lesson-1.html --run
"""

from __future__ import annotations

import base64
import html
import re
from pathlib import Path
from typing import Any

from mailsim import notebooks, quiz, reveal

VIEW = "application/vnd.jupyter.widget-view+json"
STATE = "application/vnd.jupyter.widget-state+json"
# A widget whose state the notebook did not keep (never displayed, or saved without it).
UNSAVED = "<p><i>(an interactive part: run the lesson in JupyterLab to use it)</i></p>"
# A page at rest needs no script: nbconvert's load MathJax, Mermaid or the widget manager
# from the internet, or would.
SCRIPTS = re.compile(r"<script\b[^>]*>.*?</script>", re.I | re.S)
REMOTE = re.compile(r"<link[^>]*\bhref=[\"']https?://[^>]*>", re.I)
QUIZ = f'class="{quiz.CLASS}"'  # a quiz's own HTML, each answer folded (Quiz.html)
# A link to another lesson or to the glossary, to its page exported beside this one.
LESSON_LINK = re.compile(  # relative only: no scheme (https:, file:, mailto:…), no //host
    r"""(href=["'])(?![a-z][a-z0-9+.-]*:|//)([^"'#]+)\.ipynb([#"'])""", re.I
)


def _e(value: Any) -> str:
    return html.escape(str(value))


class _Drawing:
    """Draws one widget tree from the saved states, model by model."""

    def __init__(self, states: dict[str, Any]) -> None:
        self.states = states

    def draw(self, ref: Any) -> str:
        model_id = ref.removeprefix("IPY_MODEL_") if isinstance(ref, str) else None
        saved = self.states.get(model_id) if model_id else None
        if saved is None:
            return UNSAVED
        name, state = saved["model_name"], saved["state"]
        label = (
            f"<span class='w-label'>{_e(state['description'])}</span> "
            if state.get("description")
            and name not in ("ButtonModel", "ToggleButtonModel", "CheckboxModel")
            else ""
        )
        if name == "VBoxModel" and reveal.CLASS in state.get("_dom_classes", []):
            return self._folded(state)
        if name in ("VBoxModel", "HBoxModel", "BoxModel", "GridBoxModel"):
            kind = "row" if name == "HBoxModel" else "column"
            inner = "".join(self.draw(child) for child in state.get("children", []))
            return f"<div class='w-{kind}'>{inner}</div>"
        if name in ("HTMLModel", "HTMLMathModel"):
            return f"<div class='w-html'>{state.get('value', '')}</div>"
        if name == "LabelModel":
            return f"<span class='w-label'>{_e(state.get('value', ''))}</span>"
        if name in ("ButtonModel", "ToggleButtonModel"):
            pressed = " w-pressed" if state.get("value") is True else ""
            return f"<span class='w-button{pressed}'>{_e(state.get('description', ''))}</span>"
        if name == "CheckboxModel":
            mark = "☑" if state.get("value") else "☐"
            return f"<div class='w-check'>{mark} {_e(state.get('description', ''))}</div>"
        if name in ("RadioButtonsModel", "ToggleButtonsModel"):
            picked, labels = state.get("index"), state.get("_options_labels", [])
            items = "".join(
                f"<div>{'◉' if i == picked else '○'} {_e(text)}</div>"
                for i, text in enumerate(labels)
            )
            return f"{label}<div class='w-choices'>{items}</div>"
        if name == "SelectModel":  # a list box: a few rows shown, the rest scrolled
            picked, labels = state.get("index"), state.get("_options_labels", [])
            items = "".join(
                f"<div{' class=w-picked' if i == picked else ''}>{_e(text)}</div>"
                for i, text in enumerate(labels)
            )
            return f"{label}<div class='w-list'>{items}</div>"
        if name == "DropdownModel":
            picked, labels = state.get("index"), state.get("_options_labels", [])
            shown = labels[picked] if isinstance(picked, int) and picked < len(labels) else "—"
            return f"{label}<span class='w-field'>{_e(shown)} ▾</span>"
        if name in ("TextModel", "TextareaModel", "FloatTextModel", "IntTextModel"):
            value = state.get("value", "")
            shown = _e(value) if value != "" else f"<i>{_e(state.get('placeholder', ''))}</i>"
            return f"{label}<span class='w-field'>{shown}</span>"
        if name in ("IntSliderModel", "FloatSliderModel", "SelectionSliderModel"):
            value = state.get("value")
            if name == "SelectionSliderModel":
                labels = state.get("_options_labels", [])
                value = labels[state["index"]] if labels else ""
            return f"{label}<span class='w-field'>{_e(value)}</span>"
        if name == "ImageModel":
            return self._image(saved, state)
        if name == "OutputModel":
            return "".join(_output(o) for o in state.get("outputs", []))
        return ""  # Play, links, styles: nothing a page at rest shows

    def _folded(self, state: dict[str, Any]) -> str:
        """An answer behind a button (:func:`mailsim.reveal.reveal`): folded under the
        button's words, as a Markdown answer is, if the lesson ran with it shown."""
        press, out = (self.states.get(str(c).removeprefix("IPY_MODEL_")) for c in state["children"])
        if press is None or out is None or not out["state"].get("outputs"):
            return "".join(self.draw(child) for child in state["children"])
        words = _e(press["state"].get("description", ""))
        inside = "".join(_output(o) for o in out["state"]["outputs"])
        return f"<details class='w-reveal'><summary>{words}</summary>{inside}</details>"

    def unanswered(self, model_id: str) -> bool:
        """A quiz's widgets that nobody checked an answer in: its score, the last line,
        is still empty (:meth:`mailsim.quiz.Quiz.widget`)."""
        children = self.states.get(model_id, {}).get("state", {}).get("children") or [None]
        last = self.states.get(str(children[-1]).removeprefix("IPY_MODEL_"))
        return (
            last is not None
            and last["model_name"] == "HTMLModel"
            and not last["state"].get("value")
        )

    def _image(self, saved: dict[str, Any], state: dict[str, Any]) -> str:
        for buffer in saved.get("buffers", []):
            if buffer.get("path") == ["value"]:
                data = buffer["data"]
                if buffer.get("encoding") != "base64":
                    data = base64.b64encode(data.encode("latin-1")).decode()
                kind = state.get("format", "png")
                return f"<img class='w-image' src='data:image/{kind};base64,{data}'>"
        return ""


def _output(output: dict[str, Any]) -> str:
    """One output of an Output widget, as a page shows it."""
    if output.get("output_type") == "stream":
        return f"<pre>{_e(output.get('text', ''))}</pre>"
    data = output.get("data", {})
    if "image/png" in data:
        return f"<img class='w-image' src='data:image/png;base64,{data['image/png']}'>"
    if "text/html" in data:
        return str(data["text/html"])
    if "text/plain" in data:
        return f"<pre>{_e(data['text/plain'])}</pre>"
    return ""


CSS = """
<style>
.w-row { display: flex; flex-wrap: wrap; gap: 6px; align-items: center; }
.w-column { display: flex; flex-direction: column; gap: 6px; }
.w-button { border: 1px solid #999; border-radius: 3px; padding: 2px 10px; background: #eee; }
.w-pressed { background: #cde; }
.w-field { border: 1px solid #999; padding: 2px 8px; min-width: 8em; display: inline-block; }
.w-choices { margin: 4px 0 4px 0.5em; }
.w-list { max-height: 9em; overflow: auto; border: 1px solid #999; font-size: 90%; }
.w-picked { background: #cde; }
.w-image { max-width: 100%; }
.w-reveal > summary { border: 1px solid #999; border-radius: 3px; padding: 2px 10px;
                      background: #cde; cursor: pointer; }
</style>
"""


def static(notebook: Any) -> Any:
    """A copy of ``notebook`` where every widget output is its saved state drawn as HTML."""
    import copy

    out = copy.deepcopy(notebook)
    saved = out.metadata.get("widgets", {}).get(STATE, {}).get("state", {})
    drawing = _Drawing(saved)
    for cell in out.cells:
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if VIEW not in data:
                continue
            model = data[VIEW].get("model_id", "")
            drawn = drawing.draw(f"IPY_MODEL_{model}") if model in saved else None
            fallback = data.get("text/html", UNSAVED)
            if QUIZ in fallback and drawing.unanswered(model):
                drawn = None  # its questions with each answer folded: a page to work from
            output["data"] = {"text/html": drawn if drawn is not None else fallback}
    out.metadata.pop("widgets", None)
    return out


def export(path: str | Path, out: str | Path, run: bool = False) -> Path:
    """Write ``path`` (a lesson) as one self-contained HTML page; ``run``: run it first, in
    its own folder, keeping the widgets' state as the run leaves it."""
    import nbformat
    from nbconvert import HTMLExporter
    from nbconvert.preprocessors import TagRemovePreprocessor

    source = Path(path)
    notebook = nbformat.read(source, as_version=4)
    if run:
        import os

        # Last, every answer behind a button is shown, so that the page can fold it
        # under the button's words; the cell that does it is not part of the page.
        notebook.cells.append(
            nbformat.v4.new_code_cell("import mailsim.reveal\nmailsim.reveal.show_all();")
        )

        # Figures as pictures in the outputs, whatever backend this process was told of.
        inline = {**os.environ, "MPLBACKEND": "module://matplotlib_inline.backend_inline"}
        notebooks.execute(notebook, source.parent, 120, env=inline, store_widget_state=True)
        notebook.cells.pop()
    # Without embed_images: nbconvert would re-parse each HTML fragment of the Markdown
    # alone and close it there, so a folded answer's <details> or a glossary link's <a>
    # would close before its text, showing every answer. The lessons' pictures are
    # outputs, embedded either way; a lesson's Markdown holds no picture (tested).
    exporter = HTMLExporter(template_name="lab", embed_images=False)
    exporter.register_preprocessor(
        TagRemovePreprocessor(remove_input_tags={"hide-input"}, enabled=True), enabled=True
    )
    body, _ = exporter.from_notebook_node(static(notebook))
    page = REMOTE.sub("", SCRIPTS.sub("", body)).replace("</head>", CSS + "</head>", 1)
    page = LESSON_LINK.sub(r"\1\2.html\3", page)
    target = Path(out)
    target.write_text(page, encoding="utf-8")
    return target
