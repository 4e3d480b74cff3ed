from __future__ import annotations

from shoprec.core.highlight import highlight


def test_matched_words_are_marked_and_everything_else_escaped() -> None:
    analyse = {"drills": "drill"}.get
    out = highlight('Drills & <b>"bits"</b> drills', {"drill", "bit"}, lambda w: analyse(w.lower(), w.lower()))
    assert out == "<mark>Drills</mark> &amp; &lt;b&gt;&quot;bits&quot;&lt;/b&gt; <mark>drills</mark>"


def test_a_word_inside_markup_is_escaped_before_it_is_marked() -> None:
    assert highlight("<script>", {"script"}, str.lower) == "&lt;<mark>script</mark>&gt;"
    assert highlight("no match", {"x"}, str.lower) == "no match"
