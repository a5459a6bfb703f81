from engine.text import literal_markdown, literal_plotly, one_line


def test_markdown_escapes_every_punctuation_character():
    assert literal_markdown("*x*") == r"\*x\*"
    assert literal_markdown("{{7*7}} ${7*7}") == r"\{\{7\*7\}\} \$\{7\*7\}"
    assert literal_markdown(":red[x]") == r"\:red\[x\]"
    assert literal_markdown("a\\b") == "a\\\\b"
    assert literal_markdown("Amélie 2") == "Amélie 2"


def test_plotly_shows_tags_and_entities_as_text():
    assert literal_plotly("<b>x</b>") == "&lt;b&gt;x&lt;/b&gt;"
    assert literal_plotly("&lt;") == "&amp;lt;"
    assert literal_plotly("Tom & Jerry") == "Tom &amp; Jerry"


def test_labels_are_one_line():
    assert one_line("a\tb\r\nc") == "a b c"
    assert literal_plotly("a\nb") == "a b"


def test_markdown_escapes_streamlits_own_syntax():
    # Each escaped form was checked by hand in Chromium to read as written in st.markdown,
    # st.caption, st.warning / st.info and metric labels of Streamlit 1.67 (no emoji, icon,
    # strike-through, list, heading or maths); tests/e2e/test_literal_text.py checks pages.
    assert literal_markdown(":smile: :material/science:") == r"\:smile\: \:material\/science\:"
    assert literal_markdown("a $x$ b") == r"a \$x\$ b"
    assert literal_markdown("~x~ a~~b~~") == r"\~x\~ a\~\~b\~\~"
    assert literal_markdown("1. x") == r"1\. x"
    assert literal_markdown("# h") == r"\# h"
    assert literal_markdown("<b>x</b>") == r"\<b\>x\<\/b\>"
    assert literal_markdown("[link](http://x)") == r"\[link\]\(http\:\/\/x\)"
