"""Everything HTTP-facing: routes (pages, JSON API, bytes, events), templates, dependencies,
the rendering of errors, and the API's shapes.

The top layer: may import every other package; nothing imports it but ``main``.
"""
