r"""Data text shown literally: escaping for Streamlit markdown and for plotly labels.

Titles, group names, column names and ids come from the analyst's files and may contain
characters that a renderer treats as markup: ``*x*`` becomes italics and ``${7*7}`` opens
LaTeX in Streamlit's markdown; ``<b>x</b>`` is bold in a plotly label. Every place that
shows data text passes it through one of these functions first, so that what a reader sees
is exactly what the file holds. Data text never goes into a plotly
``hovertemplate`` string (``%{...}`` there is a placeholder): pass it as ``customdata``.

- ``literal_markdown``: a backslash before every ASCII punctuation character (CommonMark
  allows escaping any of them, so the text renders verbatim), newlines and tabs as spaces.
- ``literal_plotly``: ``&``, ``<`` and ``>`` as HTML entities (plotly renders entities but
  not escaped tags), newlines and tabs as spaces.

Checked in Chromium with Streamlit 1.67: Streamlit's markdown honours every CommonMark
backslash escape, including before its own syntax (``\:smile\:`` and ``\:red\[x\]``
stay text, ``\$`` opens no maths), in ``st.markdown``, ``st.caption``, the alerts and
metric labels. Inside a code span backslashes are literal, so escaped text is never put
between backticks. Select box options and ``st.dataframe`` cells are plain text already:
they take the raw value. Chart titles are bold in Streamlit's plotly theme; that is the
theme, not markup.
"""

from __future__ import annotations

import re
import string

_PUNCTUATION = re.compile("([" + re.escape(string.punctuation) + "])")
_WHITESPACE = re.compile(r"[\t\r\n\v\f]+")


def one_line(text: object) -> str:
    """``str(text)`` with tabs and line breaks as single spaces (a label is one line)."""
    return _WHITESPACE.sub(" ", str(text))


def literal_markdown(text: object) -> str:
    r"""Return ``text`` escaped so that Streamlit markdown shows it verbatim.

    Every ASCII punctuation character gets a backslash: ``*x*`` -> ``\*x\*``,
    ``${7*7}`` -> ``\$\{7\*7\}``, ``:red[x]`` -> ``\:red\[x\]``.
    """
    return _PUNCTUATION.sub(r"\\\1", one_line(text))


def literal_plotly(text: object) -> str:
    """Return ``text`` escaped so that a plotly title, tick, legend or hover shows it verbatim.

    ``<b>x</b>`` -> ``&lt;b&gt;x&lt;/b&gt;``; ``&`` -> ``&amp;`` (so an entity in the data
    is not decoded either).
    """
    return one_line(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
