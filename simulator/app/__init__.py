"""``tumorsim explore``: the browser explorer, a thin layer over the Python API.

Modules: ``form`` (what the user typed -> ``--set`` overrides -> a scenario, validated as
the CLI does), ``session`` (arms forked from one pre-treatment tumour, stepped on a
background thread), ``render`` (lattice frames as RGBA rasters), ``lessons`` (guided
presets), ``view`` (the Bokeh document) and ``server`` (the Bokeh server on 127.0.0.1).
Only ``view`` and ``server`` import Bokeh (the ``explore`` extra).
"""
