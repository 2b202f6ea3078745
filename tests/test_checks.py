"""gan_lab.checks: the boundary validators' renamed-keyword decorator."""

import inspect

import pytest

from gan_lab import checks


@checks.renamed(generator="rng")
def draw(n, rng=None, scale=1.0):
    """Draw something."""
    return n, rng, scale


def test_renamed_maps_the_old_keyword_to_the_new_one():
    assert draw(3, generator="g") == (3, "g", 1.0)
    assert draw(3, rng="g") == (3, "g", 1.0)
    assert draw(3, "g") == (3, "g", 1.0)
    assert draw(3) == (3, None, 1.0)
    assert draw(n=3, generator="g", scale=2.0) == (3, "g", 2.0)


def test_renamed_keeps_name_docstring_and_signature():
    assert draw.__name__ == "draw" and draw.__doc__ == "Draw something."
    assert list(inspect.signature(draw).parameters) == ["n", "rng", "scale"]


@pytest.mark.parametrize("call", [lambda: draw(3, rng="a", generator="b"), lambda: draw(3, "a", generator="b")])
def test_renamed_refuses_both_names(call):
    with pytest.raises(TypeError, match="'generator'.*'rng'"):
        call()


def test_renamed_works_on_methods_and_several_names():
    class Thing:
        @checks.renamed(generator="rng", kind="loss")
        def go(self, loss, rng=None):
            return loss, rng

    assert Thing().go(kind="ns", generator=1) == ("ns", 1)
    assert Thing().go("ns", 1) == ("ns", 1)
    with pytest.raises(TypeError, match="'kind'.*'loss'"):
        Thing().go("ns", kind="hinge")


def test_renamed_checks_its_own_arguments():
    with pytest.raises(TypeError, match="no parameter 'rng'"):
        checks.renamed(generator="rng")(lambda n, generator=None: n)
    with pytest.raises(TypeError, match="still has a parameter named 'generator'"):
        checks.renamed(generator="rng")(lambda n, rng=None, generator=None: n)
    with pytest.raises(TypeError, match="unexpected keyword"):
        draw(3, seed=1)
