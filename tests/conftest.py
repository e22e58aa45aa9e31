"""Test ordering for ``make test``'s two workers."""


def pytest_collection_modifyitems(items):
    """The RTL tests first, in their collected order, then the rest: each RTL test builds and
    simulates for minutes, and run last (the alphabetical order put the TX path, RX path and
    RSC benches there) they left one worker running them alone at the end of the suite
    (stop 14's fresh-clone run). The model tests, seconds each, now fill the end."""
    items.sort(key=lambda item: item.get_closest_marker("rtl") is None)
