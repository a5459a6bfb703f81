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
